-- A random identity for this database, made once. Each instance's search index records the
-- identity of the database it was derived from: an index built from another database is rebuilt
-- rather than followed (a database restored from a dump keeps its identity; the index then
-- notices that it is ahead of the change log instead).
INSERT INTO meta (key, value) VALUES ('database_id', replace(gen_random_uuid()::text, '-', ''))
ON CONFLICT (key) DO NOTHING;

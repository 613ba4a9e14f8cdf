-- A random identity for this database, made once. The search indexes record the identity of the
-- database they were derived from: indexes built from another database are rebuilt rather than
-- followed (a copy of a database, restored from a backup, keeps its identity; the indexes then
-- notice that they are ahead of its change log instead).
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));

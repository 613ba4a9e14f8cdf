-- Vectors moved to a table partitioned by collection (one HNSW graph per collection, see
-- src/store/postgres/vectors.rs). A `chunk_vectors` table of the earlier, unpartitioned layout is
-- dropped and its chunks marked for embedding again: the back-fill that runs on start re-creates
-- every vector with the configured model (vectors are derived data; documents and chunks stay).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('chunk_vectors') AND relkind = 'r') THEN
        DROP TABLE chunk_vectors;
        UPDATE chunks SET embedded = false WHERE embedded;
    END IF;
END
$$;

-- Footnote on PostgreSQL: the same model as the embedded SQLite store. The database is the source
-- of truth; every instance's BM25 index follows `changes` (a log of chunk additions, embeddings
-- and deletions whose `seq` is the watermark each index stores).
--
-- Vectors live in `chunk_vectors`, which is NOT created here: its column is `vector(N)` with N the
-- embedding model's dimension, known only when the first embedding arrives. The store creates it
-- (with its HNSW index) then, and drops it when the embedding model changes.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE collections (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id            BIGSERIAL PRIMARY KEY,
    collection_id BIGINT NOT NULL REFERENCES collections (id),
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    pages         BIGINT,
    origin        JSONB NOT NULL DEFAULT '{}',
    added_at      TEXT NOT NULL,
    -- Two instances storing the same upload at once: the second one fails here and reports a
    -- duplicate instead of storing it twice.
    CONSTRAINT documents_unique_content UNIQUE (collection_id, content_hash),
    CONSTRAINT documents_unique_source UNIQUE (collection_id, source)
);

CREATE TABLE chunks (
    id            BIGSERIAL PRIMARY KEY,
    document_id   BIGINT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    locator       TEXT NOT NULL,
    tokens        INTEGER NOT NULL,
    -- false while the embedding is pending (Ollama was unreachable); the vector is in chunk_vectors.
    -- The partial index below is the back-fill queue, so no separate jobs table is needed.
    embedded      BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_pending ON chunks (id) WHERE NOT embedded;

CREATE TABLE changes (
    seq        BIGSERIAL PRIMARY KEY,
    chunk_id   BIGINT NOT NULL,
    collection TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('add', 'embed', 'delete'))
);

-- Every instance LISTENs on `footnote_changes` and catches its BM25 index up when the log grows.
-- NOTIFY is transactional: it is delivered when (and only if) the writing transaction commits.
CREATE FUNCTION footnote_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('footnote_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION footnote_notify_changes();

-- Footnote's embedded store. The database is the source of truth; the BM25 and vector indexes
-- are rebuilt from it by following `changes` (a log of chunk additions, embeddings and deletions
-- whose `seq` is the watermark each index stores).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE collections (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE documents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections (id),
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    pages         INTEGER,
    origin        TEXT NOT NULL DEFAULT '{}',
    added_at      TEXT NOT NULL,
    UNIQUE (collection_id, content_hash),
    UNIQUE (collection_id, source)
);

CREATE TABLE chunks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    locator     TEXT NOT NULL,
    tokens      INTEGER NOT NULL,
    -- little-endian f32s; NULL while the embedding is pending (Ollama was unreachable)
    embedding   BLOB,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_pending ON chunks (id) WHERE embedding IS NULL;

CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id   INTEGER NOT NULL,
    collection TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('add', 'embed', 'delete'))
);

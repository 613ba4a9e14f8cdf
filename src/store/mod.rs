//! The database: the source of truth for collections, documents, chunks, their embeddings and
//! the change log that the derived search indexes follow.
//!
//! [`Store`] is the backend-neutral interface; [`sqlite::SqliteStore`] is the embedded default,
//! `postgres::PgStore` (cargo feature `postgres`) the scale path; [`open`] picks one from
//! `database.url`.
//! Every write that a user's action causes (a document with all its chunks, a deletion) is one
//! transaction, and appends to the change log in the same transaction, so an index that follows
//! the log by sequence number can never miss or half-see a document.
//!
//! A large document need not be held in memory whole for that: it can be *staged*
//! ([`Store::stage_begin`]): its chunks are written in batches to a staging area that nothing
//! reads (search, listings, counts, the change log, the back-fill), then moved into place with
//! the document row in one transaction ([`Store::stage_commit`]), still all or nothing. A stage
//! holds a lease that every batch renews; a stage whose lease ran out (its writer crashed) is
//! deleted when the store opens and whenever another stage begins.

pub mod backup;
pub mod lease;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
pub mod sqlite;

pub(crate) use rows::{ChangeRecord, ChunkRecord};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use footnote_adapter::{Locator, Origin};
use futures::stream::BoxStream;

/// Why a store operation failed. The messages are for logs; users see a generic text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory or database file could not be used.
    #[error("{0}")]
    Io(String),
    /// Stored data that cannot be decoded (a bug or a manual edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The PostgreSQL server lacks pgvector, or it cannot be installed.
    #[error("{0}")]
    Pgvector(String),
    /// `database.url` cannot be used (the message never contains the password).
    #[error("{0}")]
    Config(String),
    /// A staged document's lease ran out (and its chunks were cleaned up) before it was committed.
    #[error("staged upload {0} is gone (its lease ran out)")]
    StageGone(i64),
}

/// Signals that the change log grew (another instance wrote); see [`Store::watch_changes`].
pub type ChangeSignals = BoxStream<'static, ()>;

/// Opens the configured database (see [`Config::database`](crate::config::Config::database))
/// and applies pending migrations.
pub async fn open(cfg: &crate::config::Config) -> Result<Arc<dyn Store>> {
    use crate::config::Database;
    match cfg.database().map_err(StoreError::Config)? {
        Database::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(&path).await?)),
        Database::SqliteUrl(url) => Ok(Arc::new(sqlite::SqliteStore::open_url(&url).await?)),
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => {
            Ok(Arc::new(postgres::PgStore::connect(&url, postgres::PgOptions::from_config(cfg)).await?))
        }
        #[cfg(not(feature = "postgres"))]
        Database::Postgres(_) => Err(StoreError::Config(crate::config::POSTGRES_NOT_COMPILED.into())),
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored document (both dialects select it with the same columns).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: i64,
    pub collection: String,
    pub source: String,
    pub title: String,
    pub kind: String,
    pub content_hash: String,
    pub bytes: i64,
    pub pages: Option<i64>,
    pub added_at: String,
    pub chunks: i64,
    #[sqlx(rename = "pending")]
    pub pending_embeddings: i64,
}

/// A chunk to store with a new document.
#[derive(Clone, Debug)]
pub struct NewChunk {
    pub text: String,
    pub locator: Locator,
    pub tokens: u32,
    /// `None` while the embedding model is unreachable.
    pub embedding: Option<Vec<f32>>,
}

/// A document to store, with all its chunks.
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub collection: String,
    /// The key a later upload of the same name replaces (the file name).
    pub source: String,
    pub title: String,
    pub kind: String,
    pub content_hash: String,
    pub bytes: i64,
    pub pages: Option<i64>,
    pub origin: Origin,
    pub chunks: Vec<NewChunk>,
    /// Whether this upload may replace a document of the same `source` (its uploader may
    /// forget documents there); when not, that case is [`Inserted::SourceTaken`].
    pub may_replace: bool,
}

/// What [`Store::insert_document`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored as a new document.
    New(DocumentRow),
    /// Stored, replacing the older version from the same source.
    Replaced { new: DocumentRow, old: DocumentRow },
    /// The same content was already stored in the collection; nothing was written.
    Duplicate(DocumentRow),
    /// Another document has the same source and `may_replace` was false; nothing was written.
    SourceTaken(DocumentRow),
}

/// A chunk with what a citation needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkRow {
    pub id: i64,
    pub document_id: i64,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub text: String,
    pub locator: Locator,
    pub tokens: u32,
}

/// What happened to a chunk, in log order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    Add,
    Embed,
    Delete,
}

/// One entry of the change log, with the chunk's current data when it still exists.
#[derive(Clone, Debug)]
pub struct Change {
    pub seq: i64,
    pub chunk_id: i64,
    pub collection: String,
    pub op: ChangeOp,
    /// The chunk's title and text, if the chunk still exists.
    pub content: Option<(String, String)>,
    /// The chunk's document, if the chunk still exists.
    pub document_id: Option<i64>,
    /// Where the chunk stands in its document (its headings), if the chunk still exists.
    pub locator: Option<Locator>,
    /// The chunk's embedding, if it exists and has one.
    pub embedding: Option<Vec<f32>>,
}

/// Numbers for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub documents: i64,
    pub chunks: i64,
    pub pending_embeddings: i64,
}

/// The database behind Footnote. Collections are named by the core's scope mapping; every read
/// that serves a question is restricted to the collections it is given.
#[async_trait]
pub trait Store: Send + Sync {
    /// A value from the key-value `meta` table (embedding model and dimension).
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    /// The document of `collection` with this content hash, if any (checked before the costly
    /// extraction and embedding; [`Store::insert_document`] checks again inside its transaction).
    async fn document_by_hash(&self, collection: &str, hash: &str) -> Result<Option<DocumentRow>>;

    /// Stores a document and all its chunks in one transaction, or reports the duplicate.
    async fn insert_document(&self, doc: NewDocument) -> Result<Inserted>;

    /// Opens a stage for a document of `collection` whose chunks come in batches; the stage lives
    /// for `lease` unless a batch renews it. Deletes stages whose lease ran out.
    async fn stage_begin(&self, collection: &str, lease: Duration) -> Result<i64>;

    /// Adds chunks to a stage, numbered from `first_ordinal`, and renews its lease.
    async fn stage_chunks(&self, stage: i64, first_ordinal: usize, chunks: &[NewChunk], lease: Duration) -> Result<()>;

    /// Stores the document (`doc.chunks` is ignored) with the stage's chunks, in one transaction
    /// that also deletes the stage, exactly like [`Store::insert_document`] otherwise (a
    /// duplicate stores nothing and drops the stage).
    async fn stage_commit(&self, stage: i64, doc: NewDocument) -> Result<Inserted>;

    /// Drops a stage and its chunks.
    async fn stage_abort(&self, stage: i64) -> Result<()>;

    /// Deletes a document of one of `collections` with all its chunks; `None` if there is none.
    async fn delete_document(&self, collections: &[String], id: i64) -> Result<Option<DocumentRow>>;

    /// Documents of the given collections, newest first.
    async fn documents(&self, collections: &[String]) -> Result<Vec<DocumentRow>>;

    /// The chunks with these ids (in any order; missing ids are skipped).
    async fn chunks(&self, ids: &[i64]) -> Result<Vec<ChunkRow>>;

    /// The ids of the chunks of `id`'s document whose position is within `around` of its own
    /// (`id` itself included), in document order; empty when there is no such chunk.
    async fn neighbour_ids(&self, id: i64, around: i64) -> Result<Vec<i64>>;

    /// The stored embeddings of the chunks with these ids (in any order; chunks without one, or
    /// missing, are skipped). The support check compares answer sentences with them.
    async fn chunk_vectors(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>>;

    /// Up to `limit` log entries after `seq`, oldest first.
    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>>;

    /// The last sequence number in the log (0 when empty).
    async fn last_seq(&self) -> Result<i64>;

    /// Up to `limit` chunks that still need an embedding: (id, text).
    async fn pending_embeddings(&self, limit: i64) -> Result<Vec<(i64, String)>>;

    /// Stores embeddings for existing chunks (and logs them) in one transaction; returns how many
    /// chunks still existed.
    async fn set_embeddings(&self, items: &[(i64, Vec<f32>)]) -> Result<usize>;

    /// Marks every embedding pending again (the embedding model changed).
    async fn clear_embeddings(&self) -> Result<()>;

    /// Counts over the given collections, or over everything when `None`.
    async fn counts(&self, collections: Option<&[String]>) -> Result<Counts>;

    /// The database's own vector search (pgvector), when it has one: the embedded vector index
    /// is then neither kept nor searched (see [`crate::index::VectorSearch`]).
    fn vector_search(&self) -> Option<Arc<dyn crate::index::VectorSearch>> {
        None
    }

    /// A stream that yields when another process appended to the change log (PostgreSQL's
    /// LISTEN/NOTIFY), or `None` when the backend cannot tell (SQLite: poll instead). Signals may
    /// be lost (a reconnect) or spurious: callers poll as well.
    async fn watch_changes(&self) -> Result<Option<ChangeSignals>> {
        Ok(None)
    }

    /// Leases on chat adapter connections when several instances share this database
    /// (PostgreSQL); `None` when one process owns it (SQLite) and runs every adapter.
    fn leases(&self) -> Option<Arc<dyn lease::Leases>> {
        None
    }
}

/// Encodes an embedding as little-endian f32s.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes little-endian f32s.
pub fn decode_vector(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("embedding of {} bytes", bytes.len())));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The meta key holding the embedding model whose vectors are stored.
pub const META_EMBED_MODEL: &str = "embed_model";
/// The meta key holding the database's random identity (made once by a migration; the search
/// indexes record which database they follow, see [`crate::index::origin`]).
pub const META_DATABASE_ID: &str = "database_id";
/// The meta key holding the dimension of the stored vectors.
pub const META_EMBED_DIMS: &str = "embed_dims";
/// The meta key naming what the stored vectors were made from
/// ([`crate::ingest::context::EMBEDDING_INPUT_VERSION`]; absent: the chunk text alone).
pub const META_EMBED_INPUT: &str = "embed_input";

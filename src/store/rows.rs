//! Row mapping written once for both SQL dialects: the queries of SQLite and PostgreSQL select
//! the same column names and types, and these records (`sqlx::FromRow`, generic over the
//! database) turn them into the store's types.

use footnote_adapter::Locator;

use super::{Change, ChangeOp, ChunkRow, Result, StoreError};

/// Parses a stored locator (JSON text).
pub(crate) fn parse_locator(json: &str) -> Result<Locator> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("locator: {e}")))
}

impl TryFrom<String> for ChangeOp {
    type Error = StoreError;

    fn try_from(op: String) -> Result<Self> {
        match op.as_str() {
            "add" => Ok(ChangeOp::Add),
            "embed" => Ok(ChangeOp::Embed),
            "delete" => Ok(ChangeOp::Delete),
            other => Err(StoreError::Corrupt(format!("change op {other:?}"))),
        }
    }
}

/// A chunk as its queries select it (`tokens` as a 64-bit integer in both dialects).
#[derive(sqlx::FromRow)]
pub(crate) struct ChunkRecord {
    id: i64,
    document_id: i64,
    collection: String,
    title: String,
    source: String,
    text: String,
    locator: String,
    tokens: i64,
}

impl TryFrom<ChunkRecord> for ChunkRow {
    type Error = StoreError;

    fn try_from(r: ChunkRecord) -> Result<Self> {
        Ok(ChunkRow {
            id: r.id,
            document_id: r.document_id,
            collection: r.collection,
            title: r.title,
            source: r.source,
            text: r.text,
            locator: parse_locator(&r.locator)?,
            tokens: u32::try_from(r.tokens).map_err(|_| StoreError::Corrupt(format!("chunk {} tokens", r.id)))?,
        })
    }
}

/// A change-log entry as its queries select it; the chunk's columns are empty once it is gone.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRecord {
    seq: i64,
    chunk_id: i64,
    collection: String,
    #[sqlx(try_from = "String")]
    op: ChangeOp,
    title: Option<String>,
    text: Option<String>,
    document_id: Option<i64>,
    locator: Option<String>,
}

impl ChangeRecord {
    /// The change, with the chunk's embedding when the dialect reads it from the log.
    pub(crate) fn into_change(self, embedding: Option<Vec<f32>>) -> Result<Change> {
        Ok(Change {
            seq: self.seq,
            chunk_id: self.chunk_id,
            collection: self.collection,
            op: self.op,
            content: self.title.zip(self.text),
            document_id: self.document_id,
            locator: self.locator.as_deref().map(parse_locator).transpose()?,
            embedding,
        })
    }
}

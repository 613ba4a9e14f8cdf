//! The embedded store: one SQLite file (WAL mode) in the data directory, via sqlx.
//!
//! Lists of collections are passed as one JSON array parameter and expanded with `json_each`,
//! so every statement is static SQL.
//!
//! Writers take turns in the process ([`SqliteStore::write`]) before they take a connection:
//! SQLite lets one connection write at a time, and a writer that waited for its turn inside
//! SQLite (`busy_timeout`) held a pooled connection meanwhile, so that concurrent uploads could
//! take the whole pool from the questions asked at the same time.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{FromRow, Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const DOCUMENT_COLUMNS: &str =
    "d.id, c.name AS collection, d.source, d.title, d.kind, d.content_hash, d.bytes, d.pages, d.added_at,
    (SELECT count(*) FROM chunks k WHERE k.document_id = d.id) AS chunks,
    (SELECT count(*) FROM chunks k WHERE k.document_id = d.id AND k.embedding IS NULL) AS pending";

/// SQLite behind the [`Store`] trait.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The turn to write, taken before a connection (see the module's documentation).
    writer: Arc<Mutex<()>>,
}

/// A write transaction with the turn to write, held until it is dropped.
struct Write<'a> {
    tx: Transaction<'a, Sqlite>,
    _turn: MutexGuard<'a, ()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("cannot create data directory {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options).await
    }

    /// Opens a `sqlite:` URL (tests use `sqlite::memory:`).
    pub async fn open_url(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self> {
        // Room for a bulk ingest's whole pipeline at once (the uploads being prepared ahead, the
        // store stage, the index catch-up) beside a few questions: WAL readers do not block one
        // another, so a connection more costs little, and none of them queues behind another.
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        let store = SqliteStore { pool, writer: Arc::default() };
        store.clean_stages().await?;
        Ok(store)
    }

    /// Waits for the turn to write, then begins a write transaction.
    async fn write(&self) -> Result<Write<'_>> {
        let turn = self.writer.lock().await;
        Ok(Write { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _turn: turn })
    }

    /// Deletes the stages whose lease ran out, with their chunks.
    async fn clean_stages(&self) -> Result<()> {
        let _turn = self.writer.lock().await;
        let gone = sqlx::query("DELETE FROM stages WHERE lease_until < ?").bind(unix_now()).execute(&self.pool).await?;
        if gone.rows_affected() > 0 {
            tracing::info!(stages = gone.rows_affected(), "deleted uploads left half-staged");
        }
        Ok(())
    }

    /// Stores `doc` with its chunks (inline, or those of a stage) in one transaction.
    async fn insert(&self, doc: &NewDocument, chunks: Chunks<'_>) -> Result<Inserted> {
        let mut write = self.write().await?;
        let tx = &mut *write.tx;
        if let Chunks::Staged(stage) = chunks {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM stages WHERE id = ?").bind(stage).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(StoreError::StageGone(stage));
            }
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        sqlx::query("INSERT INTO collections (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(&doc.collection)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        let collection_id: i64 = sqlx::query_scalar("SELECT id FROM collections WHERE name = ?")
            .bind(&doc.collection)
            .fetch_one(&mut *tx)
            .await?;

        let same_content: Option<i64> =
            sqlx::query_scalar("SELECT id FROM documents WHERE collection_id = ? AND content_hash = ?")
                .bind(collection_id)
                .bind(&doc.content_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = same_content {
            let existing = document_by_id(&mut *tx, id).await?;
            if let Chunks::Staged(stage) = chunks {
                sqlx::query("DELETE FROM stages WHERE id = ?").bind(stage).execute(&mut *tx).await?;
                write.tx.commit().await?;
            } else {
                write.tx.rollback().await?;
            }
            return Ok(Inserted::Duplicate(existing));
        }

        let same_source: Option<i64> =
            sqlx::query_scalar("SELECT id FROM documents WHERE collection_id = ? AND source = ?")
                .bind(collection_id)
                .bind(&doc.source)
                .fetch_optional(&mut *tx)
                .await?;
        let old = match same_source {
            Some(id) => {
                let old = document_by_id(&mut *tx, id).await?;
                if !doc.may_replace {
                    write.tx.rollback().await?;
                    return Ok(Inserted::SourceTaken(old));
                }
                delete_in(&mut *tx, &old).await?;
                Some(old)
            }
            None => None,
        };

        let origin = serde_json::to_string(&doc.origin).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO documents (collection_id, source, title, kind, content_hash, bytes, pages, origin, added_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(collection_id)
        .bind(&doc.source)
        .bind(&doc.title)
        .bind(&doc.kind)
        .bind(&doc.content_hash)
        .bind(doc.bytes)
        .bind(doc.pages)
        .bind(origin)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;

        match chunks {
            Chunks::Inline(chunks) => {
                for (ordinal, chunk) in chunks.iter().enumerate() {
                    let locator =
                        serde_json::to_string(&chunk.locator).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let chunk_id: i64 = sqlx::query_scalar(
                        "INSERT INTO chunks (document_id, ordinal, text, locator, tokens, embedding) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    )
                    .bind(id)
                    .bind(ordinal as i64)
                    .bind(&chunk.text)
                    .bind(locator)
                    .bind(chunk.tokens as i64)
                    .bind(chunk.embedding.as_deref().map(encode_vector))
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query("INSERT INTO changes (chunk_id, collection, op) VALUES (?, ?, 'add')")
                        .bind(chunk_id)
                        .bind(&doc.collection)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Chunks::Staged(stage) => {
                sqlx::query(
                    "INSERT INTO chunks (document_id, ordinal, text, locator, tokens, embedding)
                     SELECT ?, ordinal, text, locator, tokens, embedding FROM staged_chunks WHERE stage_id = ? ORDER BY ordinal",
                )
                .bind(id)
                .bind(stage)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO changes (chunk_id, collection, op) SELECT id, ?, 'add' FROM chunks WHERE document_id = ? ORDER BY ordinal",
                )
                .bind(&doc.collection)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM stages WHERE id = ?").bind(stage).execute(&mut *tx).await?;
            }
        }
        let new = document_by_id(&mut *tx, id).await?;
        write.tx.commit().await?;
        Ok(match old {
            Some(old) => Inserted::Replaced { new, old },
            None => Inserted::New(new),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Where the chunks of a document being inserted come from.
#[derive(Clone, Copy)]
enum Chunks<'a> {
    Inline(&'a [NewChunk]),
    Staged(i64),
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn document_row(row: &SqliteRow) -> Result<DocumentRow> {
    Ok(DocumentRow::from_row(row)?)
}

async fn document_by_id(conn: &mut sqlx::SqliteConnection, id: i64) -> Result<DocumentRow> {
    let sql = format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id WHERE d.id = ?"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&mut *conn).await?;
    document_row(&row)
}

/// Deletes a document's chunks (logging each deletion) and the document itself.
async fn delete_in(conn: &mut sqlx::SqliteConnection, doc: &DocumentRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO changes (chunk_id, collection, op) SELECT id, ?, 'delete' FROM chunks WHERE document_id = ? ORDER BY id",
    )
    .bind(&doc.collection)
    .bind(doc.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM chunks WHERE document_id = ?").bind(doc.id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM documents WHERE id = ?").bind(doc.id).execute(&mut *conn).await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.pool).await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let _turn = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn document_by_hash(&self, collection: &str, hash: &str) -> Result<Option<DocumentRow>> {
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE c.name = ? AND d.content_hash = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(collection).bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(document_row).transpose()
    }

    async fn insert_document(&self, doc: NewDocument) -> Result<Inserted> {
        self.insert(&doc, Chunks::Inline(&doc.chunks)).await
    }

    async fn stage_begin(&self, collection: &str, lease: Duration) -> Result<i64> {
        self.clean_stages().await?;
        let _turn = self.writer.lock().await;
        Ok(sqlx::query_scalar("INSERT INTO stages (collection, lease_until) VALUES (?, ?) RETURNING id")
            .bind(collection)
            .bind(unix_now() + lease.as_secs() as i64)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn stage_chunks(&self, stage: i64, first_ordinal: usize, chunks: &[NewChunk], lease: Duration) -> Result<()> {
        let mut write = self.write().await?;
        let tx = &mut *write.tx;
        let renewed = sqlx::query("UPDATE stages SET lease_until = ? WHERE id = ?")
            .bind(unix_now() + lease.as_secs() as i64)
            .bind(stage)
            .execute(&mut *tx)
            .await?;
        if renewed.rows_affected() == 0 {
            return Err(StoreError::StageGone(stage));
        }
        for (n, chunk) in chunks.iter().enumerate() {
            let locator = serde_json::to_string(&chunk.locator).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO staged_chunks (stage_id, ordinal, text, locator, tokens, embedding) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(stage)
            .bind((first_ordinal + n) as i64)
            .bind(&chunk.text)
            .bind(locator)
            .bind(chunk.tokens as i64)
            .bind(chunk.embedding.as_deref().map(encode_vector))
            .execute(&mut *tx)
            .await?;
        }
        write.tx.commit().await?;
        Ok(())
    }

    async fn stage_commit(&self, stage: i64, doc: NewDocument) -> Result<Inserted> {
        self.insert(&doc, Chunks::Staged(stage)).await
    }

    async fn stage_abort(&self, stage: i64) -> Result<()> {
        let _turn = self.writer.lock().await;
        sqlx::query("DELETE FROM stages WHERE id = ?").bind(stage).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_document(&self, collections: &[String], id: i64) -> Result<Option<DocumentRow>> {
        let mut write = self.write().await?;
        let tx = &mut *write.tx;
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE d.id = ? AND c.name IN (SELECT value FROM json_each(?))"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(json_list(collections))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let doc = document_row(&row)?;
        delete_in(tx, &doc).await?;
        write.tx.commit().await?;
        Ok(Some(doc))
    }

    async fn documents(&self, collections: &[String]) -> Result<Vec<DocumentRow>> {
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE c.name IN (SELECT value FROM json_each(?)) ORDER BY d.id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(json_list(collections)).fetch_all(&self.pool).await?;
        rows.iter().map(document_row).collect()
    }

    async fn neighbour_ids(&self, id: i64, around: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query_scalar(
            "SELECT n.id FROM chunks k JOIN chunks n ON n.document_id = k.document_id
             WHERE k.id = ? AND n.ordinal BETWEEN k.ordinal - ? AND k.ordinal + ? ORDER BY n.ordinal",
        )
        .bind(id)
        .bind(around)
        .bind(around)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn chunks(&self, ids: &[i64]) -> Result<Vec<ChunkRow>> {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT k.id, k.document_id, c.name AS collection, d.title, d.source, k.text, k.locator, k.tokens
             FROM chunks k JOIN documents d ON d.id = k.document_id JOIN collections c ON c.id = d.collection_id
             WHERE k.id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| ChunkRow::try_from(ChunkRecord::from_row(row)?)).collect()
    }

    async fn chunk_vectors(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get("embedding")?;
                Ok((row.try_get("id")?, decode_vector(&bytes)?))
            })
            .collect()
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT g.seq, g.chunk_id, g.collection, g.op, d.title, k.text, k.document_id, k.locator, k.embedding
             FROM changes g LEFT JOIN chunks k ON k.id = g.chunk_id LEFT JOIN documents d ON d.id = k.document_id
             WHERE g.seq > ? ORDER BY g.seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let embedding: Option<Vec<u8>> = row.try_get("embedding")?;
                ChangeRecord::from_row(row)?.into_change(embedding.as_deref().map(decode_vector).transpose()?)
            })
            .collect()
    }

    async fn last_seq(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM changes").fetch_one(&self.pool).await?)
    }

    async fn pending_embeddings(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("text")?))).collect()
    }

    async fn set_embeddings(&self, items: &[(i64, Vec<f32>)]) -> Result<usize> {
        let mut write = self.write().await?;
        let tx = &mut *write.tx;
        let mut stored = 0;
        for (id, vector) in items {
            let collection: Option<String> = sqlx::query_scalar(
                "UPDATE chunks SET embedding = ? WHERE id = ?
                 RETURNING (SELECT c.name FROM documents d JOIN collections c ON c.id = d.collection_id WHERE d.id = chunks.document_id)",
            )
            .bind(encode_vector(vector))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(collection) = collection {
                sqlx::query("INSERT INTO changes (chunk_id, collection, op) VALUES (?, ?, 'embed')")
                    .bind(id)
                    .bind(collection)
                    .execute(&mut *tx)
                    .await?;
                stored += 1;
            }
        }
        write.tx.commit().await?;
        Ok(stored)
    }

    async fn clear_embeddings(&self) -> Result<()> {
        let mut write = self.write().await?;
        let tx = &mut *write.tx;
        sqlx::query("UPDATE chunks SET embedding = NULL").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM meta WHERE key IN (?, ?)")
            .bind(META_EMBED_MODEL)
            .bind(META_EMBED_DIMS)
            .execute(&mut *tx)
            .await?;
        write.tx.commit().await?;
        Ok(())
    }

    async fn counts(&self, collections: Option<&[String]>) -> Result<Counts> {
        let row = match collections {
            None => {
                sqlx::query(
                    "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM chunks) AS chunks,
                            (SELECT count(*) FROM chunks WHERE embedding IS NULL) AS pending",
                )
                .fetch_one(&self.pool)
                .await?
            }
            Some(collections) => {
                sqlx::query(
                    "WITH scope AS (SELECT d.id FROM documents d JOIN collections c ON c.id = d.collection_id
                                    WHERE c.name IN (SELECT value FROM json_each(?)))
                     SELECT (SELECT count(*) FROM scope) AS documents,
                            (SELECT count(*) FROM chunks WHERE document_id IN (SELECT id FROM scope)) AS chunks,
                            (SELECT count(*) FROM chunks WHERE embedding IS NULL AND document_id IN (SELECT id FROM scope)) AS pending",
                )
                .bind(json_list(collections))
                .fetch_one(&self.pool)
                .await?
            }
        };
        Ok(Counts {
            documents: row.try_get("documents")?,
            chunks: row.try_get("chunks")?,
            pending_embeddings: row.try_get("pending")?,
        })
    }
}

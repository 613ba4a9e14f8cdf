//! The writing side of [`PgStore`]: one transaction per document, deletion or batch of
//! embeddings, each ending with its change-log entries (see the watermark notes in
//! [`super`]).

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};

use super::{CHANGE_LOG_LOCK, DOCUMENT_COLUMNS, PgStore, vectors};
use crate::store::*;

/// Where the chunks of a document being inserted come from.
#[derive(Clone, Copy)]
pub(super) enum Chunks<'a> {
    Inline(&'a [NewChunk]),
    /// The chunks of a stage (see [`super::stage`]).
    Staged(i64),
}

impl PgStore {
    /// One attempt at storing `doc` with its chunks. `token` is the same for every attempt of one
    /// upload: an attempt that finds the upload already stored under its own token knows that an
    /// earlier attempt's COMMIT went through although its answer was lost, and reports it as new
    /// rather than as a duplicate of itself.
    pub(super) async fn insert_once(&self, doc: &NewDocument, chunks: Chunks<'_>, token: &str) -> Result<Inserted> {
        let dims = match chunks {
            Chunks::Inline(chunks) => chunks.iter().find_map(|c| c.embedding.as_ref().map(Vec::len)),
            Chunks::Staged(stage) => super::stage::dims(self, stage).await?,
        };
        if let Some(dims) = dims {
            // The collection's id, for its vector partition (made outside the write: see there).
            let collection_id: i64 = sqlx::query_scalar(
                "INSERT INTO collections (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            )
            .bind(&doc.collection)
            .fetch_one(&self.pool)
            .await?;
            vectors::prepare_write(self, dims, &[collection_id]).await?;
        }
        let mut tx = self.pool.begin().await?;
        // Upserting locks the collection's row: concurrent ingests into one collection take
        // turns, so the duplicate and same-source checks below see each other's commits.
        let collection_id: i64 = sqlx::query_scalar(
            "INSERT INTO collections (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        )
        .bind(&doc.collection)
        .fetch_one(&mut *tx)
        .await?;
        let same_content: Option<(i64, Option<String>)> =
            sqlx::query_as("SELECT id, insert_token FROM documents WHERE collection_id = $1 AND content_hash = $2")
                .bind(collection_id)
                .bind(&doc.content_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((id, stored_token)) = same_content {
            let existing = document_by_id(&mut tx, id).await?;
            tx.rollback().await?;
            if stored_token.as_deref() == Some(token) {
                tracing::info!(document = id, "an earlier attempt stored this upload; its answer was lost");
                return Ok(Inserted::New(existing));
            }
            if let Chunks::Staged(stage) = chunks {
                super::stage::abort_once(self, stage).await?;
            }
            return Ok(Inserted::Duplicate(existing));
        }
        if let Chunks::Staged(stage) = chunks {
            super::stage::lock(&mut tx, stage).await?;
        }
        let same_source: Option<i64> =
            sqlx::query_scalar("SELECT id FROM documents WHERE collection_id = $1 AND source = $2")
                .bind(collection_id)
                .bind(&doc.source)
                .fetch_optional(&mut *tx)
                .await?;
        let mut log = ChangeBatch::default();
        let old = match same_source {
            Some(id) => {
                let old = document_by_id(&mut tx, id).await?;
                if !doc.may_replace {
                    tx.rollback().await?;
                    return Ok(Inserted::SourceTaken(old));
                }
                delete_in(&mut tx, &old, &mut log).await?;
                Some(old)
            }
            None => None,
        };

        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let origin = serde_json::to_value(&doc.origin).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO documents (collection_id, source, title, kind, content_hash, bytes, pages, origin, added_at, insert_token)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(collection_id)
        .bind(&doc.source)
        .bind(&doc.title)
        .bind(&doc.kind)
        .bind(&doc.content_hash)
        .bind(doc.bytes)
        .bind(doc.pages)
        .bind(sqlx::types::Json(origin))
        .bind(&now)
        .bind(token)
        .fetch_one(&mut *tx)
        .await?;

        let chunk_ids = match chunks {
            Chunks::Inline(chunks) => insert_chunks(&mut tx, id, collection_id, chunks).await?,
            Chunks::Staged(stage) => super::stage::move_chunks(&mut tx, stage, id, collection_id).await?,
        };
        for chunk_id in chunk_ids {
            log.push(chunk_id, &doc.collection, "add");
        }
        let new = document_by_id(&mut tx, id).await?;
        log.append(&mut tx).await?;
        tx.commit().await?;
        Ok(match old {
            Some(old) => Inserted::Replaced { new, old },
            None => Inserted::New(new),
        })
    }

    pub(super) async fn delete_once(&self, collections: &[String], id: i64) -> Result<Option<DocumentRow>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE d.id = $1 AND c.name = ANY($2) FOR UPDATE OF d"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(collections).fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let doc = document_row(&row)?;
        let mut log = ChangeBatch::default();
        delete_in(&mut tx, &doc, &mut log).await?;
        log.append(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(doc))
    }

    pub(super) async fn set_embeddings_once(&self, items: &[(i64, Vec<f32>)]) -> Result<usize> {
        let Some((_, first)) = items.first() else {
            return Ok(0);
        };
        let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
        let collection_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT d.collection_id FROM chunks k JOIN documents d ON d.id = k.document_id WHERE k.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        vectors::prepare_write(self, first.len(), &collection_ids).await?;
        let mut tx = self.pool.begin().await?;
        // Chunks deleted meanwhile are skipped; the rest are locked until COMMIT.
        let rows = sqlx::query(
            "UPDATE chunks k SET embedded = true FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE k.id = ANY($1) AND d.id = k.document_id RETURNING k.id, d.collection_id, c.name",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut log = ChangeBatch::default();
        let mut by_collection: std::collections::BTreeMap<i64, Vec<(i64, &[f32])>> = Default::default();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            if let Some((_, v)) = items.iter().find(|(i, _)| *i == id) {
                by_collection.entry(row.try_get("collection_id")?).or_default().push((id, v.as_slice()));
                log.push(id, &name, "embed");
            }
        }
        for (collection_id, vectors) in &by_collection {
            vectors::upsert(&mut tx, *collection_id, vectors).await?;
        }
        log.append(&mut tx).await?;
        tx.commit().await?;
        Ok(rows.len())
    }
}

/// Inserts a document's chunks and their vectors; their ids in ordinal order.
async fn insert_chunks(conn: &mut PgConnection, id: i64, collection_id: i64, chunks: &[NewChunk]) -> Result<Vec<i64>> {
    let mut ordinals = Vec::with_capacity(chunks.len());
    let mut texts = Vec::with_capacity(chunks.len());
    let mut locators = Vec::with_capacity(chunks.len());
    let mut tokens = Vec::with_capacity(chunks.len());
    let mut embedded = Vec::with_capacity(chunks.len());
    for (ordinal, chunk) in chunks.iter().enumerate() {
        ordinals.push(ordinal as i32);
        texts.push(chunk.text.as_str());
        locators.push(serde_json::to_string(&chunk.locator).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        tokens.push(chunk.tokens as i32);
        embedded.push(chunk.embedding.is_some());
    }
    let rows = sqlx::query(
        "INSERT INTO chunks (document_id, ordinal, text, locator, tokens, embedded)
         SELECT $1, u.ordinal, u.text, u.locator, u.tokens, u.embedded
         FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int4[], $6::bool[]) AS u(ordinal, text, locator, tokens, embedded)
         ORDER BY u.ordinal RETURNING id, ordinal",
    )
    .bind(id)
    .bind(&ordinals)
    .bind(&texts)
    .bind(&locators)
    .bind(&tokens)
    .bind(&embedded)
    .fetch_all(&mut *conn)
    .await?;
    let mut chunk_ids = vec![0i64; chunks.len()];
    for row in &rows {
        let ordinal: i32 = row.try_get("ordinal")?;
        chunk_ids[ordinal as usize] = row.try_get("id")?;
    }
    let vectors: Vec<(i64, &[f32])> =
        chunks.iter().zip(&chunk_ids).filter_map(|(c, id)| c.embedding.as_deref().map(|v| (*id, v))).collect();
    vectors::upsert(conn, collection_id, &vectors).await?;
    Ok(chunk_ids)
}

/// Entries for the change log, appended together at the end of a transaction.
#[derive(Default)]
pub(super) struct ChangeBatch {
    ids: Vec<i64>,
    collections: Vec<String>,
    ops: Vec<&'static str>,
}

impl ChangeBatch {
    fn push(&mut self, chunk_id: i64, collection: &str, op: &'static str) {
        self.ids.push(chunk_id);
        self.collections.push(collection.to_owned());
        self.ops.push(op);
    }

    /// Takes the change-log lock (held until the transaction ends), then appends in order.
    async fn append(self, conn: &mut PgConnection) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHANGE_LOG_LOCK).execute(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO changes (chunk_id, collection, op)
             SELECT u.id, u.collection, u.op FROM UNNEST($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS u(id, collection, op, n)
             ORDER BY u.n",
        )
        .bind(&self.ids)
        .bind(&self.collections)
        .bind(&self.ops)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

pub(super) fn document_row(row: &PgRow) -> Result<DocumentRow> {
    Ok(DocumentRow::from_row(row)?)
}

pub(super) async fn document_by_id(conn: &mut PgConnection, id: i64) -> Result<DocumentRow> {
    let sql = format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id WHERE d.id = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&mut *conn).await?;
    document_row(&row)
}

/// Deletes a document with its chunks and their vectors, and queues the log entries.
async fn delete_in(conn: &mut PgConnection, doc: &DocumentRow, log: &mut ChangeBatch) -> Result<()> {
    let collection_id: i64 = sqlx::query_scalar("SELECT collection_id FROM documents WHERE id = $1")
        .bind(doc.id)
        .fetch_one(&mut *conn)
        .await?;
    let mut ids: Vec<i64> = sqlx::query_scalar("DELETE FROM chunks WHERE document_id = $1 RETURNING id")
        .bind(doc.id)
        .fetch_all(&mut *conn)
        .await?;
    vectors::delete(conn, collection_id, &ids).await?;
    ids.sort_unstable();
    for id in ids {
        log.push(id, &doc.collection, "delete");
    }
    sqlx::query("DELETE FROM documents WHERE id = $1").bind(doc.id).execute(&mut *conn).await?;
    Ok(())
}

/// A unique-key conflict on `documents`: another instance stored the same upload (or the same
/// source) at the same moment. Running the insert again sees its commit.
pub(super) fn is_document_conflict(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.code().as_deref() == Some("23505") && db.constraint().is_some_and(|c| c.starts_with("documents_unique"))
        }
        _ => false,
    }
}

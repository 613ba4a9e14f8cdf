//! Staged documents on PostgreSQL (see [`crate::store::Store::stage_begin`]): `stages` and
//! `staged_chunks`, which no query of search, listings, counts, the change log or the back-fill
//! reads. Committing moves the chunks into `chunks` and their vectors into `chunk_vectors` with
//! `INSERT … SELECT` inside the document's transaction, so they never travel through Footnote's
//! memory again.

use std::time::Duration;

use pgvector::Vector;
use sqlx::{PgConnection, Row};

use super::{PgStore, retry};
use crate::store::{NewChunk, Result, StoreError};

impl PgStore {
    /// Deletes the stages whose lease ran out (any instance's), with their chunks.
    pub(super) async fn clean_stages(&self) -> Result<()> {
        let gone = sqlx::query("DELETE FROM stages WHERE lease_until < now()").execute(&self.pool).await?;
        if gone.rows_affected() > 0 {
            tracing::info!(stages = gone.rows_affected(), "deleted uploads left half-staged");
        }
        Ok(())
    }

    pub(super) async fn stage_begin_once(&self, collection: &str, lease: Duration) -> Result<i64> {
        self.clean_stages().await?;
        Ok(sqlx::query_scalar(
            "INSERT INTO stages (collection, lease_until) VALUES ($1, now() + make_interval(secs => $2)) RETURNING id",
        )
        .bind(collection)
        .bind(lease.as_secs_f64())
        .fetch_one(&self.pool)
        .await?)
    }

    /// One attempt at adding chunks; an attempt repeated after a lost COMMIT adds nothing twice.
    pub(super) async fn stage_chunks_once(
        &self,
        stage: i64,
        first_ordinal: usize,
        chunks: &[NewChunk],
        lease: Duration,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let renewed = sqlx::query("UPDATE stages SET lease_until = now() + make_interval(secs => $2) WHERE id = $1")
            .bind(stage)
            .bind(lease.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        if renewed.rows_affected() == 0 {
            return Err(StoreError::StageGone(stage));
        }
        let mut ordinals = Vec::with_capacity(chunks.len());
        let mut texts = Vec::with_capacity(chunks.len());
        let mut locators = Vec::with_capacity(chunks.len());
        let mut tokens = Vec::with_capacity(chunks.len());
        let mut embeddings = Vec::with_capacity(chunks.len());
        for (n, chunk) in chunks.iter().enumerate() {
            ordinals.push((first_ordinal + n) as i32);
            texts.push(chunk.text.as_str());
            locators.push(serde_json::to_string(&chunk.locator).map_err(|e| StoreError::Corrupt(e.to_string()))?);
            tokens.push(chunk.tokens as i32);
            embeddings.push(chunk.embedding.as_ref().map(|v| Vector::from(v.clone())));
        }
        sqlx::query(
            "INSERT INTO staged_chunks (stage_id, ordinal, text, locator, tokens, embedding)
             SELECT $1, u.ordinal, u.text, u.locator, u.tokens, u.embedding
             FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int4[], $6::vector[]) AS u(ordinal, text, locator, tokens, embedding)
             ON CONFLICT (stage_id, ordinal) DO NOTHING",
        )
        .bind(stage)
        .bind(&ordinals)
        .bind(&texts)
        .bind(&locators)
        .bind(&tokens)
        .bind(&embeddings)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn stage_abort_with_retry(&self, stage: i64) -> Result<()> {
        retry::retry("drop stage", self.opts.retry_for, || abort_once(self, stage)).await
    }
}

/// The dimension of a stage's vectors, or `None` when it has none (or is gone).
pub(super) async fn dims(store: &PgStore, stage: i64) -> Result<Option<usize>> {
    let dims: Option<i32> = sqlx::query_scalar(
        "SELECT vector_dims(embedding) FROM staged_chunks WHERE stage_id = $1 AND embedding IS NOT NULL LIMIT 1",
    )
    .bind(stage)
    .fetch_optional(&store.pool)
    .await?;
    Ok(dims.map(|d| d as usize))
}

/// Drops a stage and its chunks.
pub(super) async fn abort_once(store: &PgStore, stage: i64) -> Result<()> {
    sqlx::query("DELETE FROM stages WHERE id = $1").bind(stage).execute(&store.pool).await?;
    Ok(())
}

/// Locks the stage for the committing transaction, or says it is gone.
pub(super) async fn lock(conn: &mut PgConnection, stage: i64) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM stages WHERE id = $1 FOR UPDATE")
        .bind(stage)
        .fetch_optional(&mut *conn)
        .await?;
    found.map(drop).ok_or(StoreError::StageGone(stage))
}

/// Moves a stage's chunks to document `document_id` and their vectors to its collection's
/// partition, then deletes the stage; the new chunk ids in ordinal order.
pub(super) async fn move_chunks(
    conn: &mut PgConnection,
    stage: i64,
    document_id: i64,
    collection_id: i64,
) -> Result<Vec<i64>> {
    let rows = sqlx::query(
        "INSERT INTO chunks (document_id, ordinal, text, locator, tokens, embedded)
         SELECT $1, ordinal, text, locator, tokens, embedding IS NOT NULL FROM staged_chunks WHERE stage_id = $2
         ORDER BY ordinal RETURNING id, ordinal",
    )
    .bind(document_id)
    .bind(stage)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids: Vec<(i32, i64)> =
        rows.iter().map(|r| Ok((r.try_get("ordinal")?, r.try_get("id")?))).collect::<Result<_>>()?;
    ids.sort_unstable();
    if super::vectors::table_dims(conn).await?.is_some() {
        sqlx::query(
            "INSERT INTO chunk_vectors (collection_id, chunk_id, embedding)
         SELECT $1, k.id, s.embedding FROM staged_chunks s JOIN chunks k ON k.document_id = $2 AND k.ordinal = s.ordinal
         WHERE s.stage_id = $3 AND s.embedding IS NOT NULL",
        )
        .bind(collection_id)
        .bind(document_id)
        .bind(stage)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM stages WHERE id = $1").bind(stage).execute(&mut *conn).await?;
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

//! [`Store`] for [`PgStore`]: every operation retried across a lost connection.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::{FromRow, Row};

use super::writes::{Chunks, document_row, is_document_conflict};
use super::{CHANGES_CHANNEL, DOCUMENT_COLUMNS, PgStore, VectorPlan, retry, vectors};
use crate::index::{IndexError, VectorSearch};
use crate::store::*;

/// How long a claim on pending embeddings keeps other instances away from them.
const CLAIM_FOR: &str = "5 minutes";

#[async_trait]
impl Store for PgStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        retry::retry("meta", self.opts.retry_for, || async {
            Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        retry::retry("set meta", self.opts.retry_for, || async {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    async fn document_by_hash(&self, collection: &str, hash: &str) -> Result<Option<DocumentRow>> {
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE c.name = $1 AND d.content_hash = $2"
        );
        retry::retry("document by hash", self.opts.retry_for, || async {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(collection)
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(document_row).transpose()
        })
        .await
    }

    async fn insert_document(&self, doc: NewDocument) -> Result<Inserted> {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut conflicts = 0;
        loop {
            let chunks = Chunks::Inline(&doc.chunks);
            match retry::retry("insert document", self.opts.retry_for, || self.insert_once(&doc, chunks, &token)).await
            {
                Err(e) if is_document_conflict(&e) && conflicts < 3 => conflicts += 1,
                other => return other,
            }
        }
    }

    async fn stage_begin(&self, collection: &str, lease: Duration) -> Result<i64> {
        retry::retry("begin stage", self.opts.retry_for, || self.stage_begin_once(collection, lease)).await
    }

    async fn stage_chunks(&self, stage: i64, first_ordinal: usize, chunks: &[NewChunk], lease: Duration) -> Result<()> {
        retry::retry("stage chunks", self.opts.retry_for, || {
            self.stage_chunks_once(stage, first_ordinal, chunks, lease)
        })
        .await
    }

    async fn stage_commit(&self, stage: i64, doc: NewDocument) -> Result<Inserted> {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut conflicts = 0;
        loop {
            let chunks = Chunks::Staged(stage);
            match retry::retry("commit stage", self.opts.retry_for, || self.insert_once(&doc, chunks, &token)).await {
                Err(e) if is_document_conflict(&e) && conflicts < 3 => conflicts += 1,
                other => return other,
            }
        }
    }

    async fn stage_abort(&self, stage: i64) -> Result<()> {
        self.stage_abort_with_retry(stage).await
    }

    async fn delete_document(&self, collections: &[String], id: i64) -> Result<Option<DocumentRow>> {
        retry::retry("delete document", self.opts.retry_for, || self.delete_once(collections, id)).await
    }

    async fn documents(&self, collections: &[String]) -> Result<Vec<DocumentRow>> {
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections c ON c.id = d.collection_id
             WHERE c.name = ANY($1) ORDER BY d.id DESC"
        );
        retry::retry("documents", self.opts.retry_for, || async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(collections).fetch_all(&self.pool).await?;
            rows.iter().map(document_row).collect()
        })
        .await
    }

    async fn neighbour_ids(&self, id: i64, around: i64) -> Result<Vec<i64>> {
        retry::retry("neighbour_ids", self.opts.retry_for, || async {
            Ok(sqlx::query_scalar(
                "SELECT n.id FROM chunks k JOIN chunks n ON n.document_id = k.document_id
                 WHERE k.id = $1 AND n.ordinal BETWEEN k.ordinal - $2 AND k.ordinal + $2 ORDER BY n.ordinal",
            )
            .bind(id)
            .bind(around as i32)
            .fetch_all(&self.pool)
            .await?)
        })
        .await
    }

    async fn chunks(&self, ids: &[i64]) -> Result<Vec<ChunkRow>> {
        let rows = retry::retry("chunks", self.opts.retry_for, || async {
            Ok(sqlx::query(
                "SELECT k.id, k.document_id, c.name AS collection, d.title, d.source, k.text, k.locator, k.tokens::bigint AS tokens
                 FROM chunks k JOIN documents d ON d.id = k.document_id JOIN collections c ON c.id = d.collection_id
                 WHERE k.id = ANY($1)",
            )
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        rows.iter().map(|row| ChunkRow::try_from(ChunkRecord::from_row(row)?)).collect()
    }

    async fn chunk_vectors(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        retry::retry("chunk vectors", self.opts.retry_for, || vectors::of_chunks(self, ids)).await
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>> {
        // Vectors are searched in the database, so the log is read without them.
        let rows = retry::retry("changes", self.opts.retry_for, || async {
            Ok(sqlx::query(
                "SELECT g.seq, g.chunk_id, g.collection, g.op, d.title, k.text, k.document_id, k.locator
                 FROM changes g LEFT JOIN chunks k ON k.id = g.chunk_id LEFT JOIN documents d ON d.id = k.document_id
                 WHERE g.seq > $1 ORDER BY g.seq LIMIT $2",
            )
            .bind(seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        rows.iter().map(|row| ChangeRecord::from_row(row)?.into_change(None)).collect()
    }

    async fn last_seq(&self) -> Result<i64> {
        retry::retry("last seq", self.opts.retry_for, || async {
            Ok(sqlx::query_scalar("SELECT coalesce(max(seq), 0)::bigint FROM changes").fetch_one(&self.pool).await?)
        })
        .await
    }

    async fn pending_embeddings(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        // Several instances back-fill at once: each claims its batch for a while, so they embed
        // different chunks. A claim of this instance never stops it (a failed attempt is simply
        // made again); another's runs out after CLAIM_FOR (that instance stopped or is stuck).
        let rows = retry::retry("pending embeddings", self.opts.retry_for, || async {
            Ok(sqlx::query(
                "UPDATE chunks SET claimed_by = $2, claimed_until = now() + $3::interval
                 WHERE id IN (SELECT id FROM chunks
                              WHERE NOT embedded AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = $2)
                              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, text",
            )
            .bind(limit)
            .bind(&self.instance)
            .bind(CLAIM_FOR)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        let mut rows = rows;
        rows.sort_by_key(|r| r.try_get::<i64, _>("id").unwrap_or_default());
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("text")?))).collect()
    }

    async fn set_embeddings(&self, items: &[(i64, Vec<f32>)]) -> Result<usize> {
        retry::retry("set embeddings", self.opts.retry_for, || self.set_embeddings_once(items)).await
    }

    async fn clear_embeddings(&self) -> Result<()> {
        retry::retry("clear embeddings", self.opts.retry_for, || async {
            let mut tx = self.pool.begin().await?;
            vectors::drop_table(&mut tx).await?;
            sqlx::query(
                "UPDATE chunks SET embedded = false, claimed_until = NULL WHERE embedded OR claimed_until IS NOT NULL",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM meta WHERE key IN ($1, $2)")
                .bind(META_EMBED_MODEL)
                .bind(META_EMBED_DIMS)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn counts(&self, collections: Option<&[String]>) -> Result<Counts> {
        let row = retry::retry("counts", self.opts.retry_for, || async {
            Ok(match collections {
                None => {
                    sqlx::query(
                        "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM chunks) AS chunks,
                                (SELECT count(*) FROM chunks WHERE NOT embedded) AS pending",
                    )
                    .fetch_one(&self.pool)
                    .await?
                }
                Some(collections) => {
                    sqlx::query(
                        "WITH scope AS (SELECT d.id FROM documents d JOIN collections c ON c.id = d.collection_id WHERE c.name = ANY($1))
                         SELECT (SELECT count(*) FROM scope) AS documents,
                                (SELECT count(*) FROM chunks WHERE document_id IN (SELECT id FROM scope)) AS chunks,
                                (SELECT count(*) FROM chunks WHERE NOT embedded AND document_id IN (SELECT id FROM scope)) AS pending",
                    )
                    .bind(collections)
                    .fetch_one(&self.pool)
                    .await?
                }
            })
        })
        .await?;
        Ok(Counts {
            documents: row.try_get("documents")?,
            chunks: row.try_get("chunks")?,
            pending_embeddings: row.try_get("pending")?,
        })
    }

    fn vector_search(&self) -> Option<std::sync::Arc<dyn VectorSearch>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    async fn watch_changes(&self) -> Result<Option<ChangeSignals>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        // A lost connection is re-established by the listener; notifications sent meanwhile are
        // lost, which the caller's polling covers. Errors are reported as a signal too (catching
        // up once more is harmless) after a pause, so a dead server is not polled in a loop.
        let signals = futures::stream::unfold(listener, |mut listener| async move {
            match listener.try_recv().await {
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "change notifications interrupted");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Some(((), listener))
        });
        Ok(Some(signals.boxed()))
    }

    fn leases(&self) -> Option<std::sync::Arc<dyn crate::store::lease::Leases>> {
        Some(self.leases.clone())
    }
}

#[async_trait]
impl VectorSearch for PgStore {
    async fn nearest(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        let hits = self.vector_search_with(collections, query, k, VectorPlan::Default).await?;
        Ok(hits.into_iter().map(|(id, score)| (id as u64, score)).collect())
    }
}

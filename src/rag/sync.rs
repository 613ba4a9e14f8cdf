//! Keeping one instance in step with the shared database while it runs.
//!
//! Several Footnote processes can share one PostgreSQL; each keeps its own BM25 index, derived
//! from the change log. [`Rag::spawn_sync`] catches that index up whenever the database says the
//! log grew (LISTEN/NOTIFY), and every [`POLL_EVERY`] anyway, since notifications are lost while a
//! connection is down (SQLite has none and is only polled, which is cheap: one indexed query).
//! It also back-fills embeddings that are still missing (Ollama was down) every
//! [`BACKFILL_EVERY`].
//!
//! A process that uses the indexes read-only (a command next to `footnote serve`) writes the
//! database only; [`Rag::settle`] waits until the server's catch-up has indexed those writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Rag, RagError};

/// Catch-up interval when no notification arrives.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// Back-fill interval for embeddings that are still missing.
pub const BACKFILL_EVERY: Duration = Duration::from_secs(30);
/// Pause before listening again after the notification stream failed to open.
const RELISTEN_AFTER: Duration = Duration::from_secs(10);
/// How long [`Rag::settle`] waits for the process that keeps the indexes (it catches up at
/// least every [`POLL_EVERY`]).
pub const SETTLE_WAIT: Duration = Duration::from_secs(30);
/// How often [`Rag::settle`] looks at that process's progress.
pub const SETTLE_POLL: Duration = Duration::from_millis(100);

/// What [`Rag::settle`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The indexes hold every change that was in the database when it was called.
    Done,
    /// The process keeping the indexes (named) has not indexed them within [`SETTLE_WAIT`]:
    /// they are stored and become searchable once it does.
    Behind { holder: String },
}

impl Rag {
    /// Waits until the indexes hold every change the database had when called. This process
    /// keeps the indexes: one catch-up. Another one does: until its BM25 commits reach that point
    /// (vectors are replayed in memory here), or, should it have gone away, this process takes
    /// the writer lock and catches up itself.
    pub async fn settle(&self) -> Result<Settled, RagError> {
        let target = self.store.last_seq().await?;
        let deadline = Instant::now() + SETTLE_WAIT;
        loop {
            self.indexes.catch_up(self.store.as_ref()).await?;
            let Some(holder) = self.indexes.holder() else { return Ok(Settled::Done) };
            if self.indexes.settled(target) {
                return Ok(Settled::Done);
            }
            if self.catch_up_if_abandoned().await? {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(Settled::Behind { holder: holder.describe() });
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Read-only: when the writer lock has become free (its holder ended), takes it for one
    /// catch-up of the files on disk. Returns whether it did.
    async fn catch_up_if_abandoned(&self) -> Result<bool, RagError> {
        let access = Self::index_access(&self.cfg, "catch-up")?;
        if !access.is_write() {
            return Ok(false);
        }
        let dims = self.store.meta(crate::store::META_EMBED_DIMS).await?.and_then(|d| d.parse().ok());
        let writer = Self::open_indexes(&self.cfg, self.store.as_ref(), dims, access).await?;
        writer.catch_up(self.store.as_ref()).await?;
        writer.persist_vectors()?;
        Ok(true)
    }

    /// Starts the background task that keeps this instance's indexes in step with the database
    /// and back-fills missing embeddings, until `shutdown` is cancelled. Failures are logged and
    /// retried on the next round; the task ends only on shutdown.
    pub fn spawn_sync(self: &Arc<Rag>, shutdown: CancellationToken) -> JoinHandle<()> {
        let rag = Arc::clone(self);
        tokio::spawn(async move { rag.sync_loop(shutdown).await })
    }

    async fn sync_loop(&self, shutdown: CancellationToken) {
        let mut signals = None;
        let mut listen_at = Instant::now();
        // The first back-fill runs soon after start, then on the interval.
        let mut next_backfill = Instant::now() + POLL_EVERY;
        loop {
            if signals.is_none() && Instant::now() >= listen_at {
                match self.store.watch_changes().await {
                    Ok(Some(stream)) => signals = Some(stream),
                    // This backend has no notifications: polling alone.
                    Ok(None) => listen_at = Instant::now() + Duration::from_secs(86_400 * 365),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; polling only for now");
                        listen_at = Instant::now() + RELISTEN_AFTER;
                    }
                }
            }
            let notified = async {
                match signals.as_mut() {
                    Some(stream) => stream.next().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                alive = notified => {
                    if !alive {
                        signals = None;
                    }
                }
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            if let Err(e) = self.indexes.catch_up(self.store.as_ref()).await {
                tracing::warn!(error = %e, "index catch-up failed; retrying");
            }
            if Instant::now() >= next_backfill {
                next_backfill = Instant::now() + BACKFILL_EVERY;
                if let Err(e) = self.backfill().await {
                    tracing::warn!(error = %e, "embedding back-fill failed; retrying later");
                }
            }
        }
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "cannot write the vector index on shutdown");
        }
    }
}

//! Background work of the service: start-up warm-up, the keep-warm timer, and the loop that
//! catches the indexes up with the database and back-fills embeddings that Ollama could not make
//! when the documents arrived.
//!
//! [`spawn_sync`] is the one place to swap for `Rag::spawn_sync` once the PostgreSQL work
//! provides it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::keep_alive_duration;
use crate::rag::Rag;

/// Shortest keep-warm period, whatever `keep_alive` says.
const MIN_KEEP_WARM: Duration = Duration::from_secs(10);

/// Loads both models once at start-up; a failure is logged, not fatal.
pub fn spawn_warmup(tracker: &TaskTracker, rag: Arc<Rag>) {
    tracker.spawn(async move {
        match rag.warmup().await {
            Ok(report) => {
                for m in report.models {
                    tracing::info!(model = %m.name, took = ?m.took, load = ?m.load, "Model warm.");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Start-up warm-up failed; the first answer will load the models."),
        }
    });
}

/// Re-warms both models at 80% of `ollama.keep_alive`, so they never unload while the service
/// runs. Skipped when `keep_alive` is "forever" or zero.
pub fn spawn_keep_warm(tracker: &TaskTracker, rag: Arc<Rag>, stop: CancellationToken) {
    let Some(keep_alive) = keep_alive_duration(&rag.config().ollama.keep_alive).filter(|d| !d.is_zero()) else {
        tracing::info!("Keep-warm not needed: ollama.keep_alive keeps the models loaded.");
        return;
    };
    let every = keep_alive.mul_f64(0.8).max(MIN_KEEP_WARM);
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = rag.warmup().await {
                tracing::warn!(error = %e, "Keep-warm failed; trying again later.");
            }
        }
    });
}

/// Keeps the search indexes caught up with the database (LISTEN/NOTIFY on PostgreSQL, polling
/// otherwise) and back-fills embeddings, until `stop` is cancelled.
pub fn spawn_sync(tracker: &TaskTracker, rag: Arc<Rag>, stop: CancellationToken) {
    let handle = rag.spawn_sync(stop);
    tracker.spawn(async move {
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "The index sync task failed.");
        }
    });
}

//! `footnote serve`: opens the core, starts the HTTP server and every configured adapter, warms
//! the models, keeps them warm if asked, and runs the index catch-up and embedding back-fill
//! loop. On shutdown it stops taking new work, lets answers in flight finish within
//! `server.shutdown_grace`, then stops the adapters and the server.
//!
//! Shutdown is a parameter ([`run`]) or a handle ([`Running::stop`]), never a global, so tests
//! run the whole service in-process.

pub mod adapters;
mod background;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use footnote_adapter::Gateway;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::rag::gateway::Core;
use crate::rag::{ModelCheck, Rag};

pub use adapters::{AdapterSpec, Backoff, build_adapters};

/// How long the adapters and the HTTP server get to close after the answers drained.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra inputs of [`start`] that do not come from the configuration.
#[derive(Default)]
pub struct Options {
    /// Adapters to run besides the configured ones (tests use a fake one).
    pub adapters: Vec<AdapterSpec>,
    /// Restart delays of failed adapters.
    pub backoff: Backoff,
}

/// A started service.
pub struct Running {
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// The gateway the adapters and the HTTP API use.
    pub core: Core,
    shutdown: CancellationToken,
    done: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// A token that starts the shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts the shutdown and waits for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the service has shut down (after the token was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the service task failed")?
    }
}

/// Starts everything and returns once the HTTP server listens.
pub async fn start(cfg: Config, options: Options) -> anyhow::Result<Running> {
    let addr = http::check_bind(&cfg)?;
    let mut specs = build_adapters(&cfg).map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    specs.extend(options.adapters);

    let rag = Rag::open(cfg.clone(), ModelCheck::Refuse)
        .await
        .with_context(|| format!("cannot open the data in {}", cfg.data_dir.display()))?;
    let core = Core(rag.clone());
    let state = AppState::new(core.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    if state.is_open() {
        tracing::warn!(%addr, "No server.tokens configured: the HTTP API and web page need no login, so footnote listens on this address only.");
    }
    tracing::info!(%addr, web = %format!("http://{addr}/"), "Footnote is listening.");

    let shutdown = CancellationToken::new();
    let stop_rest = CancellationToken::new();
    let tracker = TaskTracker::new();
    // The extraction workers start now, not with the first upload.
    rag.workers().warm();
    background::spawn_warmup(&tracker, rag.clone());
    if cfg.server.keep_warm {
        background::spawn_keep_warm(&tracker, rag.clone(), stop_rest.clone());
    }
    background::spawn_sync(&tracker, rag.clone(), stop_rest.clone());
    let gateway: Arc<dyn Gateway> = Arc::new(core.clone());
    for spec in specs {
        tracker.spawn(adapters::supervise(spec, gateway.clone(), stop_rest.clone(), options.backoff));
    }
    let router = http::router(state);
    #[cfg(feature = "slack")]
    let router = match adapters::slack_events_router(&cfg, gateway.clone())? {
        Some(slack) => router.merge(slack),
        None => router,
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(stop_rest.clone().cancelled_owned());
    let server = tracker.spawn(async move { server.await });
    tracker.close();

    let grace = cfg.server.shutdown_grace;
    let signal = shutdown.clone();
    let done = tokio::spawn(async move {
        signal.cancelled().await;
        tracing::info!(?grace, "Shutting down: no new questions; waiting for the answers in flight.");
        rag.gate().close();
        if !rag.gate().drained(grace).await {
            tracing::warn!(?grace, "Answers still in flight after the grace period were dropped.");
        }
        stop_rest.cancel();
        if tokio::time::timeout(CLOSE_TIMEOUT, tracker.wait()).await.is_err() {
            tracing::warn!("Some adapters or connections did not close in time.");
        }
        if let Err(e) = rag.flush() {
            tracing::error!(error = %e, "Cannot write the vector index to disk; it is rebuilt on the next start.");
        }
        if server.is_finished() {
            server.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        }
        tracing::info!("Footnote stopped.");
        Ok(())
    });
    Ok(Running { addr, core, shutdown, done })
}

/// Runs the service until `shutdown` completes (SIGTERM/SIGINT in `main`), then shuts down.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let running = start(cfg, Options::default()).await?;
    shutdown.await;
    running.stop().await
}

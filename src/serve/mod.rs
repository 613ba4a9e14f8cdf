//! `footnote serve`: opens the core, starts the HTTP server and every configured adapter, warms
//! the models, keeps them warm if asked, and runs the index catch-up and embedding back-fill
//! loop. On shutdown it stops taking new work, lets answers in flight finish within
//! `server.shutdown_grace`, then stops the adapters and the server.
//!
//! Shutdown is a parameter ([`run`]) or a handle ([`Running::stop`]), never a global, so tests
//! run the whole service in-process.

pub mod adapters;
mod background;
pub mod control;
pub mod lease;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use footnote_adapter::{AdapterContext, Gateway};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::index::lock::{self, Access};
use crate::rag::gateway::Core;
use crate::rag::{ModelCheck, Rag};

pub use adapters::{AdapterSpec, Backoff, build_adapters};
pub use control::ControlFile;

/// How long the adapters and the HTTP server get to close after the answers drained.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a start waiting for a command to release the index writer lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(250);

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
    let problems = crate::adapters::problems(&cfg.adapters);
    anyhow::ensure!(problems.is_empty(), problems.join("\n"));

    let access = writer_lock(&cfg).await?;
    let rag = Rag::open_as(cfg.clone(), ModelCheck::Refuse, access)
        .await
        .with_context(|| format!("cannot open the data in {}", cfg.data_dir.display()))?;
    let core = Core::new(rag.clone());
    let shutdown = CancellationToken::new();
    let stop_rest = CancellationToken::new();
    let gateway: Arc<dyn Gateway> = Arc::new(core.clone());
    let context =
        AdapterContext { data_dir: cfg.data_dir.clone(), shutdown: stop_rest.clone(), gateway: gateway.clone() };
    let (mut specs, adapter_routes) =
        build_adapters(&cfg, &context).map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    specs.extend(options.adapters);
    let leases = rag.store().leases();
    let board = Arc::new(lease::Board::new(leases.clone(), &specs));
    let state = AppState::with_adapters(core.clone(), board.clone());
    let plugins = state.plugins().clone();
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    if state.is_open() {
        tracing::warn!(%addr, "No server.tokens configured: the HTTP API and web page need no login, so footnote listens on this address only.");
    }
    tracing::info!(%addr, web = %format!("http://{addr}/"), "Footnote is listening.");

    let tracker = TaskTracker::new();
    // The extraction workers start now, not with the first upload.
    rag.workers().warm();
    background::spawn_warmup(&tracker, rag.clone());
    if cfg.server.keep_warm {
        background::spawn_keep_warm(&tracker, rag.clone(), stop_rest.clone());
    }
    background::spawn_sync(&tracker, rag.clone(), stop_rest.clone());
    for spec in specs {
        let (gateway, stop, backoff) = (gateway.clone(), stop_rest.clone(), options.backoff);
        match &leases {
            // Several instances may share this database: one at a time runs each connection.
            Some(leases) if spec.leased => {
                tracker.spawn(lease::hold(spec, gateway, stop, backoff, leases.clone(), board.clone()));
            }
            _ => {
                tracker.spawn(async move { adapters::supervise(&spec, gateway, stop, backoff).await });
            }
        }
    }
    let control = ControlFile::new(addr);
    let mut router = http::router(state).merge(control::router(rag.clone(), &control.token));
    // Routes an adapter serves itself (Slack's Events API); each authenticates its own requests.
    for routes in adapter_routes {
        router = router.merge(routes);
    }
    if let Err(e) = control.write(&cfg.data_dir) {
        tracing::warn!(error = %e, "Cannot write serve.json: `footnote reindex` cannot reach this server.");
    }
    let server = axum::serve(listener, router).with_graceful_shutdown(stop_rest.clone().cancelled_owned());
    let server = tracker.spawn(async move { server.await });
    tracker.close();

    let grace = cfg.server.shutdown_grace;
    let signal = shutdown.clone();
    let done = tokio::spawn(async move {
        signal.cancelled().await;
        tracing::info!(?grace, "Shutting down: no new questions; waiting for the answers in flight.");
        rag.lifecycle().close();
        if !rag.lifecycle().drained(grace).await {
            tracing::warn!(?grace, "Answers still in flight after the grace period were dropped.");
        }
        plugins.close();
        stop_rest.cancel();
        if tokio::time::timeout(CLOSE_TIMEOUT, tracker.wait()).await.is_err() {
            tracing::warn!("Some adapters or connections did not close in time.");
        }
        if let Err(e) = rag.flush() {
            tracing::error!(error = %e, "Cannot write the vector index to disk; it is rebuilt on the next start.");
        }
        ControlFile::remove(&rag.config().data_dir);
        if server.is_finished() {
            server.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        }
        tracing::info!("Footnote stopped.");
        Ok(())
    });
    Ok(Running { addr, core, shutdown, done })
}

/// Takes the writer lock of the data directory's indexes: a command that holds it (`footnote
/// ingest`, …) is waited for; another server holding it is an error that says so in one line.
async fn writer_lock(cfg: &Config) -> anyhow::Result<Access> {
    let mut waiting = false;
    loop {
        match Rag::index_access(cfg, lock::SERVE)? {
            Access::Read(holder) if holder.is_server() => anyhow::bail!(
                "Footnote is running (pid {}) and holds the data directory {}: stop it, or give this one its own data directory (data_dir or FOOTNOTE_DATA_DIR)",
                holder.pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                cfg.data_dir.display()
            ),
            Access::Read(holder) => {
                if !waiting {
                    tracing::info!(
                        holder = %holder.describe(), dir = %cfg.data_dir.display(),
                        "Waiting for a command to finish with the search indexes before starting."
                    );
                    waiting = true;
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            access => return Ok(access),
        }
    }
}

/// Runs the service until `shutdown` completes (SIGTERM/SIGINT in `main`), then shuts down.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let running = start(cfg, Options::default()).await?;
    shutdown.await;
    running.stop().await
}

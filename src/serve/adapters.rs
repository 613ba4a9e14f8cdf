//! The adapter runtime: the adapters built from `[adapters.<name>]` (by the registry in
//! [`crate::adapters`]) as specs to run, and running each under a supervisor that restarts it with backoff when it fails, while the
//! others keep running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote_adapter::{Adapter, AdapterContext, AdapterError, Gateway};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::lease::AdapterKey;

/// Builds a fresh adapter; called again for every restart (`run` consumes the adapter).
pub type BuildAdapter = footnote_adapter::setup::StartAdapter;

/// An adapter to run: its name (for logs and metrics) and how to build it.
pub struct AdapterSpec {
    /// Short name, such as `discord`.
    pub name: String,
    /// Makes a new instance.
    pub build: BuildAdapter,
    /// What tells this adapter's connection apart from others of the same adapter (the bot
    /// account, the mailbox); never a secret. Names its lease.
    pub identity: String,
    /// Whether the connection may be held by one instance only (a chat session, a mailbox), so
    /// that several instances on one database take turns; false for what every instance may
    /// serve at once (Slack's Events API, which arrives over HTTP).
    pub leased: bool,
}

impl AdapterSpec {
    /// A spec from a name and a builder (held by one instance at a time, identity empty).
    pub fn new(
        name: impl Into<String>,
        build: impl Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync + 'static,
    ) -> Self {
        AdapterSpec { name: name.into(), build: Box::new(build), identity: String::new(), leased: true }
    }

    /// The same spec for the connection named `identity`.
    #[must_use]
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// The same spec, run by every instance at once.
    #[must_use]
    pub fn unleased(mut self) -> Self {
        self.leased = false;
        self
    }

    /// The key of the connection's lease.
    pub fn key(&self) -> AdapterKey {
        AdapterKey { adapter: self.name.clone(), identity: self.identity.clone() }
    }
}

/// The adapters the configuration enables, built by their crates through the registry
/// ([`crate::adapters`]), as specs to run and the HTTP routes they bring.
pub fn build_adapters(
    cfg: &Config,
    context: &AdapterContext,
) -> Result<(Vec<AdapterSpec>, Vec<axum::Router>), Vec<String>> {
    let mut specs = Vec::new();
    let mut routes = Vec::new();
    for (name, built) in crate::adapters::build(&cfg.adapters, context)? {
        routes.extend(built.routes);
        specs.push(AdapterSpec {
            name: name.to_owned(),
            build: built.start,
            identity: built.identity,
            leased: built.exclusive,
        });
    }
    Ok((specs, routes))
}

/// Restart delays of the supervisor.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First delay after a failure.
    pub initial: Duration,
    /// Longest delay; each failure in a row doubles it up to this.
    pub max: Duration,
    /// A run that lasted this long resets the delay to `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(120),
            reset_after: Duration::from_secs(300),
        }
    }
}

/// Why [`supervise`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// `shutdown` was cancelled.
    Asked,
    /// The adapter's configuration cannot work: it is not restarted.
    Config,
}

/// Runs one adapter until `shutdown`, restarting it with backoff after an error, a panic or an
/// unasked-for return. A configuration error stops it for good (restarting cannot help).
pub async fn supervise(
    spec: &AdapterSpec,
    gateway: Arc<dyn Gateway>,
    shutdown: CancellationToken,
    backoff: Backoff,
) -> Stopped {
    let name = spec.name.clone();
    let mut delay = backoff.initial;
    loop {
        let started = Instant::now();
        let outcome: Result<(), String> = match (spec.build)() {
            Ok(adapter) => {
                tracing::info!(adapter = %name, "Adapter started.");
                let run = tokio::spawn(adapter.run(gateway.clone(), shutdown.child_token()));
                match run.await {
                    Ok(Ok(())) if shutdown.is_cancelled() => {
                        tracing::info!(adapter = %name, "Adapter stopped.");
                        return Stopped::Asked;
                    }
                    Ok(Ok(())) => Err("returned without being asked to stop".to_owned()),
                    Ok(Err(AdapterError::Config(why))) => {
                        tracing::error!(adapter = %name, error = %why, "Adapter configuration error; not restarting it. Fix the configuration and restart footnote.");
                        return Stopped::Config;
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(join) => Err(format!("panicked: {join}")),
                }
            }
            Err(AdapterError::Config(why)) => {
                tracing::error!(adapter = %name, error = %why, "Adapter configuration error; not starting it.");
                return Stopped::Config;
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = outcome {
            if started.elapsed() >= backoff.reset_after {
                delay = backoff.initial;
            }
            metrics::counter!("footnote_adapter_restarts_total", "adapter" => name.clone()).increment(1);
            tracing::error!(adapter = %name, error = %why, retry_in = ?delay, "Adapter failed; restarting it.");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Stopped::Asked,
        }
        delay = (delay * 2).min(backoff.max);
    }
}

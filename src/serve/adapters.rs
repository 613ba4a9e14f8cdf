//! The adapter runtime: which adapters this build has, building them from `[adapters.<name>]`,
//! and running each under a supervisor that restarts it with backoff when it fails, while the
//! others keep running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote_adapter::{Adapter, AdapterError, Gateway};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Builds a fresh adapter; called again for every restart (`run` consumes the adapter).
pub type BuildAdapter = Box<dyn Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync>;

/// An adapter to run: its name (for logs and metrics) and how to build it.
pub struct AdapterSpec {
    /// Short name, such as `discord`.
    pub name: String,
    /// Makes a new instance.
    pub build: BuildAdapter,
}

impl AdapterSpec {
    /// A spec from a name and a builder.
    pub fn new(
        name: impl Into<String>,
        build: impl Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync + 'static,
    ) -> Self {
        AdapterSpec {
            name: name.into(),
            build: Box::new(build),
        }
    }
}

/// The chat adapters Footnote knows: config section name, cargo feature, compiled in or not.
const KNOWN: &[(&str, &str, bool)] = &[
    ("discord", "discord", cfg!(feature = "discord")),
    ("matrix", "matrix", cfg!(feature = "matrix")),
    ("slack", "slack", cfg!(feature = "slack")),
    ("email", "email", cfg!(feature = "email")),
];

/// Builds the adapters the configuration enables (one `[adapters.<name>]` section each).
/// A section for an adapter not compiled into this build, or an unknown name, is an error.
///
/// Each adapter crate adds one gated block here when it lands, for example:
/// `#[cfg(feature = "discord")] if name == "discord" { out.push(AdapterSpec::new(..)) }`,
/// reading its own config type from the section.
pub fn build_adapters(cfg: &Config) -> Result<Vec<AdapterSpec>, Vec<String>> {
    let mut problems = Vec::new();
    let out = Vec::new();
    for name in cfg.adapters.keys() {
        match KNOWN.iter().find(|(known, _, _)| known == name) {
            None => problems.push(format!(
                "[adapters.{name}]: there is no adapter named {name:?} (known: {})",
                KNOWN.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
            )),
            Some((_, feature, false)) => problems.push(format!(
                "[adapters.{name}] is configured but this build of footnote does not include the {name} adapter: rebuild with `cargo build --release --features {feature}` (or remove the section)"
            )),
            Some((_, feature, true)) => problems.push(format!(
                "[adapters.{name}]: the {feature} feature is enabled but its adapter crate is not part of this source tree yet"
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
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

/// Runs one adapter until `shutdown`, restarting it with backoff after an error, a panic or an
/// unasked-for return. A configuration error stops it for good (restarting cannot help).
pub async fn supervise(
    spec: AdapterSpec,
    gateway: Arc<dyn Gateway>,
    shutdown: CancellationToken,
    backoff: Backoff,
) {
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
                        return;
                    }
                    Ok(Ok(())) => Err("returned without being asked to stop".to_owned()),
                    Ok(Err(AdapterError::Config(why))) => {
                        tracing::error!(adapter = %name, error = %why, "Adapter configuration error; not restarting it. Fix the configuration and restart footnote.");
                        return;
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(join) => Err(format!("panicked: {join}")),
                }
            }
            Err(AdapterError::Config(why)) => {
                tracing::error!(adapter = %name, error = %why, "Adapter configuration error; not starting it.");
                return;
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = outcome {
            if started.elapsed() >= backoff.reset_after {
                delay = backoff.initial;
            }
            metrics::counter!("footnote_adapter_restarts_total", "adapter" => name.clone())
                .increment(1);
            tracing::error!(adapter = %name, error = %why, retry_in = ?delay, "Adapter failed; restarting it.");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "discord"))]
    fn a_section_for_an_adapter_not_compiled_in_names_the_feature() {
        let mut cfg = Config::default();
        cfg.adapters.insert(
            "discord".into(),
            figment::value::Value::Dict(Default::default(), figment::value::Dict::new()),
        );
        cfg.adapters.insert(
            "irc".into(),
            figment::value::Value::Dict(Default::default(), figment::value::Dict::new()),
        );
        let problems = build_adapters(&cfg).err().expect("refused");
        assert!(
            problems.iter().any(|p| p.contains("--features discord")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("no adapter named \"irc\"")),
            "{problems:?}"
        );
        assert!(build_adapters(&Config::default()).unwrap().is_empty());
    }
}

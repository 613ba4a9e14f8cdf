//! The adapter runtime: which adapters this build has, building them from `[adapters.<name>]`,
//! and running each under a supervisor that restarts it with backoff when it fails, while the
//! others keep running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use footnote_adapter::{Adapter, AdapterError, Gateway};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::lease::AdapterKey;

/// Builds a fresh adapter; called again for every restart (`run` consumes the adapter).
pub type BuildAdapter = Box<dyn Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync>;

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

/// A short, stable fingerprint of a secret, to tell connections apart without showing it.
#[cfg(any(feature = "discord", feature = "slack"))]
fn fingerprint(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex()[..12].to_owned()
}

/// The chat adapters Footnote knows: config section name, cargo feature, compiled in or not.
const KNOWN: &[(&str, &str, bool)] = &[
    ("discord", "discord", cfg!(feature = "discord")),
    ("matrix", "matrix", cfg!(feature = "matrix")),
    ("slack", "slack", cfg!(feature = "slack")),
    ("email", "email", cfg!(feature = "email")),
];

/// Builds the adapters the configuration enables (one `[adapters.<name>]` section each, read
/// by the adapter crate's own `Config`). A section for an adapter not compiled into this build,
/// an unknown name, or a section the adapter refuses is an error; all are reported together.
pub fn build_adapters(cfg: &Config) -> Result<Vec<AdapterSpec>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (name, section) in &cfg.adapters {
        match KNOWN.iter().find(|(known, _, _)| known == name) {
            None => problems.push(format!(
                "[adapters.{name}]: there is no adapter named {name:?} (known: {})",
                KNOWN.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
            )),
            Some((_, feature, false)) => problems.push(format!(
                "[adapters.{name}] is configured but this build of footnote does not include the {name} adapter: rebuild with `cargo build --release --features {feature}` (or remove the section)"
            )),
            Some((_, _, true)) => match build_one(cfg, name, section) {
                Ok(spec) => out.push(spec),
                Err(mut found) => problems.append(&mut found),
            },
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// Reads one compiled-in adapter's section and makes its spec.
#[allow(unused_variables)]
fn build_one(cfg: &Config, name: &str, section: &figment::value::Value) -> Result<AdapterSpec, Vec<String>> {
    let read = |e: figment::Error| e.into_iter().map(|e| format!("[adapters.{name}]: {e}")).collect::<Vec<_>>();
    #[cfg(feature = "discord")]
    if name == "discord" {
        let c: footnote_discord::Config = section.deserialize().map_err(read)?;
        c.validate().map_err(|p| p.into_iter().map(|p| format!("[adapters.discord]: {p}")).collect::<Vec<_>>())?;
        let identity = match c.application_id {
            Some(id) => format!("application {id}"),
            None => format!("bot token {}", fingerprint(secrecy::ExposeSecret::expose_secret(&c.token))),
        };
        return Ok(AdapterSpec::new("discord", move || {
            Ok(Box::new(footnote_discord::DiscordAdapter::new(c.clone())?) as Box<dyn Adapter>)
        })
        .with_identity(identity));
    }
    #[cfg(feature = "slack")]
    if name == "slack" {
        let c: footnote_slack::Config = section.deserialize().map_err(read)?;
        c.validate().map_err(|p| p.into_iter().map(|p| format!("[adapters.slack]: {p}")).collect::<Vec<_>>())?;
        let identity = format!("bot token {}", fingerprint(secrecy::ExposeSecret::expose_secret(&c.bot_token)));
        // Events API requests may reach any instance; a Socket Mode connection is one instance's.
        let events = c.mode == footnote_slack::Mode::Events;
        let spec = AdapterSpec::new("slack", move || {
            Ok(Box::new(footnote_slack::SlackAdapter::new(c.clone())?) as Box<dyn Adapter>)
        })
        .with_identity(identity);
        return Ok(if events { spec.unleased() } else { spec });
    }
    #[cfg(feature = "matrix")]
    if name == "matrix" {
        let mut c: footnote_matrix::Config = section.deserialize().map_err(read)?;
        // A relative store (session + encryption keys) lives in the data directory.
        if c.store_dir.is_relative() {
            c.store_dir = cfg.data_dir.join(&c.store_dir);
        }
        c.validate().map_err(|p| p.into_iter().map(|p| format!("[adapters.matrix]: {p}")).collect::<Vec<_>>())?;
        let identity = format!("{} on {}", c.user_id, c.homeserver);
        return Ok(AdapterSpec::new("matrix", move || {
            Ok(Box::new(footnote_matrix::MatrixAdapter::new(c.clone())?) as Box<dyn Adapter>)
        })
        .with_identity(identity));
    }
    #[cfg(feature = "email")]
    if name == "email" {
        let mut c: footnote_email::Config = section.deserialize().map_err(read)?;
        // A relative state file lives in the data directory.
        if c.state_path.is_relative() {
            c.state_path = cfg.data_dir.join(&c.state_path);
        }
        c.validate().map_err(|p| vec![format!("[adapters.email]: {p}")])?;
        let identity = format!("{} at {} {}", c.username, c.imap_host, c.mailbox);
        return Ok(AdapterSpec::new("email", move || {
            Ok(Box::new(footnote_email::EmailAdapter::new(c.clone())?) as Box<dyn Adapter>)
        })
        .with_identity(identity));
    }
    Err(vec![format!("[adapters.{name}]: this build has no adapter of that name")])
}

/// The Slack Events API endpoints (`/slack/events`, `/slack/commands`) to mount on the HTTP
/// server, when `[adapters.slack]` asks for `mode = "events"`. They are signed by Slack, so they
/// sit outside the bearer-token check.
#[cfg(feature = "slack")]
pub fn slack_events_router(cfg: &Config, gateway: Arc<dyn Gateway>) -> anyhow::Result<Option<axum::Router>> {
    let Some(section) = cfg.adapters.get("slack") else { return Ok(None) };
    let c: footnote_slack::Config = section.deserialize()?;
    if c.mode != footnote_slack::Mode::Events {
        return Ok(None);
    }
    let state = footnote_slack::SlackState::new(c, gateway).map_err(|e| anyhow::anyhow!("[adapters.slack]: {e}"))?;
    Ok(Some(footnote_slack::events_router(state)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> figment::value::Value {
        figment::value::Value::Dict(Default::default(), figment::value::Dict::new())
    }

    #[test]
    fn a_section_for_an_adapter_not_compiled_in_names_the_feature() {
        let mut cfg = Config::default();
        // With every adapter compiled in (the default build), only the unknown name is refused.
        let missing = KNOWN.iter().find(|(_, _, compiled)| !compiled);
        if let Some((name, _, _)) = missing {
            cfg.adapters.insert((*name).into(), empty());
        }
        cfg.adapters.insert("irc".into(), empty());
        let problems = build_adapters(&cfg).err().expect("refused");
        if let Some((_, feature, _)) = missing {
            assert!(problems.iter().any(|p| p.contains(&format!("--features {feature}"))), "{problems:?}");
        }
        assert!(problems.iter().any(|p| p.contains("no adapter named \"irc\"")), "{problems:?}");
        assert!(build_adapters(&Config::default()).unwrap().is_empty());
    }

    #[test]
    #[cfg(feature = "matrix")]
    fn the_matrix_section_is_read_and_checked_by_the_matrix_crate() {
        let section = |pairs: &[(&str, &str)]| {
            let mut dict = figment::value::Dict::new();
            for (k, v) in pairs {
                dict.insert((*k).into(), figment::value::Value::from(*v));
            }
            figment::value::Value::Dict(Default::default(), dict)
        };
        let mut cfg = Config::default();
        cfg.adapters.insert("matrix".into(), section(&[("homeserver", "matrix.example.org"), ("user_id", "@bot:x")]));
        let problems = build_adapters(&cfg).err().expect("no password, no scheme");
        assert!(problems.iter().all(|p| p.starts_with("[adapters.matrix]")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("homeserver")) && problems.iter().any(|p| p.contains("password")));
        let good = [("homeserver", "https://matrix.example.org"), ("user_id", "@bot:example.org"), ("password", "pw")];
        cfg.adapters.insert("matrix".into(), section(&good));
        let specs = build_adapters(&cfg).expect("a complete section builds");
        assert_eq!(specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["matrix"]);
    }

    #[test]
    #[cfg(feature = "discord")]
    fn a_compiled_in_adapter_reads_and_checks_its_own_section() {
        let mut cfg = Config::default();
        let mut section = figment::value::Dict::new();
        section.insert("application_id".into(), figment::value::Value::from(1u64));
        cfg.adapters.insert("discord".into(), figment::value::Value::Dict(Default::default(), section));
        let problems = build_adapters(&cfg).err().expect("a section without a token is refused");
        assert!(problems.iter().all(|p| p.starts_with("[adapters.discord]")), "{problems:?}");
    }
}

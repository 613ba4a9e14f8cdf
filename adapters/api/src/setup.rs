//! How an adapter is declared to the core: its configuration type names the adapter, checks
//! itself and builds it. The core keeps one registry line per adapter (`src/adapters.rs`) and
//! does everything else through this trait, so adding a platform touches no other core file.
//!
//! The life of an `[adapters.<name>]` section:
//!
//! 1. The core deserializes it into the adapter's [`AdapterConfig`] type and asks for its
//!    [`problems`](AdapterConfig::problems) when the configuration is loaded, so `footnote
//!    doctor` and every command report a bad section, not only `serve`.
//! 2. `serve` calls [`build`](AdapterConfig::build) once with an [`AdapterContext`]: the data
//!    directory (for the adapter's own relative paths), the shutdown signal and the gateway. The
//!    adapter answers with a [`Built`]: how to start it (again after every failure), what tells
//!    its connection apart, whether one instance at a time may hold it, and any HTTP routes it
//!    serves on Footnote's own server (Slack's Events API).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{Adapter, AdapterError, Gateway};

/// What [`AdapterConfig::build`] is given by the service that runs the adapter.
#[derive(Clone)]
pub struct AdapterContext {
    /// Footnote's data directory; relative paths of the adapter's own files live under it.
    pub data_dir: PathBuf,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// The core, for routes that reach it outside the adapter's run (such as webhooks).
    pub gateway: Arc<dyn Gateway>,
}

impl AdapterContext {
    /// `path` as the adapter should open it: a relative path is taken inside the data directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_relative() { self.data_dir.join(path) } else { path.to_owned() }
    }
}

/// Makes a fresh adapter; called again for every restart, because `run` consumes the adapter.
pub type StartAdapter = Box<dyn Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync>;

/// A built adapter, ready for the service to run.
pub struct Built {
    /// Makes the adapter to run.
    pub start: StartAdapter,
    /// What tells this adapter's connection apart from others of the same adapter (the bot
    /// account, the mailbox), for logs and for the lease that lets one instance hold it. Never a
    /// secret: see [`fingerprint`].
    pub identity: String,
    /// Whether only one instance at a time may hold the connection (a chat session, a mailbox)
    /// when several share a database; false for what every instance may serve at once.
    pub exclusive: bool,
    /// HTTP routes the adapter serves on Footnote's server. They sit outside the API's bearer
    /// token check: the adapter authenticates them itself (Slack signs its requests).
    pub routes: Option<axum::Router>,
}

impl Built {
    /// An adapter held by one instance at a time, with no routes.
    pub fn new(
        identity: impl Into<String>,
        start: impl Fn() -> Result<Box<dyn Adapter>, AdapterError> + Send + Sync + 'static,
    ) -> Self {
        Built { start: Box::new(start), identity: identity.into(), exclusive: true, routes: None }
    }

    /// The same, served by every instance at once.
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.exclusive = false;
        self
    }

    /// The same, with HTTP routes to mount on Footnote's server.
    #[must_use]
    pub fn with_routes(mut self, routes: axum::Router) -> Self {
        self.routes = Some(routes);
        self
    }
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("identity", &self.identity)
            .field("exclusive", &self.exclusive)
            .field("routes", &self.routes.is_some())
            .finish_non_exhaustive()
    }
}

/// The configuration of one adapter: the `[adapters.<NAME>]` section, typed.
pub trait AdapterConfig: DeserializeOwned + Send + 'static {
    /// The section name and the cargo feature of the adapter, such as `discord`.
    const NAME: &'static str;

    /// Every problem with the settings, one sentence each, naming the key to fix; empty when
    /// they can work. Called when the configuration is loaded, before anything connects.
    fn problems(&self) -> Vec<String>;

    /// Builds the adapter; makes no network call (connecting happens when it runs).
    fn build(self, context: &AdapterContext) -> Result<Built, AdapterError>;
}

/// A short, stable fingerprint of a secret, to tell connections apart without showing it.
pub fn fingerprint(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_short_stable_and_hide_the_secret() {
        let secret = "xoxb-123456789-secret";
        assert_eq!(fingerprint(secret), fingerprint(secret));
        assert_eq!(fingerprint(secret).len(), 12);
        assert_ne!(fingerprint(secret), fingerprint("xoxb-123456789-other"));
        assert!(!secret.contains(&fingerprint(secret)));
    }

    #[test]
    #[cfg(feature = "test-utils")]
    fn an_adapters_relative_paths_live_in_the_data_directory() {
        let context = AdapterContext {
            data_dir: "/srv/footnote".into(),
            shutdown: CancellationToken::new(),
            gateway: Arc::new(crate::testing::RecordingGateway::new(Vec::new())),
        };
        assert_eq!(context.resolve(Path::new("matrix")), Path::new("/srv/footnote/matrix"));
        assert_eq!(context.resolve(Path::new("/var/lib/mail.json")), Path::new("/var/lib/mail.json"));
    }
}

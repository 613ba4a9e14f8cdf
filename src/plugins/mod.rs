//! The host of out-of-process plugins: chat platforms served by a program in any language that
//! speaks the wire protocol of `footnote_adapter::wire` over HTTP, next to the built-in adapters.
//!
//! Each `[[plugins]]` entry gives a plugin a token bound to one platform name. Every call a
//! plugin makes must name that platform in its scope, so the `[scopes]` rules of the platform
//! apply to it exactly as to a built-in adapter, and a token for one platform cannot act as
//! another. The routes ([`routes`]) take the plugin token only (never `server.tokens`), refuse
//! anything a browser sends, limit the size of every request and the requests a plugin has in
//! progress, and go through the same [`Core`] (rate limits, queue, timeout) as every adapter.
//!
//! A plugin is connected while its event stream is open (one at a time: a new one replaces the
//! old). Answers are finished even when the plugin goes away mid-answer, kept in its
//! [`outbox::Outbox`] and resent on every new connection until the plugin acknowledges them.

pub mod outbox;
mod routes;
pub mod spec;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use footnote_adapter::Scope;
use footnote_adapter::wire::{Finished, Hello, PROTOCOL, ServerFrame};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use crate::config::Config;
use crate::rag::gateway::Core;

pub use routes::router;

/// Requests one plugin may have in progress at once (questions until their answer is finished).
pub const MAX_IN_FLIGHT: u32 = 32;

/// Frames waiting to be written to a plugin's stream; past it progress frames are dropped (the
/// answer itself is kept in the outbox).
const STREAM_BUFFER: usize = 1024;

/// A plugin's state in `/api/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// The name from `[[plugins]]`.
    pub name: String,
    /// The platform its token is bound to.
    pub platform: String,
    /// True while its event stream is open.
    pub connected: bool,
    /// When it connected or disconnected last (RFC 3339); the server's start if it never did.
    pub since: String,
    /// Answers finished but not yet acknowledged by the plugin.
    pub undelivered: usize,
}

/// Every configured plugin.
pub struct Plugins {
    core: Core,
    plugins: Vec<Arc<Plugin>>,
    max_upload: u64,
}

/// One configured plugin and its connection.
pub struct Plugin {
    name: String,
    platform: String,
    token: blake3::Hash,
    in_flight: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The open stream: its number and where its frames go.
    stream: Option<(u64, mpsc::Sender<ServerFrame>)>,
    streams_opened: u64,
    since: DateTime<Utc>,
    outbox: outbox::Outbox,
    /// Ids of the questions being answered now.
    asking: std::collections::HashSet<String>,
}

impl Plugins {
    /// The plugins `[[plugins]]` configures, over `core`.
    pub fn new(core: Core) -> Plugins {
        let cfg: &Config = core.rag().config();
        let max_upload = cfg.ingest.max_file_size.as_u64();
        let plugins = cfg
            .plugins
            .iter()
            .map(|p| {
                Arc::new(Plugin {
                    name: p.name.trim().to_owned(),
                    platform: p.platform.trim().to_owned(),
                    token: blake3::hash(p.secret().expose_secret().trim().as_bytes()),
                    in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
                    state: Mutex::new(State { since: Utc::now(), ..State::default() }),
                })
            })
            .collect();
        Plugins { core, plugins, max_upload }
    }

    /// The plugin whose token this is.
    fn by_token(&self, token: &str) -> Option<&Arc<Plugin>> {
        let hash = blake3::hash(token.trim().as_bytes());
        self.plugins.iter().find(|p| p.token == hash)
    }

    /// Ends every plugin's event stream (the server is stopping: the answers in flight were
    /// drained, and what the plugins have not acknowledged is lost with the process).
    pub fn close(&self) {
        for plugin in &self.plugins {
            plugin.state().stream = None;
        }
    }

    /// Every plugin with its connection state.
    pub fn report(&self) -> Vec<PluginStatus> {
        self.plugins
            .iter()
            .map(|p| {
                let state = p.state();
                PluginStatus {
                    name: p.name.clone(),
                    platform: p.platform.clone(),
                    connected: state.stream.is_some(),
                    since: state.since.to_rfc3339_opts(SecondsFormat::Secs, true),
                    undelivered: state.outbox.len(),
                }
            })
            .collect()
    }
}

impl Plugin {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when `scope` names this plugin's platform.
    fn owns(&self, scope: &Scope) -> bool {
        scope.platform == self.platform
    }

    fn hello(&self, max_upload: u64) -> ServerFrame {
        ServerFrame::Hello(Hello {
            protocol: PROTOCOL,
            plugin: self.name.clone(),
            platform: self.platform.clone(),
            max_in_flight: MAX_IN_FLIGHT,
            max_upload_bytes: max_upload,
        })
    }

    /// Opens a new stream (closing the previous one): its number, where its frames come from,
    /// and the answers to resend first.
    fn connect(&self) -> (u64, mpsc::Receiver<ServerFrame>, Vec<Finished>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut state = self.state();
        state.streams_opened += 1;
        let number = state.streams_opened;
        let replaced = state.stream.replace((number, tx)).is_some();
        state.since = Utc::now();
        let pending = state.outbox.pending(&self.name);
        tracing::info!(plugin = %self.name, replaced, resend = pending.len(), "Plugin connected.");
        (number, rx, pending)
    }

    /// Marks stream `number` closed, unless a newer one replaced it.
    fn disconnect(&self, number: u64) {
        let mut state = self.state();
        if state.stream.as_ref().is_some_and(|(n, _)| *n == number) {
            state.stream = None;
            state.since = Utc::now();
            tracing::info!(plugin = %self.name, "Plugin disconnected.");
        }
    }

    /// Sends a progress frame if the plugin is connected (dropped otherwise: the answer is kept).
    fn progress(&self, frame: ServerFrame) {
        if let Some((_, tx)) = &self.state().stream {
            let _ = tx.try_send(frame);
        }
    }

    /// Keeps a finished answer until it is acknowledged and sends it if the plugin is connected.
    fn finish(&self, finished: Finished) {
        let mut state = self.state();
        state.asking.remove(&finished.id);
        state.outbox.push(&self.name, finished.clone());
        if let Some((_, tx)) = &state.stream {
            let _ = tx.try_send(ServerFrame::Finished(finished));
        }
    }

    /// Registers question `id`; false when it is being answered or its answer waits already (a
    /// request the plugin sent again).
    fn start_asking(&self, id: &str) -> bool {
        let mut state = self.state();
        if state.asking.contains(id) || state.outbox.holds(id) {
            return false;
        }
        state.asking.insert(id.to_owned())
    }

    fn ack(&self, ids: &[String]) {
        self.state().outbox.ack(ids);
    }
}

/// Closes a stream when the response body is dropped (the plugin went away or was replaced).
struct StreamGuard {
    plugin: Arc<Plugin>,
    number: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.plugin.disconnect(self.number);
    }
}

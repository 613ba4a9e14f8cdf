//! `footnote-email`: Footnote's email adapter.
//!
//! People forward mail (with attachments) to the bot's mailbox to add it to their collection, and
//! ask questions by mail; answers come back as threaded replies with numbered sources.
//!
//! - [`config`]: the `[adapters.email]` section.
//! - `convert`: pure mapping of a received mail to an action (ignore, refuse, ingest, ask).
//! - `rules`: sender rules: allowlist, DKIM/SPF, automatic mail, address matching.
//! - `reply`: pure rendering of answers, receipts and refusals as MIME replies.
//! - `handler`: the IMAP loop (IDLE or polling), SMTP replies and the order of commits.
//! - `state`: the adapter's own progress file (UIDVALIDITY + UIDs, answered Message-IDs, the mail
//!   in progress, threads).
//!
//! The crate depends only on `footnote-adapter` and the mail crates, never on the core.

pub mod config;
mod convert;
mod error;
mod handler;
mod imap;
mod reply;
mod rules;
mod state;
mod text;

use std::sync::Arc;

use async_trait::async_trait;
use footnote_adapter::{Adapter, AdapterConfig, AdapterContext, AdapterError, Built, CancellationToken, Gateway};

pub use config::{CollectionMapping, Config, Security};
pub use convert::{Action, Classified, IgnoreReason, Inbound, Refusal, classify};
pub use error::EmailError;
pub use reply::{ReplyBody, build as build_reply};

/// Points in the handling of one mail where a test can simulate a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failpoint {
    /// After the mail was recorded as in progress, before it is parsed: a crash as a hostile
    /// mail could cause.
    WhileReading,
    /// After the gateway call (ingest or ask) and before the reply is sent.
    AfterGateway,
    /// After the reply was sent and recorded, before the mail is marked processed.
    BeforeMark,
}

/// The email adapter: reads one IMAP mailbox and replies over SMTP.
#[derive(Debug)]
pub struct EmailAdapter {
    config: Config,
    failpoint: Option<Failpoint>,
}

impl EmailAdapter {
    /// Checks the configuration and builds the adapter; it connects when run.
    pub fn new(config: Config) -> Result<Self, AdapterError> {
        config.validate().map_err(AdapterError::Config)?;
        Ok(EmailAdapter { config, failpoint: None })
    }

    /// Makes `run` stop with an error at `point` for the first mail that reaches it, as a crash
    /// would. For tests of the no-loss, no-duplicate guarantees.
    #[doc(hidden)]
    #[must_use]
    pub fn with_failpoint(mut self, point: Failpoint) -> Self {
        self.failpoint = Some(point);
        self
    }
}

impl AdapterConfig for Config {
    const NAME: &'static str = handler::PLATFORM;

    fn problems(&self) -> Vec<String> {
        match self.validate() {
            Ok(()) => Vec::new(),
            Err(problems) => problems.lines().map(str::to_owned).collect(),
        }
    }

    /// A relative `state_path` (what was answered, for crash recovery) lives in the data directory.
    fn build(mut self, context: &AdapterContext) -> Result<Built, AdapterError> {
        self.state_path = context.resolve(&self.state_path);
        let identity = format!("{} at {} {}", self.username, self.imap_host, self.mailbox);
        EmailAdapter::new(self.clone())?;
        Ok(Built::new(identity, move || Ok(Box::new(EmailAdapter::new(self.clone())?) as Box<dyn Adapter>)))
    }
}

#[async_trait]
impl Adapter for EmailAdapter {
    fn name(&self) -> &'static str {
        handler::PLATFORM
    }

    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        if let Some(warning) = self.config.sender_trust_warning() {
            tracing::warn!("Email adapter: {warning}");
        }
        let worker = handler::Worker::new(self.config, gateway, self.failpoint).await?;
        worker.run(shutdown).await.map_err(|error| {
            tracing::error!(%error, "Email adapter stopped.");
            AdapterError::from(error)
        })
    }
}

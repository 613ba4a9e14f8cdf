//! `footnote-adapter`: the plugin boundary between Footnote's core and its chat adapters.
//!
//! The core implements [`Gateway`]; each chat platform (Discord, Matrix, Slack, email, the CLI,
//! the HTTP API) drives it through this crate alone. Everything here is plain data so that a third
//! party can write an adapter without depending on the core:
//!
//! - [`Scope`] and [`Actor`] say where a call comes from and who makes it; the core decides which
//!   collections that scope may read and whether the actor may do what it asks.
//! - [`Question`], [`Upload`] go in; [`Answer`], [`Citation`], [`IngestReceipt`] come out.
//! - Errors carry a [`user_message`](AskError::user_message) that is safe to show in a chat: it
//!   never contains a raw error string, a URL with credentials, SQL or a token.
//! - [`Command`]: the verbs a chat user gives the bot, parsed once for every platform.
//! - [`html`] escapes text for the adapters that send HTML.
//! - [`progress`] shows an answer while it is written: progress texts and the throttled edits.
//! - [`reports`] words the replies to the status, warm-up, documents and forget commands.
//! - [`render`] holds the shared helpers that turn numbered sources into text and split long
//!   answers at a platform's message limit without cutting a citation in half.
//! - [`setup`]: how an adapter declares itself to the core: [`AdapterConfig`] checks its
//!   section and builds the adapter from an [`AdapterContext`].
//! - [`Ledger`]: when several Footnote instances share a database, what an adapter connection
//!   records there so that the instance taking it over carries on ([`Gateway::ledger`]).
//! - [`wire`]: the same calls for plugins in other processes, as JSON over HTTP (protocol 1).

#![warn(missing_docs)]

pub mod command;
mod error;
pub mod html;
pub mod ledger;
pub mod progress;
pub mod render;
pub mod reports;
pub mod setup;
#[cfg(feature = "test-utils")]
pub mod testing;
mod types;
pub mod wire;

pub use command::Command;
pub use error::{AskError, GatewayError, IngestError};
pub use ledger::{Claim, Ledger, LedgerError};
pub use setup::{AdapterConfig, AdapterContext, Built};
pub use types::*;

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
pub use tokio_util::sync::CancellationToken;

/// The core's face towards adapters. Every call carries the [`Scope`] it was made in and the
/// [`Actor`] who made it; permissions and the collection mapping are enforced behind it.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Answers a question as a stream of events: queue position, model loading, tokens, and
    /// finally [`AskEvent::Done`] with the checked citations or [`AskEvent::Failed`].
    async fn ask_stream(&self, scope: &Scope, actor: &Actor, question: Question) -> BoxStream<'static, AskEvent>;

    /// Answers a question and returns the whole answer once it is complete.
    async fn ask(&self, scope: &Scope, actor: &Actor, question: Question) -> Result<Answer, AskError> {
        let mut events = self.ask_stream(scope, actor, question).await;
        while let Some(event) = events.next().await {
            match event {
                AskEvent::Done(answer) => return Ok(answer),
                AskEvent::Failed(error) => return Err(error),
                AskEvent::Queued { .. } | AskEvent::LoadingModel | AskEvent::Token(_) => {}
            }
        }
        Err(AskError::Internal)
    }

    /// Stores a file in the scope's collection and returns what became of it.
    async fn ingest(&self, scope: &Scope, actor: &Actor, upload: Upload) -> Result<IngestReceipt, IngestError>;

    /// Loads both models so the next answer does not wait for them.
    async fn warmup(&self, scope: &Scope, actor: &Actor) -> Result<WarmupReport, GatewayError>;

    /// Reports whether the models are reachable and loaded, and how much is stored.
    async fn status(&self, scope: &Scope, actor: &Actor) -> Result<Status, GatewayError>;

    /// Lists the documents the scope can read.
    async fn documents(&self, scope: &Scope, actor: &Actor) -> Result<Vec<DocumentInfo>, GatewayError>;

    /// Removes a document (by the id shown in receipts and listings) and all its chunks.
    async fn forget(&self, scope: &Scope, actor: &Actor, document_id: &str) -> Result<ForgetReceipt, GatewayError>;

    /// The shared progress of the adapter connection this gateway was handed to, when several
    /// instances share the database (see [`Ledger`]); `None` otherwise.
    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        None
    }
}

/// Errors that end an adapter's run; the runtime logs them and restarts the adapter with backoff.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The adapter's configuration cannot work (bad token, missing field): restarting won't help.
    #[error("configuration: {0}")]
    Config(String),
    /// The platform could not be reached or dropped the connection.
    #[error("connection: {0}")]
    Connection(String),
    /// Anything else; the message is for the log, not for chat users.
    #[error("{0}")]
    Other(String),
}

/// A chat platform connection. `run` returns when `shutdown` is cancelled (Ok) or on a fatal error.
#[async_trait]
pub trait Adapter: Send {
    /// Short name for logs and config, such as `discord`.
    fn name(&self) -> &'static str;

    /// Serves the platform until `shutdown` is cancelled.
    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError>;
}

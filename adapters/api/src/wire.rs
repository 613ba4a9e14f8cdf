//! The plugin wire protocol, version [`PROTOCOL`]: what a plugin in another process (in any
//! language) sends to Footnote over HTTP and what it reads back on its event stream. The bodies
//! are the very types of this crate ([`Scope`], [`Actor`], [`Question`], [`Upload`],
//! [`AskEvent`], [`Answer`], the receipts and errors) as JSON, so the in-process adapters and
//! the wire cannot drift apart; `plugins/PROTOCOL.md` describes the exchange and
//! `plugins/protocol.json` is the schema generated from these types.
//!
//! - `GET {PATH}/events`: the plugin's connection, a stream of server-sent events
//!   ([`ServerFrame`]): [`Hello`] first, then the unacknowledged [`Finished`] answers, then the
//!   progress and answers of its questions as they come.
//! - `POST {PATH}/ask` ([`AskRequest`] → [`Accepted`]): the answer arrives on the stream.
//! - `POST {PATH}/ingest` ([`IngestRequest`] → [`IngestReceipt`]), `…/warmup`, `…/status`,
//!   `…/documents` ([`Call`] → [`WarmupReport`], [`Status`], a list of [`DocumentInfo`]),
//!   `…/forget` ([`ForgetRequest`] → [`ForgetReceipt`]), `…/ack` ([`Ack`]).
//!
//! A refused call answers with an HTTP error status and a [`Refusal`] (the protocol's own
//! refusals), an [`IngestFailure`] or a [`GatewayFailure`]; each has a `message` safe to show in
//! a chat.

use serde::{Deserialize, Serialize};

#[allow(unused_imports)] // named in the documentation above
use crate::{
    Actor, Answer, AskEvent, DocumentInfo, ForgetReceipt, GatewayError, IngestError, IngestReceipt, Question, Scope,
    Status, Upload, WarmupReport,
};

/// The protocol version this crate speaks; the first frame of every stream names it.
pub const PROTOCOL: u32 = 1;

/// Where the protocol's routes live on Footnote's HTTP server.
pub const PATH: &str = "/plugin/v1";

/// The first frame of a connection: who the server takes the plugin for, and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hello {
    /// The protocol version (`PROTOCOL`).
    pub protocol: u32,
    /// The plugin's name from the server's configuration.
    pub plugin: String,
    /// The platform its token is bound to: every `Scope` it sends must name it.
    pub platform: String,
    /// Requests the plugin may have in progress at once (answers not yet finished included).
    pub max_in_flight: u32,
    /// The largest file `IngestRequest` may carry, in bytes (before base64).
    pub max_upload_bytes: u64,
}

/// A question to answer; its progress and answer arrive on the event stream under `id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The plugin's own id for this question (1 to 100 characters), echoed in every frame.
    pub id: String,
    /// Where it was asked.
    pub scope: Scope,
    /// Who asked.
    pub actor: Actor,
    /// The question and the thread's earlier turns.
    pub question: Question,
}

/// A question was taken: its frames will carry this id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// The request's id.
    pub id: String,
}

/// A call that needs only where and who: warm-up, status, the list of documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// Where the call was made.
    pub scope: Scope,
    /// Who made it.
    pub actor: Actor,
}

/// A file (or a text, as its UTF-8 bytes) to store in the scope's collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Where it was sent.
    pub scope: Scope,
    /// Who sent it.
    pub actor: Actor,
    /// The file, its bytes in base64.
    pub upload: Upload,
}

/// A document to forget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForgetRequest {
    /// Where it was asked.
    pub scope: Scope,
    /// Who asked.
    pub actor: Actor,
    /// The document's id, as receipts and listings show it.
    pub document_id: String,
}

/// Answers the plugin has delivered: the server stops resending them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The ids of the `Finished` frames delivered.
    pub ids: Vec<String>,
}

/// One frame of the event stream (the `data` of a server-sent event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The first frame.
    Hello(Hello),
    /// An answer in progress: queued, loading the model, or a piece of text
    /// (`AskEvent` other than `done` and `failed`). Not resent.
    Progress(Progress),
    /// The end of a question: its answer or why it failed. Resent on every new connection until
    /// acknowledged (`Ack`).
    Finished(Finished),
}

/// An answer in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// The question's id (`AskRequest::id`).
    pub id: String,
    /// What happened.
    pub event: AskEvent,
}

/// The end of a question, with what is needed to post it where it was asked, even by a plugin
/// that restarted since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finished {
    /// The question's id (`AskRequest::id`).
    pub id: String,
    /// Where it was asked (the platform is the plugin's).
    pub scope: Scope,
    /// Who asked.
    pub actor: Actor,
    /// `done` with the answer, or `failed` with the error.
    pub event: AskEvent,
    /// The sentence to show in the chat with it: for `failed`, why
    /// (`user_message`); for `done` with a notice,
    /// the notice's (`user_message`).
    pub message: Option<String>,
}

/// Why the protocol refused a request (bad token, wrong platform, too large, too many in flight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refusal {
    /// A short code: `unauthorized`, `browser`, `wrong_platform`, `bad_request`, `too_large`,
    /// `busy`, `protocol`.
    pub error: String,
    /// A sentence saying what to fix.
    pub message: String,
}

/// Why an ingest failed: nothing was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestFailure {
    /// The error.
    pub error: IngestError,
    /// Its sentence for the chat (`IngestError::user_message`).
    pub message: String,
}

impl From<IngestError> for IngestFailure {
    fn from(error: IngestError) -> Self {
        IngestFailure { message: error.user_message(), error }
    }
}

/// Why a warm-up, status, listing or forget failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayFailure {
    /// The error.
    pub error: GatewayError,
    /// Its sentence for the chat (`GatewayError::user_message`).
    pub message: String,
}

impl From<GatewayError> for GatewayFailure {
    fn from(error: GatewayError) -> Self {
        GatewayFailure { message: error.user_message(), error }
    }
}

impl Finished {
    /// The frame that ends question `id` with `event` (`done` or `failed`).
    pub fn new(id: String, scope: Scope, actor: Actor, event: AskEvent) -> Finished {
        let message = match &event {
            AskEvent::Failed(error) => Some(error.user_message()),
            AskEvent::Done(answer) => answer.notice.map(|n| n.user_message().to_owned()),
            _ => None,
        };
        Finished { id, scope, actor, event, message }
    }
}

/// Base64 (standard alphabet, padded) for the bytes of an `Upload`.
pub(crate) mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

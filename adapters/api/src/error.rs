//! Errors an adapter can receive, each with a message that is safe to show in a chat.
//!
//! The core logs the full cause chain once and hands adapters only these. `Display` is for logs;
//! `user_message()` is for people.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a question got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum AskError {
    /// The question was empty or unusable; the text says why.
    #[error("invalid question: {0}")]
    Invalid(String),
    /// The asker may not ask in this scope.
    #[error("not allowed to ask here")]
    Denied,
    /// The asker sent too many questions; try again after the given time.
    #[error("rate limited for {0:?}")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    RateLimited(#[serde(with = "secs")] Duration),
    /// The model or the store cannot serve now; the text says what to do (safe to show).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The answer took longer than the configured limit.
    #[error("timed out")]
    Timeout,
    /// The service is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A bug or an unexpected failure; details are in the server log.
    #[error("internal error")]
    Internal,
}

impl AskError {
    /// A sentence safe to show in a chat: no raw error, URL, SQL or token.
    pub fn user_message(&self) -> String {
        match self {
            AskError::Invalid(why) => format!("I can't answer that: {why}"),
            AskError::Denied => "You are not allowed to ask questions here.".into(),
            AskError::RateLimited(wait) => {
                format!("You are asking faster than I can answer. Try again in {} s.", wait.as_secs().max(1))
            }
            AskError::Unavailable(why) => why.clone(),
            AskError::Timeout => {
                "The answer took too long and was stopped. Try a shorter question, or ask again later.".into()
            }
            AskError::ShuttingDown => "I am restarting; ask again in a minute.".into(),
            AskError::Internal => {
                "Something went wrong on my side; the administrator can find the details in the log.".into()
            }
        }
    }
}

/// Why a file was not stored. Nothing of it was kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum IngestError {
    /// The file has no content.
    #[error("empty file")]
    Empty,
    /// The file (or what it unpacks to) is over a limit; the text names the limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The file's type is not one Footnote reads.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The file is damaged or not what its name says; the text says what was wrong.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// Reading the file took longer than the limit.
    #[error("extraction timed out")]
    Timeout,
    /// The uploader may not add documents here.
    #[error("not allowed to ingest here")]
    Denied,
    /// A document of the same name is already here, and only someone allowed to forget
    /// documents here may replace it.
    #[error("a document named {name:?} exists (document {document_id})")]
    NameTaken {
        /// The file name both share.
        name: String,
        /// The document that stays.
        document_id: String,
    },
    /// The uploader sent too many files; try again after the given time.
    #[error("rate limited for {0:?}")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    RateLimited(#[serde(with = "secs")] Duration),
    /// The store cannot take it now (the text is safe to show).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are in the server log.
    #[error("internal error")]
    Internal,
}

impl IngestError {
    /// A sentence safe to show in a chat: which file, what went wrong, what to do.
    pub fn user_message(&self) -> String {
        match self {
            IngestError::Empty => "That file is empty, so there is nothing to add.".into(),
            IngestError::TooLarge(what) => format!("That file is too large: {what}. Nothing was added."),
            IngestError::Unsupported(what) => format!(
                "I can't read {what}. I read PDF, Word (.docx), HTML, Markdown, plain text and email (.eml) files."
            ),
            IngestError::Unreadable(why) => format!("I couldn't read that file: {why}. Nothing was added."),
            IngestError::Timeout => "Reading that file took too long, so I stopped. Nothing was added.".into(),
            IngestError::Denied => "You are not allowed to add documents here.".into(),
            IngestError::NameTaken { name, document_id } => format!(
                "A document named “{name}” is already here (document {document_id}), and only someone allowed to forget \
                 documents may replace it. Nothing was added; rename the file to add it next to the other one."
            ),
            IngestError::RateLimited(wait) => format!(
                "You are adding files faster than I can read them. Try again in {} s. Nothing was added.",
                wait.as_secs().max(1)
            ),
            IngestError::Unavailable(why) => format!("{why} Nothing was added."),
            IngestError::Internal => {
                "Something went wrong on my side and nothing was added; the administrator can find the details in the log."
                    .into()
            }
        }
    }
}

/// Why warm-up, status, listing or forgetting failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum GatewayError {
    #[error("not allowed")]
    /// The actor may not do this in this scope.
    Denied,
    /// No such document in the scope's collections.
    #[error("not found: {0}")]
    NotFound(String),
    /// A dependency is down; the text says what to do (safe to show).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    /// Something failed inside; the details are in the log.
    Internal,
}

impl GatewayError {
    /// A sentence safe to show in a chat.
    pub fn user_message(&self) -> String {
        match self {
            GatewayError::Denied => "You are not allowed to do that here.".into(),
            GatewayError::NotFound(id) => format!("There is no document {id} here."),
            GatewayError::Unavailable(why) => why.clone(),
            GatewayError::Internal => {
                "Something went wrong on my side; the administrator can find the details in the log.".into()
            }
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

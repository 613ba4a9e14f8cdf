//! The one place where the engine's errors become what a chat user sees: the adapter-facing
//! errors with sentences safe to show (never an internal error string, a URL or a path), each
//! cause logged once.

use footnote_adapter::{AskError, GatewayError, IngestError};

use crate::llm::OllamaError;
use crate::rag::error::{RagError, count_ollama_error};

/// What a chat user is told when the model queue is full.
pub const BUSY_MESSAGE: &str = "I am busy answering other questions right now. Please try again in a minute.";

/// How long an asker with too many questions waiting is told to wait.
pub const USER_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl RagError {
    /// The message a chat user may see when Ollama is the problem.
    fn ollama_user_message(e: &OllamaError) -> String {
        match e {
            OllamaError::Unreachable { .. } => {
                "The language model server is not reachable right now. An administrator can start it with `ollama serve`."
                    .into()
            }
            OllamaError::ModelNotFound { model } => format!(
                "The model {model} is not installed on the language model server. An administrator can install it with `ollama pull {model}`."
            ),
            OllamaError::ContextTooLong { .. } => {
                "The question and its sources are too long for the model. Try a shorter question.".into()
            }
            OllamaError::Timeout { .. } => "The language model took too long to answer. Try again in a moment.".into(),
            OllamaError::StreamCut => "The language model stopped in the middle of the answer. Ask again.".into(),
            _ => "The language model failed to answer. Try again in a moment.".into(),
        }
    }

    /// The adapter-facing form of an error while asking. Logs the cause once.
    pub fn into_ask_error(self) -> AskError {
        match self {
            RagError::Busy => return AskError::Unavailable(BUSY_MESSAGE.into()),
            RagError::UserBusy => return AskError::RateLimited(USER_BUSY_WAIT),
            RagError::Invalid(why) => return AskError::Invalid(why),
            RagError::Abandoned => return AskError::Internal,
            _ => {}
        }
        tracing::error!(error = %self, "ask failed");
        if let RagError::Ollama(e) = &self {
            count_ollama_error(e);
        }
        match &self {
            RagError::Ollama(OllamaError::Timeout { .. }) => AskError::Timeout,
            RagError::Ollama(e) => AskError::Unavailable(Self::ollama_user_message(e)),
            RagError::EmbedModelChanged { .. } => AskError::Unavailable(
                "The search index is being changed to a new embedding model; an administrator must run `footnote reindex --embeddings`."
                    .into(),
            ),
            _ => AskError::Internal,
        }
    }

    /// The adapter-facing form of an error while ingesting. Logs the cause once.
    pub fn into_ingest_error(self) -> IngestError {
        match self {
            RagError::Ingest(e) => {
                tracing::info!(error = %e, "upload refused");
                e
            }
            other => {
                tracing::error!(error = %other, "ingest failed");
                match &other {
                    RagError::EmbedModelChanged { .. } => {
                        IngestError::Unavailable("The search index is being changed to a new embedding model.".into())
                    }
                    RagError::Busy | RagError::UserBusy => IngestError::Unavailable(BUSY_MESSAGE.into()),
                    _ => IngestError::Internal,
                }
            }
        }
    }

    /// The adapter-facing form of any other error. Logs the cause once.
    pub fn into_gateway_error(self) -> GatewayError {
        tracing::error!(error = %self, "gateway call failed");
        match &self {
            RagError::Ollama(e) => {
                count_ollama_error(e);
                GatewayError::Unavailable(Self::ollama_user_message(e))
            }
            RagError::Busy | RagError::UserBusy => GatewayError::Unavailable(BUSY_MESSAGE.into()),
            _ => GatewayError::Internal,
        }
    }
}

//! The core's error type and its mapping to the safe, adapter-facing errors.

use footnote_adapter::{AskError, GatewayError, IngestError};

use crate::index::IndexError;
use crate::llm::OllamaError;
use crate::store::StoreError;

/// Everything that can go wrong inside the core, with its full cause.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    /// Talking to Ollama failed.
    #[error("Ollama: {0}")]
    Ollama(#[from] OllamaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A search index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The file was refused; the error says why in words for the user.
    #[error("ingest refused: {0}")]
    Ingest(IngestError),
    /// The configured embedding model is not the one the stored vectors were made with.
    #[error(
        "the stored vectors were made with {stored} but ollama.embed_model is {configured}: run `footnote reindex --embeddings` to re-embed everything with {configured}, or set ollama.embed_model back to {stored}"
    )]
    EmbedModelChanged { stored: String, configured: String },
    /// The model queue is full.
    #[error("the model queue is full")]
    Busy,
    /// The asker has the most questions waiting that one user may.
    #[error("the asker has too many questions waiting")]
    UserBusy,
    /// The data directory cannot be used.
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    /// Another process keeps the indexes and has not made them readable in time.
    #[error("{holder} is building the search indexes in {dir}; try again in a moment")]
    IndexesNotReady { holder: String, dir: String },
    /// The question cannot be answered as asked; the message says why, in words for the user.
    #[error("{0}")]
    Invalid(String),
    /// Whoever asked stopped listening (the progress receiver was dropped).
    #[error("the asker went away")]
    Abandoned,
}

/// What a chat user is told when the model queue is full.
pub const BUSY_MESSAGE: &str = "I am busy answering other questions right now. Please try again in a minute.";

/// How long an asker with too many questions waiting is told to wait.
pub const USER_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Counts an Ollama failure for `/metrics`, by kind.
pub(crate) fn count_ollama_error(e: &OllamaError) {
    let kind = match e {
        OllamaError::Unreachable { .. } => "unreachable",
        OllamaError::ModelNotFound { .. } => "model_not_found",
        OllamaError::ContextTooLong { .. } => "context_too_long",
        OllamaError::Timeout { .. } => "timeout",
        OllamaError::StreamCut => "stream_cut",
        _ => "other",
    };
    metrics::counter!("footnote_ollama_errors_total", "kind" => kind).increment(1);
}

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

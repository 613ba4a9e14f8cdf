//! The engine's error type, with its full cause; `Core` maps it to what a chat user sees
//! (`gateway/errors.rs`).

use footnote_adapter::IngestError;

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

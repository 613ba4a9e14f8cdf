//! The Ollama REST client: embeddings in parallel batches, chat (whole or streamed as NDJSON),
//! generate, the model lists (`/api/ps`, `/api/tags`), model facts (`/api/show`) and warm-up.
//!
//! Every call that accepts it carries the configured `keep_alive`, so models stay loaded
//! between questions. Errors are [`OllamaError`]s, each with a [`fix`](OllamaError::fix) for a
//! person.

mod error;
mod ollama;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::OllamaError;
pub use ollama::OllamaClient;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "system".into(), content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "user".into(), content: content.into() }
    }

    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "assistant".into(), content: content.into() }
    }
}

/// A chat call. `None` options are left to the model's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// Context window (`options.num_ctx`).
    pub num_ctx: Option<u32>,
    /// Sampling temperature (`options.temperature`).
    pub temperature: Option<f32>,
    /// Most tokens to write (`options.num_predict`; -1: no limit).
    pub num_predict: Option<i32>,
}

impl ChatRequest {
    /// A request with the model's default options.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest { model: model.into(), messages, ..ChatRequest::default() }
    }
}

/// What Ollama reports about an answer in its last line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// `stop`, `length`, `load`, … (absent in old Ollama versions).
    pub done_reason: Option<String>,
    /// Whole call, as Ollama measured it.
    pub total: Duration,
    /// Time spent loading the model (zero when it was loaded already).
    pub load: Duration,
    /// Prompt tokens.
    pub prompt_eval_count: u64,
    /// Answer tokens.
    pub eval_count: u64,
    /// Time spent writing the answer.
    pub eval_duration: Duration,
}

/// One piece of a streamed answer. The last one has `done: true` and the stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatChunk {
    pub content: String,
    pub done: bool,
    pub stats: Option<ChatStats>,
}

/// A whole (not streamed) chat answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatResponse {
    pub content: String,
    pub stats: ChatStats,
}

/// A generate call (a single prompt, with an optional system prompt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerateRequest {
    pub model: String,
    pub prompt: String,
    pub system: Option<String>,
    /// Context window (`options.num_ctx`).
    pub num_ctx: Option<u32>,
}

/// A whole generate answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerateResponse {
    pub response: String,
    pub stats: ChatStats,
}

/// A model loaded in Ollama now (`/api/ps`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningModel {
    pub name: String,
    pub model: String,
    /// When Ollama unloads it (`None` when missing or unreadable).
    pub expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Bytes of it in GPU memory (0: all on the CPU).
    pub size_vram: u64,
}

/// A model pulled into Ollama (`/api/tags`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalModel {
    pub name: String,
    pub model: String,
    /// Bytes on disk.
    pub size: u64,
}

/// Facts about a model from `/api/show`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture`, e.g. `nomic-bert`, `llama`.
    pub architecture: Option<String>,
    /// `{architecture}.embedding_length`: the vector length of an embedding model.
    pub embedding_length: Option<usize>,
    /// `{architecture}.context_length`: the longest context the model was trained for.
    pub context_length: Option<usize>,
    /// `completion`, `embedding`, `tools`, … (empty on Ollama versions before capabilities).
    pub capabilities: Vec<String>,
}

/// A warm-up call's timing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warmed {
    /// Wall time of the call.
    pub took: Duration,
    /// Load time: `load_duration` when Ollama reports it; its load-only replies carry no stats,
    /// and then this is `took` (loading is all such a call does).
    pub load: Duration,
}

//! Ollama's request and reply bodies as its `docs/api.md` documents them (private to the
//! client). Durations on the wire are nanoseconds; absent numbers count as zero.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ChatMessage;

/// `options`: only what Footnote sets; `None`s are left out, and so is an empty `options`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i32>,
}

impl Options {
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }
}

/// `POST /api/embed`
#[derive(Serialize)]
pub struct EmbedBody<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    pub keep_alive: &'a Value,
}

#[derive(Deserialize)]
pub struct EmbedReply {
    #[serde(default)]
    pub embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    pub load_duration: u64,
}

/// `POST /api/chat`
#[derive(Serialize)]
pub struct ChatBody<'a> {
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub stream: bool,
    pub keep_alive: &'a Value,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub options: Options,
}

/// `POST /api/generate`
#[derive(Serialize)]
pub struct GenerateBody<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<&'a str>,
    pub stream: bool,
    pub keep_alive: &'a Value,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub options: Options,
}

#[derive(Deserialize, Default)]
pub struct WireMessage {
    #[serde(default)]
    pub content: String,
}

/// One chat or generate line (a stream line, or the whole non-streamed reply), or an error
/// line `{"error": …}`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AnswerLine {
    pub error: Option<String>,
    pub message: Option<WireMessage>,
    pub response: Option<String>,
    pub done: bool,
    pub done_reason: Option<String>,
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
}

impl AnswerLine {
    /// The text this line adds (`message.content` for chat, `response` for generate).
    pub fn text(&mut self) -> String {
        match (self.message.take(), self.response.take()) {
            (Some(m), _) => m.content,
            (None, Some(r)) => r,
            (None, None) => String::new(),
        }
    }

    pub fn stats(&self) -> super::ChatStats {
        super::ChatStats {
            done_reason: self.done_reason.clone(),
            total: Duration::from_nanos(self.total_duration),
            load: Duration::from_nanos(self.load_duration),
            prompt_eval_count: self.prompt_eval_count,
            eval_count: self.eval_count,
            eval_duration: Duration::from_nanos(self.eval_duration),
        }
    }
}

/// `GET /api/ps`
#[derive(Deserialize)]
pub struct PsReply {
    #[serde(default)]
    pub models: Vec<PsModel>,
}

#[derive(Deserialize)]
pub struct PsModel {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub size_vram: u64,
}

/// `GET /api/tags`
#[derive(Deserialize)]
pub struct TagsReply {
    #[serde(default)]
    pub models: Vec<TagsModel>,
}

#[derive(Deserialize)]
pub struct TagsModel {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub size: u64,
}

/// `POST /api/show`
#[derive(Serialize)]
pub struct ShowBody<'a> {
    pub model: &'a str,
}

#[derive(Deserialize)]
pub struct ShowReply {
    #[serde(default)]
    pub model_info: Map<String, Value>,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

//! What can go wrong talking to Ollama, each case with a one-line fix for a person.
//!
//! Messages never carry request bodies (users' documents and questions) nor URL credentials.

use std::time::Duration;

/// An Ollama call failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OllamaError {
    /// Nothing answered at the URL: connection refused, DNS failure, no route, or the TCP
    /// connection took longer than `ollama.connect_timeout`.
    #[error("cannot reach Ollama at {url}")]
    Unreachable { url: String },

    /// Ollama does not have the model (HTTP 404, "not found, try pulling it first").
    #[error("Ollama has no model \"{model}\"")]
    ModelNotFound { model: String },

    /// The input does not fit the model's context window (an error mentioning the context
    /// length, e.g. `/api/embed` with `truncate: false`).
    #[error("the input is longer than the model's context window: {detail}")]
    ContextTooLong { detail: String },

    /// No reply (or, while streaming, no next line) within `ollama.request_timeout`.
    #[error("Ollama did not answer within {}", humantime::format_duration(*after))]
    Timeout { after: Duration },

    /// The connection closed before the answer was complete (no `done: true` line, or the body
    /// broke off).
    #[error("Ollama stopped before the answer was complete")]
    StreamCut,

    /// Ollama answered with an error not covered above (HTTP status and its `error` text; in a
    /// stream, the status is that of the stream's response).
    #[error("Ollama answered HTTP {status}: {message}")]
    Api { status: u16, message: String },

    /// The reply was not what Ollama's API documents (bad JSON, wrong count of vectors, vectors
    /// of different lengths).
    #[error("unexpected reply from Ollama: {0}")]
    BadResponse(String),

    /// The client could not be set up: the configured URL is not a URL, or the HTTP client
    /// could not be built.
    #[error("cannot set up the Ollama client: {0}")]
    Config(String),
}

impl OllamaError {
    /// A one-line fix for a person.
    pub fn fix(&self) -> String {
        match self {
            OllamaError::Unreachable { url } => {
                format!("Start Ollama with `ollama serve` (tried {url}), or point `ollama.url` at it")
            }
            OllamaError::ModelNotFound { model } => format!("Pull it with `ollama pull {model}`"),
            OllamaError::ContextTooLong { .. } => {
                "Shorten the input, or raise `ollama.num_ctx` (up to the model's context length)".to_owned()
            }
            OllamaError::Timeout { .. } => {
                "Check the load on the Ollama server, or raise `ollama.request_timeout`".to_owned()
            }
            OllamaError::StreamCut => "Ollama stopped mid-answer; check its log and ask again".to_owned(),
            OllamaError::Api { status, .. } => {
                format!("Check Ollama's log for the HTTP {status} error and try again")
            }
            OllamaError::BadResponse(_) => {
                "Check that `ollama.url` points at Ollama itself, and update Ollama".to_owned()
            }
            OllamaError::Config(_) => "Set `ollama.url` to a URL such as http://127.0.0.1:11434".to_owned(),
        }
    }

    /// True when Ollama could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OllamaError::Unreachable { .. })
    }

    /// Classifies an error reply by its status and `error` text. `model` is the model the call
    /// named, if any.
    pub(crate) fn from_reply(status: u16, message: String, model: Option<&str>) -> OllamaError {
        let lower = message.to_lowercase();
        let about_model = lower.contains("try pulling it first")
            || (status == 404 && lower.contains("model") && lower.contains("not found"));
        if about_model && let Some(model) = model {
            return OllamaError::ModelNotFound { model: model.to_owned() };
        }
        if lower.contains("context length")
            || lower.contains("context window")
            || lower.contains("input length exceeds")
        {
            return OllamaError::ContextTooLong { detail: message };
        }
        OllamaError::Api { status, message }
    }

    /// The `error` text of an error body, else the body itself (shortened).
    pub(crate) fn reply_message(body: &str) -> String {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(e) => e.error,
            Err(_) => {
                let text = body.trim();
                let short: String = text.chars().take(300).collect();
                if short.is_empty() { "(no message)".to_owned() } else { short }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_replies() {
        let nf =
            OllamaError::from_reply(404, "model \"llama9\" not found, try pulling it first".into(), Some("llama9"));
        assert!(matches!(&nf, OllamaError::ModelNotFound { model } if model == "llama9"));
        assert_eq!(nf.fix(), "Pull it with `ollama pull llama9`");
        let show = OllamaError::from_reply(404, "model 'x' not found".into(), Some("x"));
        assert!(matches!(show, OllamaError::ModelNotFound { .. }));
        let page = OllamaError::from_reply(404, "404 page not found".into(), Some("x"));
        assert!(matches!(page, OllamaError::Api { status: 404, .. }), "an old Ollama without the endpoint");
        let ctx = OllamaError::from_reply(400, "the input length exceeds the context length".into(), Some("m"));
        assert!(matches!(ctx, OllamaError::ContextTooLong { .. }));
        assert!(ctx.fix().contains("ollama.num_ctx"));
        assert_eq!(OllamaError::reply_message("{\"error\":\"boom\"}"), "boom");
        assert_eq!(OllamaError::reply_message("  plain text\n"), "plain text");
    }

    #[test]
    fn timeouts_say_how_long() {
        let e = OllamaError::Timeout { after: Duration::from_secs(90) };
        assert_eq!(e.to_string(), "Ollama did not answer within 1m 30s");
        assert!(e.fix().contains("ollama.request_timeout"));
        assert!(!e.is_unreachable());
    }
}

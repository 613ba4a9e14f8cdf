//! What the double knows and remembers: its models, which are loaded and until when, the knobs
//! tests turn (delays, cuts, failures, a reply override) and the requests it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::duration::KeepAlive;
use crate::embed::fnv1a64;

/// Computes the chat answer text from the request's `messages`.
pub type ReplyFn = Arc<dyn Fn(&[Value]) -> String + Send + Sync>;

/// What a model does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// Answers `/api/chat` and `/api/generate`.
    Chat,
    /// Answers `/api/embed` with vectors of `dims` numbers.
    Embed { dims: usize },
}

/// One request the double received.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// The request path, e.g. `/api/embed`.
    pub path: String,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: Value,
}

/// One `/api/embed` request as the double served it: when its handler started and finished (the
/// reply body already serialised) and how many inputs it embedded. See
/// [`crate::OllamaDouble::embed_calls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbedCall {
    pub started: Instant,
    pub finished: Instant,
    pub inputs: usize,
}

/// The time during which at least one of `calls` was being served: the length of the union of
/// their intervals, so that concurrent requests count once.
pub fn busy_time(calls: &[EmbedCall]) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = calls.iter().map(|c| (c.started, c.finished)).collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(Duration::ZERO, |(s, e)| e - s)
}

/// A model the double pretends to have pulled.
#[derive(Clone, Debug)]
pub struct Model {
    /// Full name with tag, e.g. `nomic-embed-text:latest`.
    pub name: String,
    pub kind: ModelKind,
    pub architecture: String,
    pub context_length: usize,
    pub embedding_length: usize,
    pub parameter_size: String,
    pub size: u64,
}

impl Model {
    fn new(name: &str, kind: ModelKind, arch: &str, ctx: usize, emb: usize, params: &str, size: u64) -> Model {
        Model {
            name: full_name(name),
            kind,
            architecture: arch.to_owned(),
            context_length: ctx,
            embedding_length: emb,
            parameter_size: params.to_owned(),
            size,
        }
    }

    /// A made-up model for [`crate::OllamaDouble::add_model`].
    pub fn custom(name: &str, kind: ModelKind) -> Model {
        match kind {
            ModelKind::Chat => Model::new(name, kind, "llama", 4096, 2048, "1B", 800_000_000),
            ModelKind::Embed { dims } => Model::new(name, kind, "bert", 512, dims, "33M", 60_000_000),
        }
    }

    /// The sha256-looking digest (deterministic, made up).
    pub fn digest(&self) -> String {
        (0..4u8).map(|i| format!("{:016x}", fnv1a64(format!("{i}{}", self.name).as_bytes()))).collect()
    }

    pub fn capabilities(&self) -> Vec<&'static str> {
        match self.kind {
            ModelKind::Chat => vec!["completion"],
            ModelKind::Embed { .. } => vec!["embedding"],
        }
    }

    pub fn details(&self) -> Value {
        json!({
            "parent_model": "",
            "format": "gguf",
            "family": self.architecture,
            "families": [self.architecture],
            "parameter_size": self.parameter_size,
            "quantization_level": if matches!(self.kind, ModelKind::Chat) { "Q4_K_M" } else { "F16" },
        })
    }

    /// Vector length of `/api/embed` answers.
    pub fn dims(&self) -> usize {
        match self.kind {
            ModelKind::Embed { dims } => dims,
            ModelKind::Chat => self.embedding_length,
        }
    }
}

/// `name` with `:latest` added when it has no tag.
pub fn full_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') { name.to_owned() } else { format!("{name}:latest") }
}

/// The double's mutable state, behind one lock.
pub struct State {
    pub models: Vec<Model>,
    /// Loaded models by full name, with when they unload (`None`: never).
    pub loaded: HashMap<String, Option<DateTime<Utc>>>,
    pub token_delay: Duration,
    pub load_delay: Duration,
    /// Added to every `/api/embed` request that has inputs (a model's fixed per-batch cost).
    pub embed_delay: Duration,
    pub cut_after: Option<usize>,
    pub fail_next: Option<(u16, String)>,
    pub fail_stream_after: Option<(usize, String)>,
    /// `/api/embed` requests with an input containing this text are answered with an error.
    pub reject_embed: Option<String>,
    pub reply: Option<ReplyFn>,
    pub requests: Vec<Recorded>,
    pub embed_calls: Vec<EmbedCall>,
}

impl Default for State {
    fn default() -> Self {
        let models = vec![
            Model::new("qwen2.5:3b-instruct", ModelKind::Chat, "qwen2", 32768, 2048, "3.1B", 1_929_912_432),
            Model::new("smollm2:135m", ModelKind::Chat, "llama", 8192, 576, "134.52M", 270_898_672),
            Model::new(
                "nomic-embed-text",
                ModelKind::Embed { dims: 768 },
                "nomic-bert",
                2048,
                768,
                "137M",
                274_302_450,
            ),
            Model::new("all-minilm", ModelKind::Embed { dims: 384 }, "bert", 512, 384, "23M", 45_960_996),
        ];
        State {
            models,
            loaded: HashMap::new(),
            token_delay: Duration::ZERO,
            load_delay: Duration::ZERO,
            embed_delay: Duration::ZERO,
            cut_after: None,
            fail_next: None,
            fail_stream_after: None,
            reject_embed: None,
            reply: None,
            requests: Vec::new(),
            embed_calls: Vec::new(),
        }
    }
}

impl State {
    /// The model called `name` (with or without `:latest`).
    pub fn model(&self, name: &str) -> Option<Model> {
        let full = full_name(name.trim());
        self.models.iter().find(|m| m.name == full).cloned()
    }

    /// Adds or replaces a model.
    pub fn add_model(&mut self, model: Model) {
        self.models.retain(|m| m.name != model.name);
        self.models.push(model);
    }

    /// Drops models whose keep-alive ran out.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.loaded.retain(|_, until| until.is_none_or(|t| t > now));
    }

    pub fn is_loaded(&mut self, name: &str) -> bool {
        self.expire(Utc::now());
        self.loaded.contains_key(name)
    }

    /// Marks a model used just now; it stays loaded for `keep_alive` (zero unloads it).
    pub fn touch(&mut self, name: &str, keep_alive: KeepAlive) {
        match keep_alive {
            KeepAlive::Forever => {
                self.loaded.insert(name.to_owned(), None);
            }
            KeepAlive::For(d) if d.is_zero() => {
                self.loaded.remove(name);
            }
            KeepAlive::For(d) => {
                let until = chrono::Duration::from_std(d).ok().and_then(|d| Utc::now().checked_add_signed(d));
                self.loaded.insert(name.to_owned(), until.or(Some(DateTime::<Utc>::MAX_UTC)));
            }
        }
    }
}

/// The state shared by the handle and the server.
#[derive(Default)]
pub struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state; a panic while it was held does not poison it for later tests.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(base: Instant, from_ms: u64, to_ms: u64) -> EmbedCall {
        let at = |ms| base + Duration::from_millis(ms);
        EmbedCall { started: at(from_ms), finished: at(to_ms), inputs: 1 }
    }

    #[test]
    fn busy_time_counts_overlapping_calls_once() {
        let t = Instant::now();
        assert_eq!(busy_time(&[]), Duration::ZERO);
        // 0–40 and 20–60 overlap (60 ms busy); 100–140 stands alone; 110–120 lies inside it.
        let calls = [call(t, 100, 140), call(t, 20, 60), call(t, 0, 40), call(t, 110, 120)];
        assert_eq!(busy_time(&calls), Duration::from_millis(100));
        // Touching intervals join without a gap.
        assert_eq!(busy_time(&[call(t, 0, 10), call(t, 10, 30)]), Duration::from_millis(30));
    }
}

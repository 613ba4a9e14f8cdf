//! A test double of Ollama's REST API for Footnote's tests and manual runs.
//!
//! It speaks the shapes of Ollama's `docs/api.md` (`/api/chat` and `/api/generate` streamed as
//! NDJSON or whole, `/api/embed`, `/api/show`, `/api/tags`, `/api/ps`, `/api/version`, `GET /`),
//! answers with deterministic, meaningful embeddings ([`embed_text`]: a hashed bag of words) and
//! with answers that cite the prompt's numbered sources ([`default_reply`]), and fails on demand:
//! load, token and per-request embed delays, cut streams, error replies, inputs it refuses to
//! embed, a stopped server. It
//! records the requests it received, and each embed call's timing and size ([`busy_time`]).
//!
//! ```no_run
//! # async fn demo() {
//! let ollama = footnote_ollama_double::OllamaDouble::start().await;
//! println!("Ollama double at {}", ollama.url);
//! ollama.stop().await; // connections are now refused
//! ollama.restart().await; // same port, same models and state
//! # }
//! ```
//!
//! Default models: chat `qwen2.5:3b-instruct` and `smollm2:135m`; embedding
//! `nomic-embed-text` (768 dimensions, architecture `nomic-bert`, context 2048) and
//! `all-minilm` (384, `bert`, 512). Names match with or without `:latest`.

mod answer;
mod duration;
mod embed;
mod reply;
mod routes;
mod server;
mod state;
mod stream;

use std::sync::Arc;
use std::time::Duration;

pub use duration::{KeepAlive, parse_go_duration};
pub use embed::{content_words, cosine, embed_text};
pub use reply::default_reply;
pub use state::{EmbedCall, ModelKind, Recorded, ReplyFn, busy_time};

use server::Server;
use state::{Model, Shared};

/// A running double. Clones share the server and its state.
#[derive(Clone)]
pub struct OllamaDouble {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The port it listens on (kept across [`stop`](Self::stop) and [`restart`](Self::restart)).
    pub port: u16,
    shared: Arc<Shared>,
    server: Arc<Server>,
}

impl OllamaDouble {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start() -> OllamaDouble {
        OllamaDouble::start_on(0).await
    }

    /// Starts on 127.0.0.1:`port` (0 picks a free one).
    ///
    /// # Panics
    /// When the port cannot be bound: a test double has no better way to say so.
    pub async fn start_on(port: u16) -> OllamaDouble {
        let shared = Arc::new(Shared::default());
        let server = Server::bind(port, routes::router(shared.clone()))
            .await
            .unwrap_or_else(|e| panic!("the Ollama double cannot listen on 127.0.0.1:{port}: {e}"));
        let port = server.port();
        OllamaDouble { url: format!("http://127.0.0.1:{port}"), port, shared, server: Arc::new(server) }
    }

    /// Closes the listener and every open connection; later connections are refused.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// Listens again on the same port with the same state (no-op while running).
    ///
    /// # Panics
    /// When the port was taken by someone else in the meantime.
    pub async fn restart(&self) {
        if let Err(e) = self.server.restart().await {
            panic!("the Ollama double cannot listen again on 127.0.0.1:{}: {e}", self.port);
        }
    }

    /// Delay before each streamed chunk (a non-streamed answer waits for all of them).
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.lock().token_delay = delay;
    }

    /// How long the first call to a model that is not loaded takes; reported as
    /// `load_duration`. A model stays loaded for the request's `keep_alive` (default `5m`).
    pub fn set_load_delay(&self, delay: Duration) {
        self.shared.lock().load_delay = delay;
    }

    /// A fixed time every `/api/embed` request with inputs takes on top of the work (after the
    /// model load), whatever the number of inputs: the per-batch latency of a real model, for
    /// benchmarks of batching. Zero (the default) turns it off.
    pub fn set_embed_delay(&self, delay: Duration) {
        self.shared.lock().embed_delay = delay;
    }

    /// From now on, chat and generate answers stop after `n` chunks: the connection is closed
    /// without a `done` line (a non-streamed answer is dropped unanswered). `None` turns it off.
    pub fn cut_stream_after(&self, n: Option<usize>) {
        self.shared.lock().cut_after = n;
    }

    /// The next `/api/…` request is answered with `status` and `{"error": message}`.
    pub fn fail_next(&self, status: u16, message: &str) {
        self.shared.lock().fail_next = Some((status, message.to_owned()));
    }

    /// The next streamed chat or generate answer sends `n` chunks, then the line
    /// `{"error": message}`, and ends (with HTTP 200, as Ollama does once streaming started).
    pub fn fail_stream_after(&self, n: usize, message: &str) {
        self.shared.lock().fail_stream_after = Some((n, message.to_owned()));
    }

    /// From now on, every `/api/embed` request with an input that contains `marker` is answered
    /// with HTTP 500 and `{"error": "failed to generate embedding: …"}`, whatever else it holds:
    /// an input the model cannot embed. `None` turns it off.
    pub fn reject_embed_input(&self, marker: Option<&str>) {
        self.shared.lock().reject_embed = marker.map(str::to_owned);
    }

    /// Replaces the chat answer: `f` gets the request's `messages` (`{"role", "content"}`
    /// objects) and returns the text. `None` goes back to [`default_reply`].
    pub fn set_reply(&self, f: Option<ReplyFn>) {
        self.shared.lock().reply = f;
    }

    /// Every `/api/…` request received so far (paths and JSON bodies), oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every `/api/embed` request answered with vectors so far, in the order they finished: start
    /// and end of its handling and its number of inputs. [`busy_time`] of them is how long the embedder was working.
    pub fn embed_calls(&self) -> Vec<EmbedCall> {
        self.shared.lock().embed_calls.clone()
    }

    /// Forgets the recorded requests and embed calls.
    pub fn reset_requests(&self) {
        let mut state = self.shared.lock();
        state.requests.clear();
        state.embed_calls.clear();
    }

    /// Adds (or replaces) a model. A new chat model has architecture `llama` and context 4096;
    /// a new embedding model `bert` and context 512.
    pub fn add_model(&self, name: &str, kind: ModelKind) {
        self.shared.lock().add_model(Model::custom(name, kind));
    }

    /// Unloads every model, as if Ollama had been restarted.
    pub fn unload_all(&self) {
        self.shared.lock().loaded.clear();
    }

    /// Names (with tag) of the models loaded now.
    pub fn loaded_models(&self) -> Vec<String> {
        let mut state = self.shared.lock();
        state.expire(chrono::Utc::now());
        let mut names: Vec<String> = state.loaded.keys().cloned().collect();
        names.sort();
        names
    }
}

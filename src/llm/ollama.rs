//! [`OllamaClient`]: one `reqwest` client (connect timeout from the config) shared by clones.
//!
//! Whole replies must arrive within `ollama.request_timeout`. Streams must start within it and
//! then deliver each next line within it; a stream that ends without a `done: true` line is
//! [`OllamaError::StreamCut`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{self, AnswerLine, ChatBody, EmbedBody, GenerateBody, Options};
use super::{
    ChatChunk, ChatRequest, ChatResponse, GenerateRequest, GenerateResponse, LocalModel, ModelInfo, OllamaError,
    RunningModel, Warmed,
};
use crate::config::OllamaConfig;

/// Talks to one Ollama server. Cheap to clone.
#[derive(Clone)]
pub struct OllamaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Base URL without a trailing slash, as configured.
    base: String,
    /// Base URL without credentials, for messages.
    shown: String,
    /// `keep_alive` as Ollama parses it: a number of seconds, or a Go duration string.
    keep_alive: Value,
    batch_size: usize,
    parallelism: usize,
    timeout: Duration,
}

/// `"-1"` and `"300"` go as JSON numbers (Go cannot parse them as durations); `"30m"` as a string.
fn keep_alive_value(configured: &str) -> Value {
    let s = configured.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Value::from(n);
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Value::from(f),
        _ => Value::from(s),
    }
}

impl OllamaClient {
    /// Builds the client (no network traffic).
    pub fn new(cfg: &OllamaConfig) -> Result<OllamaClient, OllamaError> {
        crate::install_crypto_provider();
        let url = reqwest::Url::parse(cfg.url.trim())
            .map_err(|e| OllamaError::Config(format!("ollama.url is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OllamaError::Config(format!("ollama.url must be http or https, not {}", url.scheme())));
        }
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("footnote/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OllamaError::Config(format!("cannot build the HTTP client ({e})")))?;
        Ok(OllamaClient {
            inner: Arc::new(Inner {
                http,
                base: url.as_str().trim_end_matches('/').to_owned(),
                shown: shown.as_str().trim_end_matches('/').to_owned(),
                keep_alive: keep_alive_value(&cfg.keep_alive),
                batch_size: cfg.embed_batch_size.max(1),
                parallelism: cfg.embed_parallelism.max(1),
                timeout: cfg.request_timeout,
            }),
        })
    }

    /// The server's base URL, without credentials (safe to show).
    pub fn base_url(&self) -> &str {
        &self.inner.shown
    }

    /// Embeds texts in batches of `embed_batch_size` with up to `embed_parallelism` requests in
    /// flight; output order = input order; checks the count and that all vectors have one
    /// dimension.
    pub async fn embed(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, OllamaError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        // Owned batches and futures: borrowing closures here trip rustc's higher-ranked
        // lifetime inference once the future must be `Send` (tokio::spawn).
        let requests: Vec<_> = inputs
            .chunks(self.inner.batch_size)
            .map(|batch| {
                let (client, model, batch) = (self.clone(), model.to_owned(), batch.to_vec());
                async move { client.embed_batch(&model, &batch).await }
            })
            .collect();
        let batches: Vec<Vec<Vec<f32>>> =
            futures::stream::iter(requests).buffered(self.inner.parallelism).try_collect().await?;
        let vectors: Vec<Vec<f32>> = batches.into_iter().flatten().collect();
        let dims = vectors.first().map_or(0, Vec::len);
        if dims == 0 {
            return Err(OllamaError::BadResponse(format!("{model} returned empty vectors")));
        }
        if let Some(odd) = vectors.iter().find(|v| v.len() != dims) {
            return Err(OllamaError::BadResponse(format!(
                "{model} returned vectors of {dims} and of {} dimensions",
                odd.len()
            )));
        }
        Ok(vectors)
    }

    async fn embed_batch(&self, model: &str, batch: &[String]) -> Result<Vec<Vec<f32>>, OllamaError> {
        let body = EmbedBody { model, input: batch, keep_alive: &self.inner.keep_alive };
        let reply: wire::EmbedReply = self.post("/api/embed", &body, Some(model)).await?;
        if reply.embeddings.len() != batch.len() {
            return Err(OllamaError::BadResponse(format!(
                "asked {model} for {} embeddings, got {}",
                batch.len(),
                reply.embeddings.len()
            )));
        }
        Ok(reply.embeddings)
    }

    /// A whole chat answer (`stream: false`).
    pub async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, OllamaError> {
        let body = chat_body(&req, false, &self.inner.keep_alive);
        let mut line: AnswerLine = self.post("/api/chat", &body, Some(&req.model)).await?;
        check_line(&mut line, 200, &req.model)?;
        Ok(ChatResponse { stats: line.stats(), content: line.text() })
    }

    /// A chat answer as it is written: chunks in order, the last with `done: true` and stats.
    /// The stream yields `Err(StreamCut)` if it ends without a done line, `Err(Timeout)` if a
    /// line takes longer than `request_timeout`, and the mapped error for an `{"error"}` line;
    /// it ends after the first error.
    pub async fn chat_stream(
        &self,
        req: ChatRequest,
    ) -> Result<BoxStream<'static, Result<ChatChunk, OllamaError>>, OllamaError> {
        let body = chat_body(&req, true, &self.inner.keep_alive);
        let send = self.inner.http.post(self.url("/api/chat")).json(&body).send();
        let resp = match tokio::time::timeout(self.inner.timeout, send).await {
            Err(_) => {
                return Err(OllamaError::Timeout { after: self.inner.timeout });
            }
            Ok(sent) => sent.map_err(|e| self.transport_error(e))?,
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let text = tokio::time::timeout(self.inner.timeout, resp.text()).await;
            let text = text.ok().and_then(Result::ok).unwrap_or_default();
            return Err(OllamaError::from_reply(status, OllamaError::reply_message(&text), Some(&req.model)));
        }
        let reader = LineReader {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            eof: false,
            idle: self.inner.timeout,
            status,
            model: req.model,
        };
        let chunks = futures::stream::unfold(Some(reader), |state| async move {
            let mut reader = state?;
            match reader.next_chunk().await {
                Ok(chunk) if chunk.done => Some((Ok(chunk), None)),
                Ok(chunk) => Some((Ok(chunk), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(chunks.boxed())
    }

    /// A whole generate answer (`stream: false`).
    pub async fn generate(&self, req: GenerateRequest) -> Result<GenerateResponse, OllamaError> {
        let body = GenerateBody {
            model: &req.model,
            prompt: &req.prompt,
            system: req.system.as_deref(),
            stream: false,
            keep_alive: &self.inner.keep_alive,
            options: Options { num_ctx: req.num_ctx, ..Options::default() },
        };
        let mut line: AnswerLine = self.post("/api/generate", &body, Some(&req.model)).await?;
        check_line(&mut line, 200, &req.model)?;
        Ok(GenerateResponse { stats: line.stats(), response: line.text() })
    }

    /// The models loaded now.
    pub async fn ps(&self) -> Result<Vec<RunningModel>, OllamaError> {
        let reply: wire::PsReply = self.get("/api/ps").await?;
        Ok(reply
            .models
            .into_iter()
            .map(|m| RunningModel {
                expires_at: m.expires_at.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()),
                model: if m.model.is_empty() { m.name.clone() } else { m.model },
                name: m.name,
                size_vram: m.size_vram,
            })
            .collect())
    }

    /// The models pulled into Ollama.
    pub async fn tags(&self) -> Result<Vec<LocalModel>, OllamaError> {
        let reply: wire::TagsReply = self.get("/api/tags").await?;
        Ok(reply
            .models
            .into_iter()
            .map(|m| LocalModel {
                model: if m.model.is_empty() { m.name.clone() } else { m.model },
                name: m.name,
                size: m.size,
            })
            .collect())
    }

    /// A model's architecture, vector length, context length and capabilities.
    pub async fn show(&self, model: &str) -> Result<ModelInfo, OllamaError> {
        let reply: wire::ShowReply = self.post("/api/show", &wire::ShowBody { model }, Some(model)).await?;
        let info = &reply.model_info;
        let architecture = info.get("general.architecture").and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| {
            let arch = architecture.as_deref()?;
            let n = info.get(&format!("{arch}.{key}"))?.as_u64()?;
            usize::try_from(n).ok()
        };
        Ok(ModelInfo {
            embedding_length: number("embedding_length"),
            context_length: number("context_length"),
            architecture,
            capabilities: reply.capabilities,
        })
    }

    /// Loads a chat model (`/api/chat` with no messages) and keeps it for `keep_alive`.
    pub async fn warm_chat(&self, model: &str) -> Result<Warmed, OllamaError> {
        let started = Instant::now();
        let body = ChatBody {
            model,
            messages: &[],
            stream: false,
            keep_alive: &self.inner.keep_alive,
            options: Options::default(),
        };
        let mut line: AnswerLine = self.post("/api/chat", &body, Some(model)).await?;
        check_line(&mut line, 200, model)?;
        Ok(warmed(started.elapsed(), line.load_duration))
    }

    /// Loads an embedding model (`/api/embed` with no input: Ollama loads the model before it
    /// looks at the input).
    pub async fn warm_embed(&self, model: &str) -> Result<Warmed, OllamaError> {
        let started = Instant::now();
        let body = EmbedBody { model, input: &[], keep_alive: &self.inner.keep_alive };
        let reply: wire::EmbedReply = self.post("/api/embed", &body, Some(model)).await?;
        Ok(warmed(started.elapsed(), reply.load_duration))
    }

    /// Whether `GET /` answers with success.
    pub async fn is_reachable(&self) -> bool {
        let wait = self.inner.timeout.min(Duration::from_secs(10));
        match self.inner.http.get(self.url("/")).timeout(wait).send().await {
            Ok(resp) => resp.status().is_success(),
            Err(_) => false,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        model: Option<&str>,
    ) -> Result<T, OllamaError> {
        let request = self.inner.http.post(self.url(path)).json(body);
        self.call(path, request, model).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, OllamaError> {
        self.call(path, self.inner.http.get(self.url(path)), None).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
        model: Option<&str>,
    ) -> Result<T, OllamaError> {
        let resp = request.timeout(self.inner.timeout).send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(OllamaError::from_reply(status.as_u16(), OllamaError::reply_message(&text), model));
        }
        serde_json::from_str(&text).map_err(|e| OllamaError::BadResponse(format!("{path}: {e}")))
    }

    /// Maps a transport failure (never with the URL's credentials or the request body).
    fn transport_error(&self, e: reqwest::Error) -> OllamaError {
        if e.is_connect() {
            OllamaError::Unreachable { url: self.inner.shown.clone() }
        } else if e.is_timeout() {
            OllamaError::Timeout { after: self.inner.timeout }
        } else if e.is_body() || e.is_decode() || e.is_request() {
            // The connection broke after the request went out.
            OllamaError::StreamCut
        } else {
            let e = e.without_url();
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            OllamaError::BadResponse(message)
        }
    }
}

fn chat_body<'a>(req: &'a ChatRequest, stream: bool, keep_alive: &'a Value) -> ChatBody<'a> {
    ChatBody {
        model: &req.model,
        messages: &req.messages,
        stream,
        keep_alive,
        options: Options { num_ctx: req.num_ctx, temperature: req.temperature, num_predict: req.num_predict },
    }
}

fn warmed(took: Duration, load_ns: u64) -> Warmed {
    let load = if load_ns > 0 { Duration::from_nanos(load_ns) } else { took };
    Warmed { took, load }
}

/// Turns an `{"error": …}` line into the error.
fn check_line(line: &mut AnswerLine, status: u16, model: &str) -> Result<(), OllamaError> {
    match line.error.take() {
        Some(message) => Err(OllamaError::from_reply(status, message, Some(model))),
        None => Ok(()),
    }
}

/// Reads an NDJSON body line by line, each within the idle timeout.
struct LineReader<B> {
    body: BoxStream<'static, reqwest::Result<B>>,
    buf: Vec<u8>,
    eof: bool,
    idle: Duration,
    status: u16,
    model: String,
}

impl<B: AsRef<[u8]>> LineReader<B> {
    /// The next chunk; `StreamCut` when the body ends (or breaks) before a done line.
    async fn next_chunk(&mut self) -> Result<ChatChunk, OllamaError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(&line);
            }
            if self.eof {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Err(OllamaError::StreamCut);
                }
                // A last line without its newline: fine if whole, a cut if not.
                let line = std::mem::take(&mut self.buf);
                return self.parse(&line).map_err(|_| OllamaError::StreamCut);
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => return Err(OllamaError::Timeout { after: self.idle }),
                Ok(None) => self.eof = true,
                Ok(Some(Ok(bytes))) => self.buf.extend_from_slice(bytes.as_ref()),
                Ok(Some(Err(e))) if e.is_timeout() => {
                    return Err(OllamaError::Timeout { after: self.idle });
                }
                Ok(Some(Err(_))) => return Err(OllamaError::StreamCut),
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<ChatChunk, OllamaError> {
        let mut parsed: AnswerLine = serde_json::from_slice(line)
            .map_err(|e| OllamaError::BadResponse(format!("a streamed line is not an answer line: {e}")))?;
        check_line(&mut parsed, self.status, &self.model)?;
        let stats = parsed.done.then(|| parsed.stats());
        Ok(ChatChunk { content: parsed.text(), done: parsed.done, stats })
    }
}

//! The HTTP endpoints, shaped like Ollama's `docs/api.md`: `/api/chat`, `/api/generate`,
//! `/api/embed`, `/api/show`, `/api/tags`, `/api/ps`, `/api/version` and `GET /`.
//!
//! Bad bodies get `400 {"error": …}` as in Ollama; unknown models get
//! `404 {"error": "model \"NAME\" not found, try pulling it first"}`. Chat and generate live in
//! [`crate::answer`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::answer::{chat, generate};
use crate::duration::{self, KeepAlive};
use crate::embed::{embed_text, token_count, truncate_tokens};
use crate::state::{EmbedCall, Model, ModelKind, Recorded, Shared};

type Shr = AxumState<Arc<Shared>>;

/// `modified_at` of every model.
const MODIFIED_AT: &str = "2025-06-01T09:30:00.123456789Z";

/// The router serving every endpoint.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(root).head(root))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/show", post(show))
        .route("/api/embed", post(embed))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .with_state(shared)
}

/// An error reply: `status` with `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    message: String,
}

/// Shorthand for an [`ApiError`].
pub fn error(status: u16, message: impl Into<String>) -> ApiError {
    ApiError { status, message: message.into() }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// What handlers return.
pub type Reply = Result<Response, ApiError>;

fn not_found(model: &str) -> ApiError {
    error(404, format!("model \"{model}\" not found, try pulling it first"))
}

/// Records the request, then answers with the failure armed by `fail_next`, if any.
pub fn intake(shared: &Shared, path: &str, body: &Bytes) -> Result<(), ApiError> {
    let parsed = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let mut state = shared.lock();
    state.requests.push(Recorded { path: path.to_owned(), body: parsed });
    match state.fail_next.take() {
        Some((status, message)) => Err(error(status, message)),
        None => Ok(()),
    }
}

/// Parses a JSON body the way Ollama reports problems with it.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(error(400, "missing request body"));
    }
    serde_json::from_slice(body).map_err(|e| error(400, e.to_string()))
}

/// Finds the model, or answers 400 (no name) / 404 (unknown).
pub fn find_model(shared: &Shared, name: &str) -> Result<Model, ApiError> {
    if name.trim().is_empty() {
        return Err(error(400, "model is required"));
    }
    shared.lock().model(name).ok_or_else(|| not_found(name))
}

pub fn keep_alive(value: Option<&Value>) -> Result<KeepAlive, ApiError> {
    duration::keep_alive(value).map_err(|e| error(400, e))
}

/// Loads the model if it is not loaded (taking the load delay); returns the load time.
pub async fn ensure_loaded(shared: &Shared, model: &Model) -> Duration {
    let (loaded, delay) = {
        let mut state = shared.lock();
        (state.is_loaded(&model.name), state.load_delay)
    };
    if loaded {
        return Duration::ZERO;
    }
    let started = Instant::now();
    tokio::time::sleep(delay).await;
    // Mark it loaded now so that a request arriving meanwhile does not load it again.
    shared.lock().touch(&model.name, duration::DEFAULT_KEEP_ALIVE);
    if delay.is_zero() { Duration::ZERO } else { started.elapsed() }
}

pub fn options(options: &Option<Map<String, Value>>, key: &str) -> Option<i64> {
    options.as_ref()?.get(key)?.as_i64()
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn version(AxumState(shared): Shr) -> Reply {
    intake(&shared, "/api/version", &Bytes::new())?;
    Ok(axum::Json(json!({"version": "0.12.0"})).into_response())
}

async fn tags(AxumState(shared): Shr) -> Reply {
    intake(&shared, "/api/tags", &Bytes::new())?;
    let models: Vec<Value> = shared
        .lock()
        .models
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "model": m.name, "modified_at": MODIFIED_AT,
                "size": m.size, "digest": m.digest(), "details": m.details(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "models": models })).into_response())
}

async fn ps(AxumState(shared): Shr) -> Reply {
    intake(&shared, "/api/ps", &Bytes::new())?;
    let mut state = shared.lock();
    let now = Utc::now();
    state.expire(now);
    // "Forever" shows as far in the future, as Ollama's max duration does.
    let forever = now + chrono::Duration::days(106_751);
    let mut loaded: Vec<_> = state.loaded.iter().map(|(n, until)| (n.clone(), *until)).collect();
    loaded.sort();
    let models: Vec<Value> = loaded
        .into_iter()
        .filter_map(|(name, until)| {
            let m = state.model(&name)?;
            let expires = until.unwrap_or(forever).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            Some(json!({
                "name": m.name, "model": m.name, "size": m.size, "digest": m.digest(),
                "details": m.details(), "expires_at": expires, "size_vram": m.size,
            }))
        })
        .collect();
    Ok(axum::Json(json!({ "models": models })).into_response())
}

#[derive(Deserialize)]
struct ShowBody {
    #[serde(default)]
    model: String,
    /// The old spelling of `model`.
    #[serde(default)]
    name: String,
}

async fn show(AxumState(shared): Shr, body: Bytes) -> Reply {
    intake(&shared, "/api/show", &body)?;
    let req: ShowBody = parse(&body)?;
    let name = if req.model.is_empty() { req.name } else { req.model };
    let m = find_model(&shared, &name)?;
    let arch = &m.architecture;
    let mut info = Map::new();
    info.insert("general.architecture".into(), json!(arch));
    info.insert("general.parameter_count".into(), json!(m.size / 2));
    info.insert(format!("{arch}.context_length"), json!(m.context_length));
    info.insert(format!("{arch}.embedding_length"), json!(m.embedding_length));
    info.insert(format!("{arch}.block_count"), json!(12));
    let (template, parameters) = match m.kind {
        ModelKind::Chat => ("{{ .System }}\n{{ .Prompt }}", "stop \"<|im_end|>\"".to_owned()),
        ModelKind::Embed { .. } => ("{{ .Prompt }}", format!("num_ctx {}", m.context_length)),
    };
    Ok(axum::Json(json!({
        "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", m.name),
        "parameters": parameters,
        "template": template,
        "details": m.details(),
        "model_info": info,
        "capabilities": m.capabilities(),
        "modified_at": MODIFIED_AT,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct EmbedBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Value,
    truncate: Option<bool>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

async fn embed(AxumState(shared): Shr, body: Bytes) -> Reply {
    let started = Instant::now();
    let (req, inputs, model, keep) = {
        intake(&shared, "/api/embed", &body)?;
        let req: EmbedBody = parse(&body)?;
        let inputs = match &req.input {
            Value::Null => vec![],
            Value::String(s) if s.is_empty() => vec![],
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| error(400, "invalid input type")))
                .collect::<Result<_, _>>()?,
            _ => return Err(error(400, "invalid input type")),
        };
        let model = find_model(&shared, &req.model)?;
        let keep = keep_alive(req.keep_alive.as_ref())?;
        (req, inputs, model, keep)
    };
    let load = ensure_loaded(&shared, &model).await;
    let (delay, reject) = {
        let mut state = shared.lock();
        state.touch(&model.name, keep);
        (state.embed_delay, state.reject_embed.clone())
    };
    if let Some(marker) = reject.filter(|m| inputs.iter().any(|text| text.contains(m.as_str()))) {
        // What Ollama answers when the model produces no usable vector for an input.
        return Err(error(500, format!("failed to generate embedding: input rejected ({marker})")));
    }
    if inputs.is_empty() {
        // Ollama loads the model, then answers an empty input with no vectors and no stats.
        return Ok(axum::Json(json!({"model": req.model, "embeddings": []})).into_response());
    }
    let context = match options(&req.options, "num_ctx") {
        Some(n) if n > 0 => model.context_length.min(n as usize),
        _ => model.context_length,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut tokens = 0;
    let mut embeddings = Vec::with_capacity(inputs.len());
    for text in &inputs {
        let count = token_count(text);
        let vector = if count > context {
            if req.truncate == Some(false) {
                return Err(error(400, "the input length exceeds the context length"));
            }
            tokens += context;
            embed_text(&truncate_tokens(text, context), model.dims())
        } else {
            tokens += count;
            embed_text(text, model.dims())
        };
        embeddings.push(vector);
    }
    let mut reply = json!({
        "model": req.model,
        "embeddings": embeddings,
        "total_duration": u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1),
        "prompt_eval_count": tokens,
    });
    if !load.is_zero() {
        reply["load_duration"] = json!(u64::try_from(load.as_nanos()).unwrap_or(u64::MAX));
    }
    let response = axum::Json(reply).into_response();
    let call = EmbedCall { started, finished: Instant::now(), inputs: inputs.len() };
    shared.lock().embed_calls.push(call);
    Ok(response)
}

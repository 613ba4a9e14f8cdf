//! `/api/chat` and `/api/generate`: the load reply for an empty conversation, otherwise an
//! answer (see [`crate::reply`]) streamed as NDJSON or sent whole, with the failure modes armed
//! on the double.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::duration::KeepAlive;
use crate::embed::token_count;
use crate::reply;
use crate::routes::{Reply, ensure_loaded, error, find_model, intake, keep_alive, options, parse};
use crate::state::{ModelKind, Shared};
use crate::stream::{Answer, Endpoint, now_rfc3339};

/// Words per streamed chunk.
const WORDS_PER_CHUNK: usize = 3;

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct ChatBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<Message>,
    stream: Option<bool>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

#[derive(Deserialize)]
struct GenerateBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    stream: Option<bool>,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

/// What chat and generate share once the body is read.
struct Turn {
    endpoint: Endpoint,
    model_name: String,
    messages: Vec<Value>,
    stream: bool,
    options: Option<Map<String, Value>>,
    keep_alive: Option<Value>,
}

pub async fn chat(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Reply {
    intake(&shared, "/api/chat", &body)?;
    let req: ChatBody = parse(&body)?;
    let messages = req.messages.iter().map(|m| json!({"role": m.role, "content": m.content}));
    let turn = Turn {
        endpoint: Endpoint::Chat,
        model_name: req.model,
        messages: messages.collect(),
        stream: req.stream.unwrap_or(true),
        options: req.options,
        keep_alive: req.keep_alive,
    };
    answer(&shared, turn).await
}

pub async fn generate(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Reply {
    intake(&shared, "/api/generate", &body)?;
    let req: GenerateBody = parse(&body)?;
    let mut messages = Vec::new();
    if let Some(system) = req.system.filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    if !req.prompt.is_empty() {
        messages.push(json!({"role": "user", "content": req.prompt}));
    }
    let turn = Turn {
        endpoint: Endpoint::Generate,
        model_name: req.model,
        messages,
        stream: req.stream.unwrap_or(true),
        options: req.options,
        keep_alive: req.keep_alive,
    };
    answer(&shared, turn).await
}

/// Writes a chat or generate answer (or the load reply for an empty conversation).
async fn answer(shared: &Shared, turn: Turn) -> Reply {
    let started = Instant::now();
    let model = find_model(shared, &turn.model_name)?;
    if let ModelKind::Embed { .. } = model.kind {
        let verb = if turn.endpoint == Endpoint::Chat { "chat" } else { "generate" };
        return Err(error(400, format!("\"{}\" does not support {verb}", turn.model_name)));
    }
    let keep = keep_alive(turn.keep_alive.as_ref())?;
    let load = ensure_loaded(shared, &model).await;
    shared.lock().touch(&model.name, keep);

    if !turn.messages.iter().any(|m| m["role"] != "system") {
        // Loading only: one object whatever `stream` says, and no stats (as Ollama does).
        let reason = if keep == KeepAlive::For(Duration::ZERO) { "unload" } else { "load" };
        let mut line = json!({
            "model": turn.model_name, "created_at": now_rfc3339(), "done": true, "done_reason": reason,
        });
        match turn.endpoint {
            Endpoint::Chat => line["message"] = json!({"role": "assistant", "content": ""}),
            Endpoint::Generate => line["response"] = json!(""),
        }
        return Ok(axum::Json(line).into_response());
    }

    let (reply_fn, token_delay, cut_after, error_after) = {
        let mut state = shared.lock();
        let error_after = if turn.stream { state.fail_stream_after.take() } else { None };
        (state.reply.clone(), state.token_delay, state.cut_after, error_after)
    };
    let mut text = match reply_fn {
        Some(f) => f(&turn.messages),
        None => reply::default_reply(&turn.messages),
    };
    let mut done_reason = "stop";
    if let Some(limit) = options(&turn.options, "num_predict").filter(|n| *n >= 0) {
        // `num_predict` counts tokens; the double's tokens are words.
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if text.split(' ').count() > limit {
            text = text.split(' ').take(limit).collect::<Vec<_>>().join(" ");
            done_reason = "length";
        }
    }
    let prompt_eval_count = turn.messages.iter().map(|m| token_count(m["content"].as_str().unwrap_or(""))).sum();
    let answer = Answer {
        endpoint: turn.endpoint,
        model: turn.model_name,
        chunks: reply::chunks(&text, WORDS_PER_CHUNK),
        done_reason,
        started,
        load,
        prompt_eval_count,
        token_delay,
        cut_after,
        error_after,
    };
    if turn.stream {
        return Ok(ndjson_response(Body::from_stream(answer.into_stream())));
    }
    if let Some(n) = answer.cut_after {
        // Not streaming: wait as if writing n chunks, then drop the connection unanswered.
        let chunks = u32::try_from(n.min(answer.chunks.len())).unwrap_or(u32::MAX);
        let delay = answer.token_delay.saturating_mul(chunks);
        let cut = futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            Err::<Bytes, _>(std::io::Error::other("answer cut on purpose"))
        });
        return Ok(ndjson_response(Body::from_stream(cut)));
    }
    Ok(axum::Json(answer.whole().await).into_response())
}

fn ndjson_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

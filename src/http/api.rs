//! The JSON API handlers, each documented for the OpenAPI document with `#[utoipa::path]`.
//! Errors are answered as [`ErrorBody`] (see [`super::errors`]).

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use footnote_adapter::{
    Answer, AskEvent, DocumentInfo, ForgetReceipt, Gateway, IngestReceipt, Question, Scope, Status, Turn, WarmupReport,
};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::AppState;
use super::errors::{ApiError, ErrorBody, bad_request, kind};
use super::upload::{UploadForm, read_upload};
use crate::mcp::{Grant, Refused};
use crate::rag::MAX_QUESTION_CHARS;
use crate::rag::gateway::{STATUS_MODELS_MISSING, STATUS_UNREACHABLE};
use crate::rag::passages::{MAX_SEARCH_K, SearchHit};
use crate::serve::lease::AdapterHolding;

/// A question.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AskRequest {
    /// The question.
    pub question: String,
    /// Earlier turns of the conversation, oldest first.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// Collection to search (default `default`).
    #[serde(default)]
    pub collection: Option<String>,
}

/// Which collection a call is about.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CollectionQuery {
    /// Collection name (default `default`).
    pub collection: Option<String>,
}

/// The scope of a call that reads `collection` (default: the token's default collection), if
/// the caller's token may read it.
fn read_scope(grant: &Grant, collection: Option<&str>) -> Result<Scope, Refused> {
    Ok(Scope::local("http", &grant.read(collection)?))
}

/// The scope of a call that adds to or forgets from `collection`, if the token may.
fn write_scope(grant: &Grant, collection: Option<&str>) -> Result<Scope, Refused> {
    Ok(Scope::local("http", &grant.write(collection)?))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store is open and the service takes new work (503 while shutting down).
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready", body = String),
    (status = 503, description = "Shutting down", body = String)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.core().rag().lifecycle().is_closing() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::OK, "ready")
    }
}

/// Prometheus metrics: ask latency (retrieval, first token, total), queue depth, ingest
/// counts, Ollama errors.
#[utoipa::path(get, path = "/metrics", tag = "probes", security(("bearer" = [])), responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.0.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "probes", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> Response {
    Json(super::openapi::ApiDoc::openapi()).into_response()
}

/// Asks a question and returns the checked answer with its numbered sources.
#[utoipa::path(post, path = "/api/ask", tag = "api", security(("bearer" = [])), request_body = AskRequest, responses(
    (status = 200, body = Answer),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn ask(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Json(req): Json<AskRequest>,
) -> Result<Json<Answer>, ApiError> {
    let scope = read_scope(&grant, req.collection.as_deref())?;
    let question = Question { text: req.question, history: req.history };
    let answer = state.core().ask(&scope, &state.actor(), question).await?;
    Ok(Json(answer))
}

/// One server-sent event of a streamed answer.
pub(super) fn sse_event(event: AskEvent) -> Event {
    match event {
        AskEvent::Queued { position } => {
            Event::default().event("queued").data(serde_json::json!({ "position": position }).to_string())
        }
        AskEvent::LoadingModel => Event::default().event("loading").data("{}"),
        AskEvent::Token(text) => Event::default().event("token").data(serde_json::json!({ "text": text }).to_string()),
        AskEvent::Done(answer) => {
            Event::default().event("done").data(serde_json::to_string(&answer).unwrap_or_default())
        }
        AskEvent::Failed(e) => {
            let body = ErrorBody { error: kind(&e), message: e.user_message() };
            Event::default().event("error").data(serde_json::to_string(&body).unwrap_or_default())
        }
    }
}

/// Asks a question and streams the answer as server-sent events: `queued` (`{"position"}`),
/// `loading`, `token` (`{"text"}`), then `done` (the [`Answer`]) or `error` (an [`ErrorBody`]).
#[utoipa::path(post, path = "/api/ask/stream", tag = "api", security(("bearer" = [])), request_body = AskRequest, responses(
    (status = 200, description = "Server-sent events: queued, loading, token, done, error", content_type = "text/event-stream", body = String),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn ask_stream(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Json(req): Json<AskRequest>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = read_scope(&grant, req.collection.as_deref())?;
    let question = Question { text: req.question, history: req.history };
    let events = state.core().ask_stream(&scope, &state.actor(), question).await;
    Ok(Sse::new(events.map(|e| Ok(sse_event(e)))).keep_alive(KeepAlive::default()))
}

/// A search: passages without an answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Collection to search (default: the token's default collection, else `default`).
    #[serde(default)]
    pub collection: Option<String>,
    /// How many passages (1 to 20, default 5).
    #[serde(default)]
    pub k: Option<usize>,
}

/// The passages a search found, best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// The collection searched.
    pub collection: String,
    /// Best first.
    pub passages: Vec<SearchHit>,
}

/// Searches a collection (keyword and meaning, combined) and returns the best passages with
/// title, locator, snippet and score; no model writes anything.
#[utoipa::path(post, path = "/api/search", tag = "api", security(("bearer" = [])), request_body = SearchRequest, responses(
    (status = 200, body = SearchResponse),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Json(req): Json<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let collection = grant.read(req.collection.as_deref())?;
    let query = req.query.trim();
    if query.is_empty() || query.chars().count() > MAX_QUESTION_CHARS {
        return Err(bad_request("bad_query", format!("The query must be 1 to {MAX_QUESTION_CHARS} characters long.")));
    }
    let k = req.k.unwrap_or(5);
    if !(1..=MAX_SEARCH_K).contains(&k) {
        return Err(bad_request("bad_k", format!("k must be between 1 and {MAX_SEARCH_K}.")));
    }
    let passages = state.core().search(&Scope::local("http", &collection), &state.actor(), query, k).await?;
    Ok(Json(SearchResponse { collection, passages }))
}

/// Adds a file (multipart field `file`) to a collection; a file of the same name replaces the
/// document it names. Past `ingest.max_file_size`: 413.
#[utoipa::path(post, path = "/api/documents", tag = "api", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"), responses(
    (status = 200, body = IngestReceipt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
    (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn ingest(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    mut multipart: Multipart,
) -> Result<Json<IngestReceipt>, ApiError> {
    let (collection, upload) = read_upload(&mut multipart).await?;
    let scope = write_scope(&grant, collection.as_deref())?;
    let receipt = state.core().ingest(&scope, &state.actor(), upload).await?;
    Ok(Json(receipt))
}

/// Lists the documents of a collection.
#[utoipa::path(get, path = "/api/documents", tag = "api", security(("bearer" = [])), params(CollectionQuery), responses(
    (status = 200, body = Vec<DocumentInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn documents(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Query(q): Query<CollectionQuery>,
) -> Result<Json<Vec<DocumentInfo>>, ApiError> {
    let scope = read_scope(&grant, q.collection.as_deref())?;
    Ok(Json(state.core().documents(&scope, &state.actor()).await?))
}

/// Forgets a document and all its chunks.
#[utoipa::path(delete, path = "/api/documents/{id}", tag = "api", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id"), CollectionQuery), responses(
    (status = 200, body = ForgetReceipt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
pub async fn forget(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Path(id): Path<String>,
    Query(q): Query<CollectionQuery>,
) -> Result<Json<ForgetReceipt>, ApiError> {
    let scope = write_scope(&grant, q.collection.as_deref())?;
    Ok(Json(state.core().forget(&scope, &state.actor(), &id).await?))
}

/// Loads both models into memory now.
#[utoipa::path(post, path = "/api/warmup", tag = "api", security(("bearer" = [])), responses(
    (status = 200, body = WarmupReport), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn warmup(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
) -> Result<Json<WarmupReport>, ApiError> {
    let scope = read_scope(&grant, None)?;
    Ok(Json(state.core().warmup(&scope, &state.actor()).await?))
}

/// The status with what only the service knows: which instance answered, and which instance
/// runs each chat adapter.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    #[serde(flatten)]
    pub status: Status,
    /// The instance that answered (host name and process id).
    pub instance: String,
    /// Every chat adapter this instance is configured with, and the instance running it.
    pub adapters: Vec<AdapterHolding>,
    /// Every plugin of `[[plugins]]`, and whether it is connected to this instance.
    #[serde(default)]
    pub plugins: Vec<crate::plugins::PluginStatus>,
}

/// Whether Ollama is reachable, which models are loaded, how much the collection holds, and
/// which instance runs which chat adapter.
#[utoipa::path(get, path = "/api/status", tag = "api", security(("bearer" = [])), params(CollectionQuery), responses(
    (status = 200, body = ServiceStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Extension(grant): Extension<Grant>,
    Query(q): Query<CollectionQuery>,
) -> Result<Json<ServiceStatus>, ApiError> {
    let scope = read_scope(&grant, q.collection.as_deref())?;
    let mut status = state.core().status(&scope, &state.actor()).await?;
    // The detail names the model server's address and raw errors: for the operator only.
    if !grant.is_operator() && status.problem.is_some() {
        status.problem =
            Some(if status.ollama_reachable { STATUS_MODELS_MISSING } else { STATUS_UNREACHABLE }.to_owned());
    }
    let board = state.board();
    let plugins = state.plugins().report();
    Ok(Json(ServiceStatus { status, instance: board.instance().to_owned(), adapters: board.report().await, plugins }))
}

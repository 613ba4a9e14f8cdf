//! The protocol's HTTP routes under `footnote_adapter::wire::PATH`: the event stream, the calls,
//! and the acknowledgements. Each request is authenticated by a plugin token, refused when a
//! browser sent it, read within a size limit, checked against the token's platform, and counted
//! against the plugin's requests in progress before the [`Core`](crate::rag::gateway::Core)
//! sees it.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, ORIGIN, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use footnote_adapter::wire::{
    Accepted, Ack, AskRequest, Call, Finished, ForgetRequest, GatewayFailure, IngestFailure, IngestRequest, PATH,
    Progress, Refusal, ServerFrame,
};
use footnote_adapter::{AskEvent, Gateway, GatewayError, IngestError, Scope};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

use super::{Plugin, Plugins, StreamGuard};

/// Largest body of a request other than an ingest (a question with its thread history).
const MAX_REQUEST: usize = 256 * 1024;
/// Longest request id, scope field or user id.
const MAX_NAME: usize = 256;
/// How often an idle stream gets a comment, so that a dead connection is noticed.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// The protocol's routes over `plugins`, to merge into the server's router (outside the API's
/// token check: they take plugin tokens only).
pub fn router(plugins: Arc<Plugins>) -> Router {
    Router::new()
        .route(&format!("{PATH}/events"), get(events))
        .route(&format!("{PATH}/ask"), post(ask))
        .route(&format!("{PATH}/ingest"), post(ingest))
        .route(&format!("{PATH}/warmup"), post(warmup))
        .route(&format!("{PATH}/status"), post(status))
        .route(&format!("{PATH}/documents"), post(documents))
        .route(&format!("{PATH}/forget"), post(forget))
        .route(&format!("{PATH}/ack"), post(ack))
        .with_state(plugins)
}

/// A request turned down, as it is answered.
pub(super) struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn refuse(status: StatusCode, error: &str, message: impl Into<String>) -> Refused {
    Refused(Box::new((status, axum::Json(Refusal { error: error.into(), message: message.into() })).into_response()))
}

/// The plugin whose token the request carries; browsers are refused whatever they carry.
fn authenticate(plugins: &Plugins, headers: &HeaderMap) -> Result<Arc<Plugin>, Refused> {
    if headers.contains_key(ORIGIN) || headers.contains_key("sec-fetch-site") {
        return Err(refuse(StatusCode::FORBIDDEN, "browser", "The plugin protocol is not for web pages."));
    }
    let token = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| plugins.by_token(t)) {
        Some(plugin) => Ok(plugin.clone()),
        None => {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send the plugin's token from [[plugins]]: `Authorization: Bearer TOKEN`.",
            );
            response.0.headers_mut().insert(WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
            Err(response)
        }
    }
}

/// Reads a JSON body of at most `limit` bytes.
async fn read<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, Refused> {
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("The request is over its limit of {limit} bytes."))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_request", format!("The request is not valid: {e}.")))
}

/// Refuses a scope of another platform, or one with an empty or overlong room.
fn check_scope(plugin: &Plugin, scope: &Scope, user_id: &str) -> Result<(), Refused> {
    if !plugin.owns(scope) {
        tracing::warn!(plugin = %plugin.name, claimed = %scope.platform, "Refused a plugin acting for another platform.");
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "wrong_platform",
            format!("This plugin's token is for platform “{}”; the scope names “{}”.", plugin.platform, scope.platform),
        ));
    }
    let fields = [Some(scope.room.as_str()), scope.space.as_deref(), scope.thread.as_deref(), Some(user_id)];
    if scope.room.trim().is_empty() || user_id.trim().is_empty() || fields.iter().flatten().any(|f| f.len() > MAX_NAME)
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("scope.room and actor.user_id must be 1 to {MAX_NAME} bytes long, as must space and thread."),
        ));
    }
    Ok(())
}

/// One of the plugin's requests in progress, or a refusal when it has too many.
fn permit(plugin: &Plugin) -> Result<OwnedSemaphorePermit, Refused> {
    plugin.in_flight.clone().try_acquire_owned().map_err(|_| {
        refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("This plugin has {} requests in progress already; wait for one to finish.", super::MAX_IN_FLIGHT),
        )
    })
}

fn frame_event(frame: &ServerFrame) -> Event {
    Event::default().data(serde_json::to_string(frame).expect("frames serialize"))
}

/// `GET …/events`: the plugin's connection.
#[utoipa::path(get, path = "/plugin/v1/events", tag = "plugin", security(("plugin" = [])), responses(
    (status = 200, description = "Server-sent events, each `data` one ServerFrame", content_type = "text/event-stream", body = ServerFrame),
    (status = 401, body = Refusal), (status = 403, body = Refusal)))]
pub(super) async fn events(State(plugins): State<Arc<Plugins>>, headers: HeaderMap) -> Result<Response, Refused> {
    let plugin = authenticate(&plugins, &headers)?;
    let (number, rx, pending) = plugin.connect();
    let guard = StreamGuard { plugin: plugin.clone(), number };
    let first = std::iter::once(plugin.hello(plugins.max_upload)).chain(pending.into_iter().map(ServerFrame::Finished));
    let frames = futures::stream::iter(first).chain(tokio_stream_of(rx)).map(move |frame| {
        let _alive = &guard;
        Ok::<_, Infallible>(frame_event(&frame))
    });
    Ok(Sse::new(frames).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<ServerFrame>) -> impl futures::Stream<Item = ServerFrame> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `POST …/ask`: takes the question and answers it on the stream.
#[utoipa::path(post, path = "/plugin/v1/ask", tag = "plugin", security(("plugin" = [])), request_body = AskRequest, responses(
    (status = 202, body = Accepted), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn ask(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let plugin = authenticate(&plugins, &headers)?;
    let request: AskRequest = read(body, MAX_REQUEST).await?;
    check_scope(&plugin, &request.scope, &request.actor.user_id)?;
    if request.id.is_empty() || request.id.len() > 100 {
        return Err(refuse(StatusCode::BAD_REQUEST, "bad_request", "The id must be 1 to 100 bytes long."));
    }
    let accepted = (StatusCode::ACCEPTED, axum::Json(Accepted { id: request.id.clone() })).into_response();
    if !plugin.start_asking(&request.id) {
        return Ok(accepted); // sent again: the answer under way (or waiting) is the one for it
    }
    let permit = match permit(&plugin) {
        Ok(permit) => permit,
        Err(refusal) => {
            plugin.state().asking.remove(&request.id);
            return Err(refusal);
        }
    };
    let core = plugins.core.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let AskRequest { id, scope, actor, question } = request;
        let mut events = core.ask_stream(&scope, &actor, question).await;
        let mut last = None;
        while let Some(event) = events.next().await {
            match event {
                AskEvent::Done(_) | AskEvent::Failed(_) => {
                    last = Some(event);
                    break;
                }
                event => plugin.progress(ServerFrame::Progress(Progress { id: id.clone(), event })),
            }
        }
        let event = last.unwrap_or(AskEvent::Failed(footnote_adapter::AskError::Internal));
        plugin.finish(Finished::new(id, scope, actor, event));
    });
    Ok(accepted)
}

fn ingest_status(error: &IngestError) -> StatusCode {
    match error {
        IngestError::Denied => StatusCode::FORBIDDEN,
        IngestError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        IngestError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        IngestError::Empty
        | IngestError::Unsupported(_)
        | IngestError::Unreadable(_)
        | IngestError::NameTaken { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn gateway_status(error: &GatewayError) -> StatusCode {
    match error {
        GatewayError::Denied => StatusCode::FORBIDDEN,
        GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
        GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        GatewayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn reply<T: Serialize>(result: Result<T, GatewayError>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => (gateway_status(&error), axum::Json(GatewayFailure::from(error))).into_response(),
    }
}

/// `POST …/ingest`: stores a file (its bytes in base64) and returns the receipt.
#[utoipa::path(post, path = "/plugin/v1/ingest", tag = "plugin", security(("plugin" = [])), request_body = IngestRequest, responses(
    (status = 200, body = footnote_adapter::IngestReceipt), (status = 422, body = IngestFailure), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn ingest(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let plugin = authenticate(&plugins, &headers)?;
    // Base64 takes 4 bytes for 3, plus the rest of the request.
    let limit = usize::try_from(plugins.max_upload / 3 * 4 + 4).unwrap_or(usize::MAX).saturating_add(MAX_REQUEST);
    let request: IngestRequest = read(body, limit).await?;
    check_scope(&plugin, &request.scope, &request.actor.user_id)?;
    let _permit = permit(&plugin)?;
    let IngestRequest { scope, actor, upload } = request;
    if upload.bytes.len() as u64 > plugins.max_upload {
        let error = IngestError::TooLarge(format!("the limit is {}", bytesize::ByteSize::b(plugins.max_upload)));
        return Ok((ingest_status(&error), axum::Json(IngestFailure::from(error))).into_response());
    }
    Ok(match plugins.core.ingest(&scope, &actor, upload).await {
        Ok(receipt) => axum::Json(receipt).into_response(),
        Err(error) => (ingest_status(&error), axum::Json(IngestFailure::from(error))).into_response(),
    })
}

/// Reads a [`Call`] for `plugin`: authenticated, checked and counted.
async fn call(plugins: &Plugins, headers: &HeaderMap, body: Body) -> Result<(Call, OwnedSemaphorePermit), Refused> {
    let plugin = authenticate(plugins, headers)?;
    let call: Call = read(body, MAX_REQUEST).await?;
    check_scope(&plugin, &call.scope, &call.actor.user_id)?;
    Ok((call, permit(&plugin)?))
}

/// `POST …/warmup`.
#[utoipa::path(post, path = "/plugin/v1/warmup", tag = "plugin", security(("plugin" = [])), request_body = Call, responses(
    (status = 200, body = footnote_adapter::WarmupReport), (status = 503, body = GatewayFailure), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn warmup(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (c, _permit) = call(&plugins, &headers, body).await?;
    Ok(reply(plugins.core.warmup(&c.scope, &c.actor).await))
}

/// `POST …/status`.
#[utoipa::path(post, path = "/plugin/v1/status", tag = "plugin", security(("plugin" = [])), request_body = Call, responses(
    (status = 200, body = footnote_adapter::Status), (status = 503, body = GatewayFailure), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn status(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (c, _permit) = call(&plugins, &headers, body).await?;
    Ok(reply(plugins.core.status(&c.scope, &c.actor).await))
}

/// `POST …/documents`.
#[utoipa::path(post, path = "/plugin/v1/documents", tag = "plugin", security(("plugin" = [])), request_body = Call, responses(
    (status = 200, body = Vec<footnote_adapter::DocumentInfo>), (status = 503, body = GatewayFailure), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn documents(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let (c, _permit) = call(&plugins, &headers, body).await?;
    Ok(reply(plugins.core.documents(&c.scope, &c.actor).await))
}

/// `POST …/forget`.
#[utoipa::path(post, path = "/plugin/v1/forget", tag = "plugin", security(("plugin" = [])), request_body = ForgetRequest, responses(
    (status = 200, body = footnote_adapter::ForgetReceipt), (status = 404, body = GatewayFailure), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn forget(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let plugin = authenticate(&plugins, &headers)?;
    let request: ForgetRequest = read(body, MAX_REQUEST).await?;
    check_scope(&plugin, &request.scope, &request.actor.user_id)?;
    let _permit = permit(&plugin)?;
    Ok(reply(plugins.core.forget(&request.scope, &request.actor, &request.document_id).await))
}

/// `POST …/ack`: the plugin delivered these answers.
#[utoipa::path(post, path = "/plugin/v1/ack", tag = "plugin", security(("plugin" = [])), request_body = Ack, responses(
    (status = 204, description = "Acknowledged"), (status = 401, body = Refusal), (status = 403, body = Refusal), (status = 400, body = Refusal), (status = 413, body = Refusal), (status = 429, body = Refusal)))]
pub(super) async fn ack(
    State(plugins): State<Arc<Plugins>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let plugin = authenticate(&plugins, &headers)?;
    let ack: Ack = read(body, MAX_REQUEST).await?;
    plugin.ack(&ack.ids);
    Ok(StatusCode::NO_CONTENT.into_response())
}

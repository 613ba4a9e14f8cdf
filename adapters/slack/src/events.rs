//! The Events API endpoint: an axum router that verifies Slack's request signatures, answers the
//! `url_verification` handshake, and hands events and slash commands to [`SlackState`].
//!
//! Routes (mount them on Footnote's HTTP server; the app manifest points Slack at them):
//! - `POST /slack/events`: event callbacks and the URL verification handshake.
//! - `POST /slack/commands`: slash commands (`application/x-www-form-urlencoded`).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::handler::SlackState;

/// Path of the event endpoint.
pub const EVENTS_PATH: &str = "/slack/events";
/// Path of the slash-command endpoint.
pub const COMMANDS_PATH: &str = "/slack/commands";
/// Oldest request timestamp accepted, in seconds either side of now (Slack's five minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNATURE_HEADER: &str = "x-slack-signature";
const RETRY_NUM_HEADER: &str = "x-slack-retry-num";
const RETRY_REASON_HEADER: &str = "x-slack-retry-reason";

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp or signature header is missing or malformed.
    #[error("missing or malformed signature headers")]
    Malformed,
    /// The timestamp is more than five minutes from now (a replay, or a wrong clock).
    #[error("stale timestamp")]
    Stale,
    /// The signature does not match the body and the signing secret.
    #[error("signature mismatch")]
    Mismatch,
}

/// The `v0=…` signature Slack computes: hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("v0=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Checks a request's signature against the signing secret, in constant time, and its
/// timestamp against `now` (Unix seconds).
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str, now: i64) -> Result<(), SignatureError> {
    let sent: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Malformed)?;
    if (now - sent).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let hex = signature.strip_prefix("v0=").ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn check(state: &SlackState, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(SignatureError::Malformed);
    let secret = state.config().signing_secret.as_ref().ok_or(SignatureError::Mismatch)?;
    verify(secret.expose_secret().as_bytes(), header(TIMESTAMP_HEADER)?, body, header(SIGNATURE_HEADER)?, now_unix())
}

fn refuse(error: SignatureError) -> Response {
    tracing::warn!(%error, "Refused a Slack request.");
    (StatusCode::UNAUTHORIZED, "invalid signature").into_response()
}

/// The Events API router, with [`EVENTS_PATH`] and [`COMMANDS_PATH`].
pub fn events_router(state: SlackState) -> Router {
    Router::new().route(EVENTS_PATH, post(events)).route(COMMANDS_PATH, post(commands)).with_state(state)
}

async fn events(State(state): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(error) = check(&state, &headers, &body) {
        return refuse(error);
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    match payload.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = payload.get("challenge").and_then(Value::as_str).unwrap_or_default();
            Json(json!({ "challenge": challenge })).into_response()
        }
        Some("event_callback") => {
            if let Some(retry) = headers.get(RETRY_NUM_HEADER).and_then(|v| v.to_str().ok()) {
                let reason = headers.get(RETRY_REASON_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
                tracing::info!(retry, reason, "Slack retried an event delivery.");
            }
            state.accept_event(payload);
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

async fn commands(State(state): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(error) = check(&state, &headers, &body) {
        return refuse(error);
    }
    let form = url::form_urlencoded::parse(&body).into_owned().collect();
    let text = state.accept_command(&form);
    Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example from Slack's "Verifying requests from Slack" guide.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slack_documented_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), SIGNATURE);
        assert_eq!(verify(SECRET, TS, BODY, SIGNATURE, 1531420618 + 60), Ok(()));
    }

    #[test]
    fn tampering_staleness_and_garbage_are_refused() {
        let now = 1531420618;
        assert_eq!(verify(b"other", TS, BODY, SIGNATURE, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, TS, b"token=x", SIGNATURE, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, TS, BODY, SIGNATURE, now + 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, TS, BODY, SIGNATURE, now - 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, "soon", BODY, SIGNATURE, now), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, TS, BODY, "a2114d57", now), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, TS, BODY, "v0=zz", now), Err(SignatureError::Malformed));
    }
}

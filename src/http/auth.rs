//! Bearer-token authentication and the web page's session cookie.
//!
//! Tokens are kept only as BLAKE3 hashes and compared hash to hash (BLAKE3's `Hash` equality
//! is constant-time). The session cookie holds a keyed hash of a token under a key drawn at
//! start-up, so it reveals nothing about the token and stops working when the server restarts
//! or the token is removed from the configuration.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::AppState;
use super::api::ErrorBody;

/// Name of the web page's session cookie.
pub const SESSION_COOKIE: &str = "footnote_session";

/// Paths anyone may fetch: probes, the API description, the page itself (which shows a login
/// form when needed), its assets and the login form's target.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/openapi.json", "/", "/login", "/logout"];

/// The configured tokens, hashed.
pub struct Auth {
    tokens: Vec<blake3::Hash>,
    sessions: Vec<blake3::Hash>,
}

impl Auth {
    /// Hashes the configured tokens and derives their session values.
    pub fn new(tokens: &[SecretString]) -> Auth {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let tokens: Vec<&str> = tokens.iter().map(|t| t.expose_secret()).filter(|t| !t.is_empty()).collect();
        Auth {
            sessions: tokens.iter().map(|t| blake3::keyed_hash(&key, t.as_bytes())).collect(),
            tokens: tokens.iter().map(|t| blake3::hash(t.as_bytes())).collect(),
        }
    }

    /// True when no token is configured: every request is the operator's.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The session cookie value for `token`, if it is a configured token.
    pub fn session_for(&self, token: &str) -> Option<String> {
        let hash = blake3::hash(token.trim().as_bytes());
        let i = self.tokens.iter().position(|t| *t == hash)?;
        Some(self.sessions[i].to_hex().to_string())
    }

    /// True when the request carries a valid bearer token or session cookie (or none is needed).
    pub fn is_authenticated(&self, headers: &HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| blake3::hash(t.trim().as_bytes()));
        if let Some(hash) = bearer {
            return self.tokens.contains(&hash);
        }
        let cookie = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .and_then(|(_, value)| blake3::Hash::from_hex(value).ok());
        cookie.is_some_and(|c| self.sessions.contains(&c))
    }
}

/// Middleware: lets public paths through and answers 401 to anything else without a valid
/// token or session.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = PUBLIC.contains(&path) || path.starts_with("/static/");
    if public || state.0.auth.is_authenticated(request.headers()) {
        return next.run(request).await;
    }
    let body = ErrorBody {
        error: "unauthorized".into(),
        message: "Send a valid token: `Authorization: Bearer TOKEN` (server.tokens).".into(),
    };
    (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_sessions() {
        let auth = Auth::new(&[SecretString::from("a-long-enough-token-1")]);
        assert!(!auth.is_open());
        assert!(auth.is_authenticated(&headers(AUTHORIZATION, "Bearer a-long-enough-token-1")));
        assert!(!auth.is_authenticated(&headers(AUTHORIZATION, "Bearer wrong-token-xxxxxxx")));
        assert!(!auth.is_authenticated(&HeaderMap::new()));
        let session = auth.session_for("a-long-enough-token-1").unwrap();
        assert!(!session.contains("token"));
        assert!(auth.is_authenticated(&headers(COOKIE, &format!("x=1; {SESSION_COOKIE}={session}"))));
        assert!(!auth.is_authenticated(&headers(COOKIE, &format!("{SESSION_COOKIE}={}", "0".repeat(64)))));
        assert!(auth.session_for("nope").is_none());
        assert!(Auth::new(&[]).is_open());
    }
}

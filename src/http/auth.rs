//! Bearer-token authentication and the web page's sessions.
//!
//! Plain tokens (`server.tokens`) are the operator's; scoped ones (`server.scoped_tokens`) reach
//! only their collections, on the API and `/mcp` only: [`require`] puts the caller's
//! [`Grant`] in the request for the handlers to check. Tokens are kept only as BLAKE3 hashes and compared hash to hash (BLAKE3's `Hash` equality
//! is constant-time). Logging in with a token starts a session: a random id in an HttpOnly,
//! SameSite=Strict cookie (`Secure` when `server.public_url` is https), known to the server only
//! by its hash, which expires after [`SESSION_TTL`], is ended by logging out, and is forgotten
//! when the server restarts. The cookie is honoured by the web page's own routes (`/`, `/ui/…`)
//! only; the API (`/api/…`, `/metrics`) wants the bearer token itself.
//!
//! Before any of this, [`require`] refuses requests for unknown host names and cross-site
//! requests that change something ([`super::guard`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::AppState;
use super::errors::ErrorBody;
use crate::config::ScopedToken;
use crate::mcp::Grant;

/// Name of the web page's session cookie.
pub const SESSION_COOKIE: &str = "footnote_session";

/// How long a web page session lasts after logging in.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Sessions kept at most; past it the oldest are ended.
const MAX_SESSIONS: usize = 10_000;

/// Paths anyone may fetch: probes, the API description, the page itself (which shows a login
/// form when needed), its assets and the login form's target.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/openapi.json", "/", "/login", "/logout"];

/// Paths served whatever host they name: the probes (a load balancer may use any name).
const ANY_HOST: &[&str] = &["/healthz", "/readyz"];

/// True for the routes a scoped token may use: the JSON API and the MCP endpoint, whose handlers
/// check its grant.
fn is_scoped_route(path: &str) -> bool {
    path.starts_with("/api/") || path == "/mcp"
}

/// True for the web page's own routes, the only ones where the session cookie counts.
fn is_page_route(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

/// The configured tokens (hashed, each with what it may reach) and the open sessions.
pub struct Auth {
    tokens: Vec<(blake3::Hash, Grant)>,
    /// Hashes of the session ids, with when each session ends.
    sessions: Mutex<HashMap<blake3::Hash, Instant>>,
    /// Mark the cookie `Secure` (the public address is https).
    secure: bool,
}

impl Auth {
    /// Hashes the configured tokens: plain ones are the operator's, scoped ones hold their
    /// grant. `secure`: the session cookie travels over TLS only.
    pub fn new(tokens: &[SecretString], scoped: &[ScopedToken], secure: bool) -> Auth {
        let plain = tokens.iter().map(|t| (t.expose_secret(), Grant::operator()));
        let scoped = scoped.iter().map(|t| (t.token.expose_secret(), Grant::scoped(t)));
        Auth {
            tokens: plain
                .chain(scoped)
                .filter(|(t, _)| !t.trim().is_empty())
                .map(|(t, grant)| (blake3::hash(t.trim().as_bytes()), grant))
                .collect(),
            sessions: Mutex::new(HashMap::new()),
            secure,
        }
    }

    /// True when no token is configured: every request is the operator's.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<blake3::Hash, Instant>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The grant of `token`, if it is a configured token.
    fn grant(&self, token: &str) -> Option<&Grant> {
        let hash = blake3::hash(token.trim().as_bytes());
        self.tokens.iter().find(|(h, _)| *h == hash).map(|(_, grant)| grant)
    }

    /// Starts a session for `token`, if it is a configured operator token (a scoped token does
    /// not open the web page); returns the cookie value.
    pub fn login(&self, token: &str) -> Option<String> {
        if !self.grant(token).is_some_and(Grant::is_operator) {
            return None;
        }
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        let value: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, ends| *ends > now);
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions.iter().min_by_key(|(_, ends)| **ends).map(|(k, _)| *k) else { break };
            sessions.remove(&oldest);
        }
        sessions.insert(blake3::hash(value.as_bytes()), now + SESSION_TTL);
        Some(value)
    }

    /// Ends the session the request's cookie names, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(value) = session_cookie(headers) {
            self.sessions().remove(&blake3::hash(value.as_bytes()));
        }
    }

    /// The `Set-Cookie` value that stores `value` (empty: deletes the cookie).
    pub fn cookie(&self, value: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = if value.is_empty() { 0 } else { SESSION_TTL.as_secs() };
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
    }

    /// `Some(grant)` when the request carries a bearer token (`Some(None)`: not a valid one),
    /// `None` when it carries none.
    fn bearer(&self, headers: &HeaderMap) -> Option<Option<&Grant>> {
        let token = headers.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        Some(self.grant(token))
    }

    /// True when the request carries a valid bearer token.
    pub fn has_valid_bearer(&self, headers: &HeaderMap) -> bool {
        !self.is_open() && matches!(self.bearer(headers), Some(Some(_)))
    }

    /// True when the request's cookie names an open session.
    fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(value) = session_cookie(headers) else {
            return false;
        };
        let hash = blake3::hash(value.as_bytes());
        self.sessions().get(&hash).is_some_and(|ends| *ends > Instant::now())
    }

    /// What the request may reach on `path`: everything when no token is needed; a valid bearer
    /// token's grant; the operator's (on the web page's routes only) with the cookie of an open
    /// session; `None` otherwise.
    pub fn authenticate(&self, headers: &HeaderMap, path: &str) -> Option<Grant> {
        if self.is_open() {
            return Some(Grant::operator());
        }
        match self.bearer(headers) {
            Some(grant) => grant.cloned(),
            None => (is_page_route(path) && self.has_session(headers)).then(Grant::operator),
        }
    }

    /// True when the request may use `path` with the operator's powers (see
    /// [`Auth::authenticate`]): what the web page asks.
    pub fn is_authenticated(&self, headers: &HeaderMap, path: &str) -> bool {
        self.authenticate(headers, path).is_some_and(|g| g.is_operator())
    }
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn refuse(status: StatusCode, error: &str, message: &str) -> Response {
    let body = ErrorBody { error: error.into(), message: message.into() };
    (status, axum::Json(body)).into_response()
}

/// Middleware: refuses unknown host names and cross-site requests that change something, lets
/// public paths through, and answers 401 to anything else without a valid token or session.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let (headers, uri, method) = (request.headers(), request.uri(), request.method());
    let auth = &state.0.auth;
    if !ANY_HOST.contains(&path) && !state.0.guard.host_allowed(headers, uri) {
        tracing::info!(host = ?headers.get(axum::http::header::HOST), %path, "Refused a request for an unknown host name.");
        return refuse(
            StatusCode::FORBIDDEN,
            "unknown_host",
            "This server answers to loopback names, IP addresses and server.public_url only. Set server.public_url to the address you use.",
        );
    }
    if !auth.has_valid_bearer(headers) && state.0.guard.is_cross_site(method, headers, uri) {
        tracing::info!(%path, origin = ?headers.get(axum::http::header::ORIGIN), "Refused a cross-site request.");
        return refuse(
            StatusCode::FORBIDDEN,
            "cross_site",
            "Refused: this request came from another web site. Use Footnote's own page, or send a bearer token.",
        );
    }
    let public = PUBLIC.contains(&path) || path.starts_with("/static/");
    if public {
        return next.run(request).await;
    }
    if let Some(grant) = auth.authenticate(headers, path) {
        if !grant.is_operator() && !is_scoped_route(path) {
            tracing::info!(grant = %grant.name, %path, "Refused a scoped token outside the API.");
            return refuse(
                StatusCode::FORBIDDEN,
                "out_of_scope",
                "This token is bound to collections: it works with /api/… and /mcp only. Use an operator token (server.tokens) here.",
            );
        }
        let mut request = request;
        request.extensions_mut().insert(grant);
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
        let auth = Auth::new(&[SecretString::from("a-long-enough-token-1")], &[], false);
        assert!(!auth.is_open());
        let api = "/api/documents";
        assert!(auth.is_authenticated(&headers(AUTHORIZATION, "Bearer a-long-enough-token-1"), api));
        assert!(!auth.is_authenticated(&headers(AUTHORIZATION, "Bearer wrong-token-xxxxxxx"), api));
        assert!(!auth.is_authenticated(&HeaderMap::new(), api));
        let session = auth.login("a-long-enough-token-1").unwrap();
        assert!(!session.contains("token"));
        let cookie = headers(COOKIE, &format!("x=1; {SESSION_COOKIE}={session}"));
        assert!(auth.is_authenticated(&cookie, "/ui/documents"));
        assert!(auth.is_authenticated(&cookie, "/"));
        assert!(!auth.is_authenticated(&cookie, api), "the cookie is for the web page only");
        assert!(!auth.is_authenticated(&headers(COOKIE, &format!("{SESSION_COOKIE}={}", "0".repeat(64))), "/"));
        assert_ne!(auth.login("a-long-enough-token-1").unwrap(), session, "each login is its own session");
        auth.logout(&cookie);
        assert!(!auth.is_authenticated(&cookie, "/ui/documents"), "logged out on the server");
        assert!(auth.login("nope").is_none());
        assert!(Auth::new(&[], &[], false).is_open());
        assert!(!auth.cookie("v").contains("Secure"));
        assert!(Auth::new(&[], &[], true).cookie("v").ends_with("; Secure"));
    }

    #[test]
    fn scoped_tokens_carry_their_grant_and_do_not_log_in() {
        let scoped = ScopedToken {
            name: "editor".into(),
            token: SecretString::from("scoped-token-for-notes"),
            read: vec!["notes".into()],
            write: vec![],
        };
        let auth = Auth::new(&[SecretString::from("a-long-enough-token-1")], &[scoped], false);
        let grant = auth.authenticate(&headers(AUTHORIZATION, "Bearer scoped-token-for-notes"), "/mcp").unwrap();
        assert!(!grant.is_operator());
        assert!(grant.read(Some("notes")).is_ok() && grant.read(Some("default")).is_err());
        let operator = auth.authenticate(&headers(AUTHORIZATION, "Bearer a-long-enough-token-1"), "/mcp").unwrap();
        assert!(operator.is_operator());
        assert!(auth.login("scoped-token-for-notes").is_none(), "the web page is the operator's");
        assert!(!auth.is_authenticated(&headers(AUTHORIZATION, "Bearer scoped-token-for-notes"), "/"));
        assert!(auth.login("a-long-enough-token-1").is_some());
        assert!(is_scoped_route("/api/search") && is_scoped_route("/mcp") && !is_scoped_route("/metrics"));
    }
}

//! The HTTP face of the gateway (axum): a JSON API (ask, also streamed as server-sent events;
//! ingest by multipart; documents; forget; warmup; status), health and readiness probes,
//! Prometheus metrics, the OpenAPI document, and a small web page (server-rendered templates +
//! htmx) to ask, read the footnotes and upload files.
//!
//! Authentication: bearer tokens from `server.tokens`; the web page logs in with the same token
//! and gets a server-side session in an HttpOnly, SameSite=Strict cookie ([`auth`]). With no
//! token configured every request is the operator's, which [`check_bind`] allows on loopback
//! addresses only. Either way, requests naming an unknown host and cross-site requests that
//! change something are refused first ([`guard`]).
//!
//! Every route is declared once in [`routes`], which builds the router and is what the test of
//! the OpenAPI document ([`openapi::ApiDoc`]) compares against; the one exception is the MCP
//! endpoint [`MCP_PATH`] (Streamable HTTP, described by the protocol rather than by OpenAPI),
//! served by [`crate::mcp`] behind the same authentication. Plain tokens are the operator's;
//! scoped tokens carry a [`crate::mcp::Grant`] that the API handlers and the MCP tools check.

mod api;
mod auth;
mod errors;
mod guard;
pub mod metrics;
pub mod openapi;
mod upload;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};
use footnote_adapter::Actor;

use crate::config::Config;
use crate::rag::gateway::Core;
use crate::serve::lease::Board;

pub use auth::Auth;

/// Where `footnote serve` serves MCP (Streamable HTTP), next to the API.
pub const MCP_PATH: &str = "/mcp";

/// Room (collection) used by API calls that name none.
pub const DEFAULT_COLLECTION: &str = "default";

/// Room for multipart overhead on top of `ingest.max_file_size`.
const MULTIPART_SLACK: u64 = 64 * 1024;

/// Why the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Not a socket address.
    #[error("server.listen = {0:?} is not an address such as 127.0.0.1:8080")]
    BadAddress(String),
    /// No tokens and a non-loopback address.
    #[error(
        "refusing to listen on {0} without authentication: set server.tokens (or FOOTNOTE_SERVER__TOKENS), listen on 127.0.0.1, or set server.allow_unauthenticated_remote = true if this network is trusted"
    )]
    Unauthenticated(SocketAddr),
}

/// The address to listen on, refused when it is reachable from other machines and no token
/// protects it (unless `allow_unauthenticated_remote`).
pub fn check_bind(cfg: &Config) -> Result<SocketAddr, BindError> {
    let server = &cfg.server;
    let addr: SocketAddr = server.listen.parse().map_err(|_| BindError::BadAddress(server.listen.clone()))?;
    if !server.has_tokens() && !addr.ip().is_loopback() && !server.allow_unauthenticated_remote {
        return Err(BindError::Unauthenticated(addr));
    }
    Ok(addr)
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The shared parts of [`AppState`].
pub struct Shared {
    core: Core,
    auth: Auth,
    guard: guard::Guard,
    templates: minijinja::Environment<'static>,
    pending: web::Pending,
    web_collection: String,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Which instance runs which chat adapter.
    board: Arc<Board>,
    /// The plugins of other processes and their connections.
    plugins: Arc<crate::plugins::Plugins>,
}

impl AppState {
    /// Builds the state over a running core with no chat adapters.
    pub fn new(core: Core) -> AppState {
        Self::with_adapters(core, Arc::new(Board::new(None, &[])))
    }

    /// Builds the state over a running core whose chat adapters `board` describes.
    pub fn with_adapters(core: Core, board: Arc<Board>) -> AppState {
        let cfg = core.rag().config();
        AppState(Arc::new(Shared {
            auth: Auth::new(&cfg.server.tokens, &cfg.server.scoped_tokens, cfg.server.public_https()),
            guard: guard::Guard::new(&cfg.server),
            templates: web::templates(),
            pending: web::Pending::default(),
            web_collection: cfg.server.web_collection.clone(),
            metrics: metrics::handle(),
            board,
            plugins: Arc::new(crate::plugins::Plugins::new(core.clone())),
            core,
        }))
    }

    /// True when no token is configured.
    pub fn is_open(&self) -> bool {
        self.0.auth.is_open()
    }

    fn core(&self) -> &Core {
        &self.0.core
    }

    fn board(&self) -> &Board {
        &self.0.board
    }

    /// The plugins of other processes served by this state's router.
    pub fn plugins(&self) -> &Arc<crate::plugins::Plugins> {
        &self.0.plugins
    }

    /// Who an authenticated HTTP caller is: the operator (tokens are the operator's).
    fn actor(&self) -> Actor {
        Actor::operator()
    }
}

/// One route: method, path (axum and OpenAPI syntax agree: `/api/documents/{id}`), handler.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route { method, path, handler }
}

/// Every route the server has.
pub fn routes(max_upload: u64) -> Vec<Route> {
    let upload_limit = DefaultBodyLimit::max((max_upload + MULTIPART_SLACK) as usize);
    vec![
        route(Method::GET, "/healthz", get(api::healthz)),
        route(Method::GET, "/readyz", get(api::readyz)),
        route(Method::GET, "/metrics", get(api::metrics)),
        route(Method::GET, "/openapi.json", get(api::openapi_json)),
        route(Method::POST, "/api/ask", post(api::ask)),
        route(Method::POST, "/api/ask/stream", post(api::ask_stream)),
        route(Method::POST, "/api/search", post(api::search)),
        route(Method::GET, "/api/documents", get(api::documents)),
        route(Method::POST, "/api/documents", post(api::ingest).layer(upload_limit)),
        route(Method::DELETE, "/api/documents/{id}", delete(api::forget)),
        route(Method::POST, "/api/warmup", post(api::warmup)),
        route(Method::GET, "/api/status", get(api::status)),
        route(Method::GET, "/", get(web::page)),
        route(Method::POST, "/login", post(web::login)),
        route(Method::POST, "/logout", post(web::logout)),
        route(Method::GET, "/static/{file}", get(web::asset)),
        route(Method::POST, "/ui/ask", post(web::ask)),
        route(Method::GET, "/ui/ask/{id}/stream", get(web::ask_stream)),
        route(Method::POST, "/ui/upload", post(web::upload).layer(upload_limit)),
        route(Method::GET, "/ui/documents", get(web::documents)),
        route(Method::DELETE, "/ui/documents/{id}", delete(web::forget)),
        route(Method::GET, "/ui/status", get(web::status)),
    ]
}

/// The whole application: every [`routes`] entry, and the MCP endpoint `/mcp`, behind the
/// authentication layer; next to them the plugin protocol's routes, which take plugin tokens
/// only ([`crate::plugins`]).
pub fn router(state: AppState) -> Router {
    let max_upload = state.core().rag().config().ingest.max_file_size.as_u64();
    let mut router = Router::new();
    for r in routes(max_upload) {
        router = router.route(r.path, r.handler);
    }
    let mcp = crate::mcp::transport::http_service(state.core().clone(), Default::default());
    router = router.route_service(MCP_PATH, mcp);
    let plugins = crate::plugins::router(state.0.plugins.clone());
    router.layer(axum::middleware::from_fn_with_state(state.clone(), auth::require)).with_state(state).merge(plugins)
}

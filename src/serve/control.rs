//! How a command on the same machine finds the running server and asks it for what only the
//! keeper of the indexes may do: index at once what the command just wrote into the database
//! (`/local/catch-up`), and rebuild the indexes (`/local/reindex`, for `footnote reindex`).
//!
//! `footnote serve` writes `serve.json` into its data directory (mode 0600: only the server's
//! own user can read it) with its pid, the loopback URL of its HTTP server and a random token
//! drawn at start. The token opens the control routes under `/local/` only; they sit outside the
//! API's `server.tokens` check, so a configured API token does not open them and the control
//! token opens nothing else. The file is removed on shutdown; one left behind by a crash is
//! recognised by its pid, which no longer holds the indexes' writer lock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::rag::Rag;

/// Name of the file in the data directory.
pub const CONTROL_FILE: &str = "serve.json";

/// What `serve.json` holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct ControlFile {
    /// The server's process id.
    pub pid: u32,
    /// Base URL of its HTTP server, reachable from this machine.
    pub url: String,
    /// The bearer token of the `/local/` routes.
    pub token: String,
}

impl std::fmt::Debug for ControlFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlFile")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl ControlFile {
    /// A file for this process and the server listening on `addr`, with a fresh token.
    pub fn new(addr: std::net::SocketAddr) -> ControlFile {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ControlFile { pid: std::process::id(), url: format!("http://{}", reachable(addr)), token }
    }

    /// The file's path in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONTROL_FILE)
    }

    /// Reads the file of `data_dir`; `None` when there is none or it cannot be read.
    pub fn read(data_dir: &Path) -> Option<ControlFile> {
        serde_json::from_slice(&std::fs::read(Self::path(data_dir)).ok()?).ok()
    }

    /// Writes the file into `data_dir` with mode 0600, atomically.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// Removes the file of `data_dir` if it is this process's.
    pub fn remove(data_dir: &Path) {
        if Self::read(data_dir).is_some_and(|f| f.pid == std::process::id()) {
            let _ = std::fs::remove_file(Self::path(data_dir));
        }
    }
}

/// An address another process on this machine can connect to: the loopback address for a
/// server listening on every interface.
fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// `POST /local/reindex`: what to rebuild.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReindexRequest {
    /// Make every embedding again (`footnote reindex --embeddings`).
    pub embeddings: bool,
    /// The embedding model the command is configured with; refused when the server uses another.
    pub embed_model: String,
}

/// What a reindex did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReindexReport {
    /// Chunks in the rebuilt indexes.
    pub chunks: u64,
    /// Chunks embedded during the rebuild.
    pub embedded: usize,
    /// Chunks still waiting for an embedding (Ollama unreachable).
    pub pending: u64,
}

/// An error of a control route, as `{"message": …}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlError {
    /// One line for the operator.
    pub message: String,
}

type Failure = (StatusCode, Json<ControlError>);

fn failure(status: StatusCode, message: impl Into<String>) -> Failure {
    (status, Json(ControlError { message: message.into() }))
}

#[derive(Clone)]
struct Shared {
    rag: Arc<Rag>,
    token: blake3::Hash,
}

/// The `/local/` routes, opened by `token` only.
pub fn router(rag: Arc<Rag>, token: &str) -> axum::Router {
    let state = Shared { rag, token: blake3::hash(token.as_bytes()) };
    axum::Router::new()
        .route("/local/catch-up", post(catch_up))
        .route("/local/reindex", post(reindex))
        .with_state(state)
}

/// What a catch-up did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CatchUpReport {
    /// Changes applied.
    pub applied: usize,
}

/// `POST /local/catch-up`: applies what the database has and the indexes do not, now rather
/// than at the next poll.
async fn catch_up(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<CatchUpReport>, Failure> {
    authorized(&state, &headers)?;
    let applied = state.rag.indexes().catch_up(state.rag.store()).await.map_err(|e| {
        tracing::warn!(error = %e, "Index catch-up asked by a command failed; the next poll retries.");
        failure(StatusCode::INTERNAL_SERVER_ERROR, "the index catch-up failed: the server's log says why")
    })?;
    Ok(Json(CatchUpReport { applied }))
}

fn authorized(state: &Shared, headers: &HeaderMap) -> Result<(), Failure> {
    let bearer = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // BLAKE3 hash equality is constant-time.
    match bearer.map(|t| blake3::hash(t.trim().as_bytes())) {
        Some(hash) if hash == state.token => Ok(()),
        _ => Err(failure(StatusCode::UNAUTHORIZED, "this route needs the token of the server's serve.json")),
    }
}

async fn reindex(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<ReindexRequest>,
) -> Result<Json<ReindexReport>, Failure> {
    authorized(&state, &headers)?;
    let rag = &state.rag;
    let model = &rag.config().ollama.embed_model;
    if request.embed_model != *model {
        return Err(failure(
            StatusCode::CONFLICT,
            format!(
                "the running server embeds with {model}, not {}: stop it, run `footnote reindex{}` with the new setting, then start it again",
                request.embed_model,
                if request.embeddings { " --embeddings" } else { "" }
            ),
        ));
    }
    tracing::info!(embeddings = request.embeddings, "Rebuilding the search indexes, as asked by `footnote reindex`.");
    let failed = |e: crate::rag::RagError| {
        tracing::error!(error = %e, "Rebuilding the search indexes failed.");
        failure(StatusCode::INTERNAL_SERVER_ERROR, "rebuilding the search indexes failed: the server's log says why")
    };
    let embedded = rag.reindex(request.embeddings).await.map_err(failed)?;
    let counts = rag.store().counts(None).await.map_err(|e| failed(e.into()))?;
    Ok(Json(ReindexReport { chunks: counts.chunks as u64, embedded, pending: counts.pending_embeddings as u64 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_file_is_private_and_says_where_the_server_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = ControlFile::new("0.0.0.0:8080".parse().unwrap());
        assert_eq!(file.url, "http://127.0.0.1:8080");
        assert_eq!(file.token.len(), 64);
        assert!(!format!("{file:?}").contains(&file.token));
        file.write(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ControlFile::path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = ControlFile::read(dir.path()).unwrap();
        assert_eq!((read.pid, read.token.as_str()), (std::process::id(), file.token.as_str()));
        ControlFile::remove(dir.path());
        assert!(ControlFile::read(dir.path()).is_none());
        assert_eq!(reachable("[::]:9".parse().unwrap()).to_string(), "[::1]:9");
        assert_eq!(reachable("192.0.2.7:9".parse().unwrap()).to_string(), "192.0.2.7:9");
    }
}

//! The two ways to reach the MCP server: stdio (`footnote mcp`, spawned by a desktop assistant or
//! an editor) and Streamable HTTP at `/mcp` (`footnote serve`).
//!
//! Over HTTP the server is stateless: no MCP session outlives its request, and every request is
//! authenticated and scoped by the HTTP layer before it gets here (host names and cross-site
//! requests are checked there too, so the SDK's own host check is off). Answers and progress
//! stream back as server-sent events on the request that asked.

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use tokio_util::sync::CancellationToken;

use super::{Grant, McpServer};
use crate::rag::gateway::Core;

/// Largest MCP request body over HTTP: room for `add_text` up to the upload limit, as JSON.
fn max_body(core: &Core) -> usize {
    let upload = core.rag().config().ingest.max_file_size.as_u64() as usize;
    upload.saturating_mul(2).saturating_add(64 * 1024)
}

/// The `/mcp` endpoint: a tower service for axum's `route_service`. `shutdown` ends the streams
/// still open when the server stops.
pub fn http_service(core: Core, shutdown: CancellationToken) -> StreamableHttpService<McpServer, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(max_body(&core));
    config.sse_retry = None;
    let server = McpServer::http(core);
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}

/// Serves MCP on this process's stdin and stdout until the client closes them.
pub async fn serve_stdio(core: Core, grant: Grant) -> anyhow::Result<()> {
    let running = McpServer::stdio(core, grant)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("the MCP client did not start a session: {e}"))?;
    let reason = running.waiting().await?;
    tracing::info!(?reason, "The MCP client went away.");
    Ok(())
}

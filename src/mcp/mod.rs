//! Footnote as a Model Context Protocol server, for AI assistants and editors: cited search
//! (`search`, `get_passage`, `list_documents`), full checked answers (`ask`, with progress
//! notifications while the question waits for the model) and, for callers who may write,
//! `add_text`. Built on the official Rust SDK (`rmcp`).
//!
//! Two transports ([`transport`]): stdio for `footnote mcp` (the operator's own process, which
//! `--collection`/`--read-only` may narrow), and Streamable HTTP at `/mcp` on `footnote serve`'s
//! port, behind the same bearer tokens as the API. Each HTTP request carries its token's
//! [`Grant`] (put there by the HTTP authentication layer), so every call is checked against the
//! token that made it, never against a session.

pub mod scopes;
mod tools;
pub mod transport;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

pub use scopes::{Grant, Refused};

use crate::rag::gateway::Core;

/// What the server tells a client when it connects.
const INSTRUCTIONS: &str = "Footnote answers from the user's own documents. Use `search` to find passages \
(then `get_passage` to read around one) and cite them by title and locator; use `ask` for a complete \
answer with checked, numbered citations. Each call works in one collection (`list_documents` shows what it \
holds); without `collection`, the connection's default one is used.";

/// One MCP server over the core: a grant fixed for its life (stdio) or taken from each HTTP
/// request.
#[derive(Clone)]
pub struct McpServer {
    core: Core,
    /// Fixed for stdio; `None` over HTTP, where each request carries its own.
    grant: Option<Grant>,
    /// The local platform of the scopes it uses (`cli` or `http`).
    platform: &'static str,
}

impl McpServer {
    /// The server of `footnote mcp`: every call runs with `grant`.
    pub fn stdio(core: Core, grant: Grant) -> McpServer {
        McpServer { core, grant: Some(grant), platform: "cli" }
    }

    /// The server behind `/mcp`: every call runs with the grant of the request's token.
    pub fn http(core: Core) -> McpServer {
        McpServer { core, grant: None, platform: "http" }
    }

    fn scope(&self, collection: &str) -> footnote_adapter::Scope {
        tools::scope(self.platform, collection)
    }

    /// The caller's grant: fixed, or the one the HTTP layer attached to the request.
    fn grant(&self, ctx: &RequestContext<RoleServer>) -> Result<Grant, ErrorData> {
        if let Some(grant) = &self.grant {
            return Ok(grant.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Grant>())
            .cloned()
            .ok_or_else(|| {
                tracing::error!("An MCP request reached the server without the grant of its token.");
                ErrorData::internal_error("not authenticated", None)
            })
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("footnote", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let grant = self.grant(&ctx)?;
        Ok(ListToolsResult::with_all_items(tools::list(&grant)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let grant = self.grant(&ctx)?;
        tracing::info!(tool = %request.name, grant = %grant.name, "MCP tool call.");
        let result = tools::call(self, &grant, &request.name, request.arguments, &ctx).await?;
        Ok(result.into())
    }
}

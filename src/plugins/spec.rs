//! The protocol's specification, `plugins/protocol.json`: an OpenAPI 3.1 document generated from
//! the routes and from the very types both sides use (`footnote_adapter::wire`), so that a test
//! can hold the committed file to the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;

/// The plugin protocol's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Footnote plugin protocol",
        version = "1",
        description = "How a chat platform plugin in another process talks to Footnote: JSON requests over HTTP, \
            answers on a stream of server-sent events. See plugins/PROTOCOL.md."
    ),
    paths(
        routes::events, routes::ask, routes::ingest, routes::warmup, routes::status, routes::documents,
        routes::forget, routes::ack,
    ),
    components(schemas(footnote_adapter::wire::ServerFrame, footnote_adapter::AskEvent)),
    modifiers(&PluginAuth),
    tags((name = "plugin", description = "Plugin protocol 1 (bearer: the plugin's token from [[plugins]])"))
)]
pub struct PluginDoc;

struct PluginAuth;

impl Modify for PluginAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "plugin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as committed in `plugins/protocol.json` (pretty JSON and a final newline).
pub fn document() -> String {
    let mut text = PluginDoc::openapi().to_pretty_json().expect("the document serializes");
    text.push('\n');
    text
}

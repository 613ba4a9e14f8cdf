//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! data types' `ToSchema` derives; served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, web};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Footnote", description = "Answers from your own documents with numbered, checked sources."),
    paths(
        api::healthz, api::readyz, api::metrics, api::openapi_json,
        api::ask, api::ask_stream, api::search, api::documents, api::ingest, api::forget, api::warmup, api::status,
        web::page, web::login, web::logout, web::asset, web::ask, web::ask_stream, web::upload,
        web::documents, web::forget, web::status,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "api", description = "JSON API (bearer token when server.tokens is set)"),
        (name = "web", description = "The web page and the HTML fragments htmx swaps into it"),
        (name = "probes", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

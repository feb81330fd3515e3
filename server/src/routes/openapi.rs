//! The OpenAPI 3.1 document of the API, generated from the handlers' `#[utoipa::path]`
//! annotations and the types' `ToSchema` derives, served at `/api/openapi.json`. A test checks
//! that it lists exactly the routes of the route table.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::vfs;

/// What the document holds besides the table's routes: the title, the security schemes, the
/// error body, and the one operation a catch-all route serves (`…/{path}/preview`).
#[derive(OpenApi)]
#[openapi(
    info(title = "MosaicFS control plane", description = "The hub's HTTPS API (docs/ARCHITECTURE.md §5-§7)"),
    paths(vfs::preview),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
)]
struct Base;

/// The base the route table's documentation is merged into.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        components.add_security_scheme(
            "hmac",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "MOSAICFS-HMAC-SHA256 Credential=<access key id>, Timestamp=<unix seconds>, \
                 Signature=<hex HMAC-SHA256 over the canonical request> (docs/ARCHITECTURE.md §6.2)",
            ))),
        );
    }
}

static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    super::document().to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
});

/// This document.
#[utoipa::path(
    get, path = "/api/openapi.json", operation_id = "openapi", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value),
              (status = "4XX", description = "A JSON error", body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn openapi_json(_session: crate::auth::Session) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

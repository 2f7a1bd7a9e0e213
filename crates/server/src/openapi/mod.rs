//! The OpenAPI 3.1 document of the running server, served at `/api/v1/openapi.json` and
//! rendered by the page at `/docs`.
//!
//! Made from the code in three steps, once per process (the state caches the bytes):
//! 1. utoipa: every handler's `#[utoipa::path]`, collected by the router itself
//!    (`routes::router`, through `utoipa_axum::routes!`), and the shapes it names;
//! 2. `models::expand`: the record routes' template paths (`/api/v1/{model}…`) become each
//!    declared model's paths, with its record, input and patch schemas and its list
//!    filters and sort keys;
//! 3. `envelope::finish`: what every answer shares is written once: the success envelope
//!    around each body, the error envelope and code of every error status, the errors any
//!    request can meet (limits, rate limits, 500, 503), the security schemes.
//!
//! Layout: `shapes` (request and answer shapes declared for the document only), `models`,
//! `envelope`, `page` (the `/docs` page's files, embedded).

mod envelope;
mod files;
mod models;
pub(crate) mod shapes;

use axum::body::Bytes;
use plinth_core::{QueryLimits, Schema};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Plinth",
        description = "Declared models served as a REST API: records, accounts, API keys \
                       and the audit trail. Every answer is an envelope: `{\"success\": true, \
                       \"data\": …}` or `{\"success\": false, \"error\": {\"code\", \
                       \"message\", \"details\"?, \"request_id\"}}`."
    ),
    tags(
        (name = "records", description = "The records of every declared model; each model is a tag of its own below."),
        (name = "auth", description = "Login, refresh, logout, the caller's own account."),
        (name = "api keys", description = "Keys for machines, managed with an access token."),
        (name = "events", description = "The change feed (Server-Sent Events) and its tickets."),
        (name = "users", description = "Account administration (admins)."),
        (name = "audit", description = "The audit trail (admins)."),
        (name = "flags", description = "Feature flags (admins), and each caller's answers."),
        (name = "meta", description = "The build, this document and its page."),
        (name = "probes", description = "Liveness and readiness."),
    )
)]
struct ApiDoc;

/// The document for `schema`'s models, serialised. `limits` bound the list filters' values.
pub(crate) fn document(schema: &Schema, limits: &QueryLimits) -> Bytes {
    let (_, routes) = crate::routes::router().split_for_parts();
    let mut api = ApiDoc::openapi();
    api.merge(routes);
    // Serialising utoipa's types cannot fail: every map key is a string.
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    models::expand(&mut doc, schema, limits);
    envelope::finish(&mut doc);
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

/// The `/docs` page: an HTML shell, its script and its style sheet, all served from the
/// binary (no other origin is named anywhere in them).
pub(crate) mod page {
    /// The HTML shell.
    pub(crate) const HTML: &str = include_str!("page/index.html");
    /// The renderer: fetches the document and builds the page from it.
    pub(crate) const SCRIPT: &str = include_str!("page/docs.js");
    /// The style sheet.
    pub(crate) const STYLE: &str = include_str!("page/docs.css");
    /// Only this origin's script, style and document; nothing inline, no frames, no forms.
    pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                                  connect-src 'self'; img-src 'self'; base-uri 'none'; \
                                  form-action 'none'; frame-ancestors 'none'";
}

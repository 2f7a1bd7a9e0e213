//! `GET /api/v1/openapi.json`, the OpenAPI document, and `GET /docs`, the page that renders
//! it: public, made once per process (`AppState::openapi`), served from the binary.

use crate::openapi::page;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_openapi))
        .routes(routes!(docs_page))
        .routes(routes!(docs_script))
        .routes(routes!(docs_style))
}

/// The OpenAPI 3.1 document of this server: every route, and every declared model's.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "the document, as it is (no envelope)",
        content_type = "application/json", body = inline(Object))))]
async fn read_openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        state.openapi().clone(),
    )
}

/// The document, rendered for people: operations, parameters, responses and schemas.
#[utoipa::path(get, path = "/docs", tag = "meta", security(()),
    responses((status = 200, description = "the page", content_type = "text/html", body = String)))]
async fn docs_page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", page::HTML)
}

/// The page's script.
#[utoipa::path(get, path = "/docs/docs.js", tag = "meta", security(()),
    responses((status = 200, description = "the script", content_type = "text/javascript", body = String)))]
async fn docs_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", page::SCRIPT)
}

/// The page's style sheet.
#[utoipa::path(get, path = "/docs/docs.css", tag = "meta", security(()),
    responses((status = 200, description = "the style sheet", content_type = "text/css", body = String)))]
async fn docs_style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", page::STYLE)
}

static REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");

/// One of the page's files, with headers that let it load nothing from anywhere else.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(page::CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                REFERRER_POLICY.clone(),
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Bytes::from_static(body.as_bytes()),
    )
}

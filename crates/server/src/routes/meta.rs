//! `/api/v1/version`.

use crate::error::ApiError;
use crate::openapi::shapes::Version;
use crate::reply::Reply;
use crate::state::AppState;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(version))
}

/// Build and API version.
#[utoipa::path(get, path = "/api/v1/version", tag = "meta", security(()),
    responses((status = 200, description = "this build", body = Version)))]
async fn version() -> Result<Reply, ApiError> {
    Reply::data(&json!({"name": "plinth", "version": env!("CARGO_PKG_VERSION"), "api": "v1"}))
}

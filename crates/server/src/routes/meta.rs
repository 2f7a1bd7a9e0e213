//! `/api/v1/version`.

use crate::error::ApiError;
use crate::reply::Reply;
use crate::state::AppState;
use axum::Router;
use axum::routing::get;
use serde_json::json;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/version", get(version))
}

/// Build and API version.
async fn version() -> Result<Reply, ApiError> {
    Reply::data(&json!({"name": "plinth", "version": env!("CARGO_PKG_VERSION"), "api": "v1"}))
}

//! `/api/v1/version`.

use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/version", get(version))
}

/// Build and API version.
async fn version() -> Json<Value> {
    Json(
        json!({"success": true, "data": {"name": "plinth", "version": env!("CARGO_PKG_VERSION"), "api": "v1"}}),
    )
}

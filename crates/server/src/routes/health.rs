//! Liveness and readiness probes.

use crate::error::ApiError;
use crate::reply::Reply;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_core::ErrorCode;
use serde_json::json;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is alive and serving HTTP.
async fn healthz() -> Result<Reply, ApiError> {
    Reply::data(&json!({"status": "ok"}))
}

/// Ready for traffic: the database answers (migrations ran before the listener opened) and
/// the server is not draining.
async fn readyz(State(state): State<AppState>) -> Result<Reply, ApiError> {
    if state.draining() {
        return Err(ApiError::new(ErrorCode::Unavailable, "shutting down"));
    }
    state.store().ping().await.map_err(ApiError::from)?;
    Reply::data(&json!({"status": "ready", "uptime_seconds": state.uptime_secs()}))
}

//! Liveness and readiness probes.

use crate::error::ApiError;
use crate::openapi::shapes::Health;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use plinth_core::ErrorCode;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "probes", security(()),
    responses((status = 200, description = "alive", body = Health)))]
async fn healthz() -> Result<Reply, ApiError> {
    Reply::data(&json!({"status": "ok"}))
}

/// Ready for traffic: the database answers (migrations ran before the listener opened) and
/// the server is not draining.
#[utoipa::path(get, path = "/readyz", tag = "probes", security(()),
    responses(
        (status = 200, description = "ready for traffic", body = Health),
        (status = 503, description = "draining, or the database does not answer"),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Reply, ApiError> {
    if state.draining() {
        return Err(ApiError::new(ErrorCode::Unavailable, "shutting down"));
    }
    state.store().ping().await.map_err(ApiError::from)?;
    Reply::data(&json!({"status": "ready", "uptime_seconds": state.uptime_secs()}))
}

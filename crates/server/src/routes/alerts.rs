//! `GET /api/v1/alerts` (admins): this instance's firing alerts, then the recently resolved.

use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs};
use crate::reply::Reply;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_core::{ErrorCode, Role};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/alerts", get(list_alerts))
}

/// Firing alerts first, then resolved ones, newest first; empty when alerts are off. Takes
/// no parameters: any is refused rather than ignored.
#[tracing::instrument(skip_all)]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Reply, ApiError> {
    match caller.0.role() {
        Role::Admin => {}
        Role::User => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only admins read the alerts",
            ));
        }
        Role::Guest => {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "authentication required",
            ));
        }
    }
    if let Some((k, _)) = pairs.first() {
        return Err(ApiError::invalid(
            k,
            "unknown parameter; this list takes none",
        ));
    }
    let alerts = state.alerts().map(|a| a.list()).unwrap_or_default();
    Reply::data(&alerts)
}

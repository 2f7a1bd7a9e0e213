//! `GET /api/v1/alerts` (admins): this instance's firing alerts, then the recently resolved.

use crate::alerts::Alert;
use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_alerts))
}

/// Firing alerts first, then resolved ones, newest first; empty when alerts are off. Takes
/// no parameters: any is refused rather than ignored.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "this instance's firing alerts, then the recently resolved", body = [Alert]),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins read the alerts"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    caller.require_admin("only admins read the alerts")?;
    query.refuse_any()?;
    let alerts = state.alerts().map(|a| a.list()).unwrap_or_default();
    Reply::data(&alerts)
}

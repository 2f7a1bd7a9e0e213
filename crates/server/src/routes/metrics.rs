//! `GET /metrics`: the Prometheus text format, for loopback peers or the metrics token.

use crate::error::ApiError;
use crate::metrics::{decide, render};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use std::net::SocketAddr;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The route; how it is served is the state's `AppState::metrics_access`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show_metrics))
}

/// The metrics, after the access check; a 404 when metrics are turned off.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "the Prometheus text format, for loopback peers or the metrics token", content_type = "text/plain", body = String),
        (status = 401, description = "an Authorization header that is not the metrics token"),
        (status = 403, description = "not a loopback peer, and no metrics token is configured"),
        (status = 404, description = "metrics are turned off"),
    ))]
async fn show_metrics(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let Some(access) = state.metrics_access().filter(|a| a.enabled) else {
        return Err(crate::extract::no_such_route());
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    let trusted = &state.auth().config().trusted_proxies;
    decide(peer, req.headers(), access.token.as_ref(), trusted)?;
    let text = render(&state, state.metrics())
        .await
        .map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    let mut res = text.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

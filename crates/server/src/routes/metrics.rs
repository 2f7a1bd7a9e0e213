//! `GET /metrics`: the Prometheus text format, for loopback peers or the metrics token.

use crate::error::ApiError;
use crate::metrics::{MetricsAccess, MetricsToken, decide, render};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use std::net::SocketAddr;
use std::sync::Arc;

/// The route, when `access` enables it; none otherwise (then `/metrics` is a 404).
pub(crate) fn router(access: &MetricsAccess) -> Router<AppState> {
    if !access.enabled {
        return Router::new();
    }
    let token = access.token.clone().map(Arc::new);
    Router::new().route(
        "/metrics",
        get(move |state: State<AppState>, req: Request| show_metrics(state, req, token.clone())),
    )
}

/// The metrics, after the access check.
async fn show_metrics(
    State(state): State<AppState>,
    req: Request,
    token: Option<Arc<MetricsToken>>,
) -> Result<Response, ApiError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    decide(peer, req.headers(), token.as_deref())?;
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

//! `GET /metrics`: the Prometheus text format, for loopback peers or the metrics token.
//! `GET /api/v1/metrics/series` (admins): this instance's last ten minutes of answers, in
//! ten-second points, for the console's charts.

use crate::alerts::recorder::Point;
use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs};
use crate::metrics::{decide, render};
use crate::openapi::shapes::MetricsSeries;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use plinth_core::Timestamp;
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The route; how it is served is the state's `AppState::metrics_access`.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_metrics))
        .routes(routes!(metrics_series))
}

/// How far back the series goes; its recorder's buckets (and so its points) are a sixtieth
/// of this: 10 s.
pub(crate) const SERIES_WINDOW: Duration = Duration::from_secs(600);

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

/// Requests, 5xx answers and the p99 latency of this instance, per 10 s over the last 10
/// minutes: 60 points, oldest first, the current (partial) interval last. A 404 when
/// metrics are off, as `/metrics`. Takes no parameters.
#[utoipa::path(get, path = "/api/v1/metrics/series", tag = "operations",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "this instance's answers per interval, oldest first", body = MetricsSeries),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins read the series"),
        (status = 404, description = "metrics are turned off"),
    ))]
#[tracing::instrument(skip_all)]
async fn metrics_series(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let Some(recorder) = state.series() else {
        return Err(crate::extract::no_such_route());
    };
    caller.require_admin("only admins read the metrics series")?;
    query.refuse_any()?;
    let series = Series {
        interval_seconds: recorder.bucket().as_secs(),
        points: recorder.series().iter().map(SeriesPoint::from).collect(),
    };
    Reply::data(&series)
}

/// What `metrics_series` answers (described by `openapi::shapes::MetricsSeries`).
#[derive(Serialize)]
struct Series {
    interval_seconds: u64,
    points: Vec<SeriesPoint>,
}

#[derive(Serialize)]
struct SeriesPoint {
    /// The interval's start, RFC 3339.
    at: String,
    requests: u64,
    errors: u64,
    p99_ms: Option<f64>,
}

impl From<&Point> for SeriesPoint {
    fn from(p: &Point) -> Self {
        Self {
            at: Timestamp::from_system(p.at).to_string(),
            requests: p.counts.requests,
            errors: p.counts.errors,
            p99_ms: p.counts.p99(),
        }
    }
}

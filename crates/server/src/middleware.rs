//! The request middleware: request ids, the error envelope, the access log, feeding the
//! alerts and the metrics series, and turning panics into 500s.

use crate::alerts::Alerts;
use crate::alerts::recorder::Recorder;
use crate::error::{ApiError, ErrorReport};
use crate::extract::RequestId;
use crate::limits::{BodyProgress, RequestLimits, check_head};
use crate::trace::{TRACEPARENT, TraceContext};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The request id header, read and written.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept.
const MAX_REQUEST_ID: usize = 128;

/// A client's request id is kept if it is short and plain; anything else is replaced so
/// logs stay parseable and free of injected text.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// `X-Content-Type-Options`, on every answer: a browser must not guess another type.
static X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");

/// What the request middleware works with.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) limits: RequestLimits,
    /// Told the status and latency of every answer; `None` when alerts are off (and for
    /// the redirect port).
    pub(crate) alerts: Option<Arc<Alerts>>,
    /// Told the same, for the charts of `GET /api/v1/metrics/series`; `None` when metrics
    /// are off (and for the redirect port).
    pub(crate) series: Option<Arc<Recorder>>,
}

/// Assigns the request id and the trace context (`traceparent`), applies the request
/// limits (head size, request timeout, closing a connection whose body was left unread),
/// runs the request inside a span, renders error envelopes, writes one access-log line
/// and counts the answer for the alerts.
/// A fresh request id: a UUIDv7 in its simple form, its random bits drawn like trace ids
/// (unique, not secret: `Uuid::now_v7` would cost a `getrandom` system call per request).
fn new_request_id() -> Arc<str> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (a, b) = (crate::trace::random_u64(), crate::trace::random_u64());
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    Arc::from(id.simple().encode_lower(&mut uuid::Uuid::encode_buffer()) as &str)
}

pub(crate) async fn request_context(
    State(context): State<Context>,
    mut req: Request,
    next: Next,
) -> Response {
    let limits = context.limits;
    let started = Instant::now();
    let id: Arc<str> = match req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
    {
        Some(s) if sane(s) => Arc::from(s),
        _ => new_request_id(),
    };
    req.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let trace = TraceContext::from_headers(req.headers());
    let method = req.method().clone();
    // Formatted only where a span or an error line is written (never at LOG_LEVEL=warn for
    // a request that succeeds).
    let route = Route(req.extensions().get::<MatchedPath>().cloned());
    // `principal` is filled in by the `Caller` extractor once the credentials are checked.
    // The span is at INFO: with LOG_LEVEL=warn it is not even built (it costs a fifth of
    // the throughput of a cheap read). Warnings and errors of a request therefore carry the
    // request id, method and route as fields of their own.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        trace_id = %trace.trace_hex(),
        span_id = %trace.span_hex(),
        principal = tracing::field::Empty
    );
    let (req, body) = BodyProgress::watch(req, limits.body_idle_timeout);
    let mut res = match check_head(req.method(), req.uri(), req.headers(), &limits) {
        Err(e) => e.into_response(),
        Ok(()) => {
            #[cfg(feature = "faults")]
            let fault = crate::faults::Fault::of(req.headers());
            let run = async move {
                #[cfg(feature = "faults")]
                if let Some(answer) = crate::faults::Fault::apply(fault).await {
                    return answer.into_response();
                }
                next.run(req).await
            }
            .instrument(span.clone());
            match tokio::time::timeout(limits.request_timeout, run).await {
                // A body that stopped arriving is the client's doing, whatever the handler
                // made of the failed read.
                Ok(res) => match body.stalled(limits.body_idle_timeout) {
                    Some(e) => e.into_response(),
                    None => res,
                },
                Err(_) => body
                    .timed_out(limits.request_timeout, &method)
                    .into_response(),
            }
        }
    };
    body.close_if_unread(&mut res);
    res.headers_mut().insert(
        X_CONTENT_TYPE_OPTIONS.clone(),
        HeaderValue::from_static("nosniff"),
    );
    if let Some(report) = res.extensions_mut().remove::<ErrorReport>() {
        res = render_error(res, &report, &id);
        if let Some(cause) = &report.cause {
            span.in_scope(|| {
                tracing::error!(
                    request_id = %id,
                    method = %method,
                    route = %route,
                    trace_id = %trace.trace_hex(),
                    code = %report.code,
                    error_chain = %cause,
                    "request failed"
                )
            });
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    if let Some(v) = trace.header_value() {
        res.headers_mut().insert(TRACEPARENT.clone(), v);
    }
    let status = res.status().as_u16();
    let ended = Instant::now();
    let latency = ended.saturating_duration_since(started);
    if let Some(alerts) = &context.alerts {
        alerts.record(ended, status, latency);
    }
    if let Some(series) = &context.series {
        series.record_at(ended, status, latency);
    }
    let latency_ms = latency.as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(target: "plinth::access", status, latency_ms, "request"));
    res
}

/// The matched route's pattern, or `unmatched`, for spans and error lines.
struct Route(Option<MatchedPath>);

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_ref().map_or("unmatched", MatchedPath::as_str))
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    success: bool,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [plinth_core::FieldError],
    request_id: &'a str,
}

fn render_error(res: Response, report: &ErrorReport, id: &str) -> Response {
    let envelope = Envelope {
        success: false,
        error: ErrorBody {
            code: report.code.as_str(),
            message: &report.message,
            details: &report.details,
            request_id: id,
        },
    };
    let (mut parts, _) = res.into_parts();
    let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// Adds `Cache-Control: no-store` to every answer of the routes it wraps: those holding
/// tokens, keys or account data, which no cache may keep.
pub(crate) async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Turns a panic in a handler into a 500 envelope; the panic itself is logged by the panic
/// hook, and the payload never reaches the client.
pub(crate) fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::internal(format!("handler panicked: {what}")).into_response()
}

/// Answers 404 for paths that match no route.
pub(crate) async fn not_found() -> ApiError {
    crate::extract::no_such_route()
}

/// Answers 405 for a known path with a method it does not serve.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        plinth_core::ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    use super::{new_request_id, sane};

    #[test]
    fn fresh_request_ids_are_distinct_uuidv7s_of_now() {
        let mut seen = std::collections::HashSet::new();
        let before = std::time::SystemTime::now();
        for _ in 0..10_000 {
            let id = new_request_id();
            assert!(sane(&id), "{id}");
            let uuid = uuid::Uuid::try_parse(&id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            let (secs, _) = uuid.get_timestamp().expect("a timestamp").to_unix();
            let since = before
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970");
            assert!(secs + 1 >= since.as_secs(), "{id}");
            assert!(seen.insert(id.to_string()), "a repeated id");
        }
    }

    #[test]
    fn request_ids() {
        assert!(sane("abc-123_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("a b"));
        assert!(!sane("a\"b"));
        assert!(!sane(&"a".repeat(129)));
    }
}

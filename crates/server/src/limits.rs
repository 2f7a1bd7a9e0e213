//! Per-request limits, applied by the request middleware: the size of the head (414, 431),
//! the time from the head to the answer (408 when the client was still sending its body,
//! 503 when the server was slow), a body that stops arriving (408 after the body-idle
//! timeout), and `Connection: close` on any answer that leaves part of the body unread, so
//! a keep-alive client knows the connection ends (RFC 9112 §9.6).

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use plinth_core::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Longest request target (path and query) accepted: 64,000 bytes, so a filter value the
/// list query refuses by its own bounds gets that 400, which names the filter; longer
/// answers 414. (hyper refuses targets over 65,534 bytes itself.)
pub(crate) const MAX_URI_BYTES: usize = 64_000;

/// Largest total of header names and values accepted: 32 KiB; more answers 431.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Most header lines accepted; more answers 431.
pub(crate) const MAX_HEADERS: usize = 100;

/// The limits the request middleware applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLimits {
    /// From the head to the answer.
    pub(crate) request_timeout: Duration,
    /// How long the application may wait for the next part of a body before it answers 408
    /// and closes the connection (the header-read timeout).
    pub(crate) body_idle_timeout: Duration,
    /// The largest body accepted.
    pub(crate) body_limit: usize,
    /// The largest `multipart/form-data` body accepted (uploads; parts checked as read).
    pub(crate) upload_limit: u64,
    /// The largest body of a batch write (`POST /api/v1/{model}/batch`).
    pub(crate) batch_body_limit: usize,
}

impl RequestLimits {
    /// The largest body accepted for a request to `uri` with `method`.
    pub(crate) fn body_limit_of(&self, method: &Method, uri: &Uri) -> usize {
        if method == Method::POST && is_batch_path(uri.path()) {
            self.batch_body_limit
        } else {
            self.body_limit
        }
    }
}

/// Whether `path` is a batch write's: `/api/v1/{model}/batch`.
pub(crate) fn is_batch_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/")
        .and_then(|rest| rest.strip_suffix("/batch"))
        .is_some_and(|model| !model.is_empty() && !model.contains('/'))
}

/// Refuses a head over the limits, with the envelope; and a body whose `Content-Length`
/// is over the body limit, before any of it is read.
pub(crate) fn check_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    limits: &RequestLimits,
) -> Result<(), ApiError> {
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::new(
            ErrorCode::UriTooLong,
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("the request headers exceed {MAX_HEADERS} fields or {MAX_HEADER_BYTES} bytes"),
        ));
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .get(..19)
                .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"))
        });
    let limit = if multipart {
        limits.upload_limit
    } else {
        limits.body_limit_of(method, uri) as u64
    };
    if length.is_some_and(|n| n > limit) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server accepts",
        ));
    }
    Ok(())
}

/// Nothing of the body has been asked for yet.
const UNREAD: u8 = 0;
/// The last read of the body is waiting for the client.
const WAITING: u8 = 1;
/// Part of the body has been read, and more is there to read.
const READING: u8 = 2;
/// The body has been read to its end (or there was none).
const DONE: u8 = 3;
/// No part of the body arrived within the body-idle timeout; the request was abandoned.
const STALLED: u8 = 4;

/// How far the application has read a request's body. The connection (`crate::serve`)
/// puts one in the request's extensions and reads it too: at the connection cap, a
/// connection waiting on a slow body may be closed to make room.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyProgress(Arc<AtomicU8>);

impl BodyProgress {
    /// Wraps the body of `req` so its reading is tracked (on the connection's
    /// `BodyProgress` when it has one), and abandoned after `idle` with no new part.
    pub(crate) fn watch(req: Request, idle: Duration) -> (Request, Self) {
        let (parts, body) = req.into_parts();
        let state = if hyper::body::Body::is_end_stream(&body) {
            DONE
        } else {
            UNREAD
        };
        let progress = parts.extensions.get::<Self>().cloned().unwrap_or_default();
        progress.0.store(state, Ordering::Release);
        if state == DONE {
            // No body (a GET, say): nothing to track, and no boxed wrapper to pay for.
            return (Request::from_parts(parts, body), progress);
        }
        let body = Body::new(Tracked {
            inner: body,
            progress: progress.clone(),
            idle,
            timer: None,
        });
        (Request::from_parts(parts, body), progress)
    }

    /// Whether the body was read to its end.
    pub(crate) fn done(&self) -> bool {
        self.0.load(Ordering::Acquire) == DONE
    }

    /// Whether the application is waiting for the client to send more of the body.
    pub(crate) fn waiting(&self) -> bool {
        self.0.load(Ordering::Acquire) == WAITING
    }

    /// The answer to a request whose body stopped arriving for the body-idle timeout, if it
    /// did: 408 (the connection then closes, the body being unread).
    pub(crate) fn stalled(&self, idle: Duration) -> Option<ApiError> {
        (self.0.load(Ordering::Acquire) == STALLED).then(|| {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "no part of the request body arrived for {} s",
                    idle.as_secs_f64()
                ),
            )
        })
    }

    /// The answer to a request that ran past the request timeout: 408 when it was waiting
    /// for the client's body, 503 when the server itself was slow. A write abandoned by the
    /// timeout may still commit, so its 503 says the outcome is unknown.
    pub(crate) fn timed_out(&self, timeout: Duration, method: &Method) -> ApiError {
        if matches!(self.0.load(Ordering::Acquire), WAITING | STALLED) {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
        } else {
            let message = if method.is_safe() {
                "the request took too long to answer; retry shortly"
            } else {
                "the request took too long to answer and its outcome is unknown: it may still \
                 be applied; retry a create with the same Idempotency-Key, or read the record \
                 before retrying a change"
            };
            ApiError::new(ErrorCode::Unavailable, message).with_cause(format!(
                "no answer within the request timeout ({} ms)",
                timeout.as_millis()
            ))
        }
    }

    /// Adds `Connection: close` to `res` when the body was not read to its end: the
    /// connection cannot carry another request, and the client must know it.
    pub(crate) fn close_if_unread(&self, res: &mut Response) {
        if !self.done() {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// A request body that reports its reading to a [`BodyProgress`], and fails once the
/// client has sent nothing for `idle` while the application waited for it.
struct Tracked {
    inner: Body,
    progress: BodyProgress,
    idle: Duration,
    /// Runs while the application waits for the next part; reset by each part.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.progress.0.load(Ordering::Acquire) == STALLED {
            return Poll::Ready(Some(Err(axum::Error::new("the request body stalled"))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_pending() {
            let idle = self.idle;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
            if timer.as_mut().poll(cx).is_ready() {
                self.progress.0.store(STALLED, Ordering::Release);
                return Poll::Ready(Some(Err(axum::Error::new("the request body stalled"))));
            }
        } else {
            self.timer = None;
        }
        let state = match &polled {
            Poll::Pending => WAITING,
            Poll::Ready(None) => DONE,
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => DONE,
            Poll::Ready(Some(Ok(_))) => READING,
            // A broken body is not "read to its end": the connection must close.
            Poll::Ready(Some(Err(_))) => UNREAD,
        };
        self.progress.0.store(state, Ordering::Release);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

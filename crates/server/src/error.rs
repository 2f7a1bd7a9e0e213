//! `ApiError`: every failure the HTTP layer answers with, and the one table that turns an
//! [`ErrorCode`] into an HTTP status.
//!
//! `ApiError::into_response` does not write the body: it attaches an [`ErrorReport`] to the
//! response, and the request middleware (which knows the request id) renders the envelope
//! and logs internal causes once, inside the request span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::{Denial, ErrorCode, FieldError};
use plinth_store::StoreError;
use std::sync::Arc;

/// The HTTP status of each error code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
        ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error answer: code, message for the client, per-field details, and (for 5xx) the
/// cause, which is logged and never sent.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
    details: Vec<FieldError>,
    cause: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and a client-facing message.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            cause: None,
            retry_after: None,
        }
    }

    /// `INVALID_INPUT` naming one field.
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            ErrorCode::InvalidInput,
            format!("invalid {field}: {reason}"),
        )
        .with_details(vec![FieldError::new(field, reason)])
    }

    /// `INTERNAL` with a cause for the log; the client sees only the code.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(ErrorCode::Internal, "internal error")
        }
    }

    /// `INTERNAL` whose logged cause is `e` and its sources, outermost first, joined by
    /// `: ` (a source whose text the one before already ends with is left out).
    pub(crate) fn internal_chain(e: &(dyn std::error::Error + 'static)) -> Self {
        Self::internal(error_chain(e))
    }

    /// `NOT_FOUND` for a record.
    pub(crate) fn record_not_found() -> Self {
        Self::new(ErrorCode::NotFound, "record not found")
    }

    /// The error of item `index` of a batch: its details' fields are put under
    /// `items[index].`, and a client error without details names the item itself. A server
    /// error is left as it is (it says nothing of the request).
    pub(crate) fn at_item(mut self, index: usize) -> Self {
        if !status_of(self.code).is_client_error() {
            return self;
        }
        let at = format!("items[{index}]");
        if self.details.is_empty() {
            self.details
                .push(FieldError::new(&at, self.message.clone()));
        } else {
            for d in &mut self.details {
                d.field = format!("{at}.{}", d.field);
            }
        }
        self.message = format!("{at}: {}", self.message);
        self
    }

    /// Adds a cause for the log (never sent).
    pub(crate) fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Adds per-field details.
    pub(crate) fn with_details(mut self, details: Vec<FieldError>) -> Self {
        self.details = details;
        self
    }

    /// Sets the `Retry-After` header (whole seconds, at least 1).
    pub(crate) fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after.as_secs().max(1) + u64::from(after.subsec_nanos() > 0));
        self
    }
}

impl From<plinth_core::Error> for ApiError {
    fn from(e: plinth_core::Error) -> Self {
        let code = e.code();
        match e {
            plinth_core::Error::Invalid { message, details } => {
                Self::new(code, message).with_details(details)
            }
            plinth_core::Error::Denied(Denial::Unauthenticated) => {
                Self::new(code, "authentication required")
            }
            plinth_core::Error::Denied(Denial::Forbidden) => Self::new(code, "not allowed"),
            plinth_core::Error::Denied(Denial::Hidden) => Self::record_not_found(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = e.code();
        match e {
            StoreError::NotFound => Self::record_not_found(),
            StoreError::Conflict {
                field: Some(field),
                reason,
            } => Self::new(code, format!("conflict on {field}: {reason}"))
                .with_details(vec![FieldError::new(field, reason)]),
            StoreError::Conflict {
                field: None,
                reason,
            } => Self::new(code, reason),
            StoreError::InvalidReference { field } => {
                let reason = "references a record that does not exist";
                Self::new(code, format!("invalid {field}: {reason}"))
                    .with_details(vec![FieldError::new(field, reason)])
            }
            StoreError::UnknownFile { field } => {
                let reason = "names a file this record does not hold";
                Self::new(code, format!("invalid {field}: {reason}"))
                    .with_details(vec![FieldError::new(field, reason)])
            }
            StoreError::InvalidValue { reason } => Self::new(code, reason),
            StoreError::Stale { .. } => {
                Self::new(code, "the record has changed since the version in If-Match")
            }
            StoreError::Unavailable(cause)
            | StoreError::Contention(cause)
            | StoreError::InUse(cause) => Self {
                cause: Some(cause),
                ..Self::new(code, "the database is unavailable; retry shortly")
            },
            StoreError::Timeout(_) => Self::new(code, e.to_string()),
            StoreError::Forbidden => Self::new(code, "not allowed"),
            StoreError::Item { index, source } => Self::from(*source).at_item(index),
            StoreError::Migration(cause) => Self::internal(cause),
            StoreError::Internal(cause) => Self::internal_chain(&*cause),
        }
    }
}

/// An error and its sources as one line, outermost first.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What the middleware needs to render an error envelope.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    /// Wire code.
    pub(crate) code: ErrorCode,
    /// Client-facing message.
    pub(crate) message: String,
    /// Per-field details.
    pub(crate) details: Arc<Vec<FieldError>>,
    /// Internal cause, logged and never sent.
    pub(crate) cause: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let mut res = status.into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if matches!(self.code, ErrorCode::Unavailable | ErrorCode::RateLimited) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res.extensions_mut().insert(ErrorReport {
            code: self.code,
            message: self.message,
            details: Arc::new(self.details),
            cause: self.cause,
        });
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |source, text| {
                Some(Layer {
                    text,
                    source: source.map(Box::new),
                })
            })
            .expect("at least one layer")
    }

    #[test]
    fn an_internal_store_error_keeps_its_sources_for_the_log_only() {
        let e = StoreError::internal(layers(&["write failed", "disk I/O error", "no space"]));
        let res = ApiError::from(e).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = res.extensions().get::<ErrorReport>().expect("report");
        assert_eq!(report.message, "internal error");
        assert_eq!(
            report.cause.as_deref(),
            Some("write failed: disk I/O error: no space")
        );
        // A wrapper that repeats its source's text is not said twice.
        let repeated = layers(&["open: no such file", "no such file"]);
        assert_eq!(error_chain(&repeated), "open: no such file");
    }
}

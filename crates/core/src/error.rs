//! Domain errors and the stable error codes every layer speaks.

use std::fmt;

/// The stable, client-visible error codes of the API contract (DESIGN.md).
///
/// Every error type in Plinth says which of these it is; the HTTP layer owns the one table
/// that maps a code to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or fails validation.
    InvalidInput,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The principal may not do this.
    Forbidden,
    /// No such route or record.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The write clashes with existing state (unique value, idempotency key reuse).
    Conflict,
    /// A precondition (`If-Match`) does not hold: the record is not at a version named.
    PreconditionFailed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The client took too long to send its request.
    RequestTimeout,
    /// The request target (path and query) is longer than the server accepts.
    UriTooLong,
    /// The request's headers are larger, or more, than the server accepts.
    HeadersTooLarge,
    /// The `Range` asked for lies outside the file.
    RangeNotSatisfiable,
    /// Too many requests.
    RateLimited,
    /// A fault inside Plinth; the client sees nothing more.
    Internal,
    /// A dependency (the database) is unavailable or the server is draining.
    Unavailable,
}

impl ErrorCode {
    /// The wire spelling, e.g. `INVALID_INPUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "INVALID_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::RangeNotSatisfiable => "RANGE_NOT_SATISFIABLE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid input, named by field (or query parameter) with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field, query parameter or header at fault.
    pub field: String,
    /// Why it was refused, in words a client developer can act on.
    pub reason: String,
}

impl FieldError {
    /// A field error from anything string-like.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Why the access policy refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The request needs credentials it did not carry.
    Unauthenticated,
    /// The principal is known but not allowed.
    Forbidden,
    /// Not allowed, and saying so would reveal that the record exists.
    Hidden,
}

/// Errors of the domain layer: validation and policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Input failed validation; `details` has one entry per offending field.
    #[error("{message}")]
    Invalid {
        /// A summary for humans.
        message: String,
        /// One entry per invalid field.
        details: Vec<FieldError>,
    },
    /// The access policy refused the request.
    #[error("access denied")]
    Denied(Denial),
}

impl Error {
    /// An input error with a single offending field.
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let detail = FieldError::new(field, reason);
        Self::Invalid {
            message: format!("invalid {}: {}", detail.field, detail.reason),
            details: vec![detail],
        }
    }

    /// An input error listing several fields.
    pub fn invalid(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self::Invalid {
            message: message.into(),
            details,
        }
    }

    /// The client-visible code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::InvalidInput,
            Self::Denied(Denial::Unauthenticated) => ErrorCode::Unauthenticated,
            Self::Denied(Denial::Forbidden) => ErrorCode::Forbidden,
            Self::Denied(Denial::Hidden) => ErrorCode::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_have_their_wire_spelling() {
        let all = [
            (ErrorCode::InvalidInput, "INVALID_INPUT"),
            (ErrorCode::Unauthenticated, "UNAUTHENTICATED"),
            (ErrorCode::Forbidden, "FORBIDDEN"),
            (ErrorCode::NotFound, "NOT_FOUND"),
            (ErrorCode::MethodNotAllowed, "METHOD_NOT_ALLOWED"),
            (ErrorCode::Conflict, "CONFLICT"),
            (ErrorCode::PreconditionFailed, "PRECONDITION_FAILED"),
            (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
            (ErrorCode::UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
            (ErrorCode::RequestTimeout, "REQUEST_TIMEOUT"),
            (ErrorCode::UriTooLong, "URI_TOO_LONG"),
            (ErrorCode::HeadersTooLarge, "HEADERS_TOO_LARGE"),
            (ErrorCode::RangeNotSatisfiable, "RANGE_NOT_SATISFIABLE"),
            (ErrorCode::RateLimited, "RATE_LIMITED"),
            (ErrorCode::Internal, "INTERNAL"),
            (ErrorCode::Unavailable, "UNAVAILABLE"),
        ];
        for (code, wire) in all {
            assert_eq!(code.as_str(), wire);
            assert_eq!(code.to_string(), wire);
        }
    }
}

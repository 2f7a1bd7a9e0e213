//! `AuthError`: what authentication can fail with, and the one place it becomes an
//! [`ApiError`] (and so the error envelope).

use crate::error::ApiError;
use plinth_core::ErrorCode;
use plinth_store::StoreError;
use std::time::Duration;

/// A failure in `Auth`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credential is unknown, forged, tampered with, revoked or expired. One answer
    /// for all, so a caller learns nothing about which.
    #[error("invalid or expired credentials")]
    Refused,
    /// Over a rate limit; try again after the duration.
    #[error("too many requests; retry later")]
    RateLimited {
        /// How long until the window ends.
        retry_after: Duration,
    },
    /// The store failed while checking or recording a credential.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that must not fail did (no randomness, a hashing or encoding error).
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Refused => {
                ApiError::new(ErrorCode::Unauthenticated, "invalid or expired credentials")
            }
            AuthError::RateLimited { retry_after } => {
                ApiError::new(ErrorCode::RateLimited, "too many requests; retry later")
                    .with_retry_after(retry_after)
            }
            AuthError::Store(e) => e.into(),
            AuthError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorReport;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    #[test]
    fn each_auth_error_has_one_answer() {
        let refused = ApiError::from(AuthError::Refused).into_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let report = refused.extensions().get::<ErrorReport>().expect("a report");
        assert_eq!(report.message, "invalid or expired credentials");
        let limited = ApiError::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(2500),
        })
        .into_response();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "3");
        let internal = ApiError::from(AuthError::internal("no randomness")).into_response();
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = internal
            .extensions()
            .get::<ErrorReport>()
            .expect("a report");
        assert_eq!(report.message, "internal error", "the cause is not sent");
        assert_eq!(report.cause.as_deref(), Some("no randomness"));
        let conflict = ApiError::from(AuthError::Store(StoreError::NotFound)).into_response();
        assert_eq!(conflict.status(), StatusCode::NOT_FOUND);
    }
}

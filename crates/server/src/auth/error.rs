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

//! The fault switch, compiled only with the `faults` cargo feature, which only test builds
//! enable (the crate's own dev-dependencies): a request carrying
//! `X-Plinth-Fault: error` answers 500, one carrying `X-Plinth-Fault: sleep=<ms>` is held
//! that long (at most [`MAX_SLEEP`]) before it runs. Tests drive real 5xx answers and real
//! slow ones through the whole middleware with it. The release binary has no such code.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderName};
use std::time::Duration;

/// The header that asks for a fault.
pub(crate) static X_PLINTH_FAULT: HeaderName = HeaderName::from_static("x-plinth-fault");

/// The longest sleep a fault may ask for.
const MAX_SLEEP: Duration = Duration::from_secs(10);

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer 500.
    Error,
    /// Wait this long, then run the request.
    Sleep(Duration),
}

impl Fault {
    /// The fault `headers` ask for, if any (an unreadable value asks for none).
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let v = headers.get(&X_PLINTH_FAULT)?.to_str().ok()?;
        if v == "error" {
            return Some(Self::Error);
        }
        let ms: u64 = v.strip_prefix("sleep=")?.parse().ok()?;
        Some(Self::Sleep(Duration::from_millis(ms).min(MAX_SLEEP)))
    }

    /// Applies the fault asked for, if any: `Some` answer to send instead of running the
    /// request.
    pub(crate) async fn apply(fault: Option<Self>) -> Option<ApiError> {
        match fault? {
            Self::Error => Some(ApiError::internal("fault injected by X-Plinth-Fault")),
            Self::Sleep(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

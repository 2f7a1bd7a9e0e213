//! The open streams of this instance, counted in total and per principal: the place where
//! a stream is admitted, and where the limits are checked: `realtime.max_per_principal`
//! (a user's streams from all their sessions and keys together, or a guest's by client
//! address, an IPv6 address by its /64) and `realtime.max_total`.

use crate::auth::address_bucket;
use crate::error::ApiError;
use crate::metrics::RealtimeMetrics;
use plinth_core::{ErrorCode, Principal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What a refused client is told to wait. A place frees only when another stream ends, so
/// any figure is a guess; a few seconds keeps reconnecting clients from hammering.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The streams open now. A short lock per stream opened or closed, never held across an
/// await.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    /// Open streams by principal (`user:<id>`, or `guest:` and the address bucket).
    by: HashMap<String, usize>,
    /// Their sum.
    total: usize,
}

/// The limits a stream is admitted under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `realtime.max_per_principal`.
    pub(crate) per_principal: usize,
    /// `realtime.max_total`.
    pub(crate) total: usize,
}

/// One admitted stream, counted until dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    streams: Arc<Streams>,
    who: String,
    metrics: RealtimeMetrics,
}

/// The key a principal's streams are counted under; a guest's is its client address.
pub(crate) fn principal_key(principal: &Principal, address: &str) -> String {
    match principal.user_id() {
        Some(id) => format!("user:{id}"),
        None => format!("guest:{}", address_bucket(address)),
    }
}

impl Streams {
    /// Counts a stream of `who` in, within `limits`: past the total a `503 UNAVAILABLE`,
    /// past the principal's a `429 RATE_LIMITED`, both with `Retry-After`.
    pub(crate) fn admit(
        self: &Arc<Self>,
        who: String,
        limits: Limits,
        metrics: &RealtimeMetrics,
    ) -> Result<Admission, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= limits.total {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "this server holds as many change-feed streams as it may; retry later",
            )
            .with_retry_after(RETRY_AFTER));
        }
        let mine = open.by.entry(who.clone()).or_default();
        if *mine >= limits.per_principal {
            let held = *mine;
            if held == 0 {
                open.by.remove(&who);
            }
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("at most {held} open change-feed streams per caller; close one first"),
            )
            .with_retry_after(RETRY_AFTER));
        }
        *mine += 1;
        open.total += 1;
        metrics.subscriptions.inc();
        Ok(Admission {
            streams: Arc::clone(self),
            who,
            metrics: metrics.clone(),
        })
    }

    /// Streams open now: in all, and of `who`.
    #[cfg(test)]
    pub(crate) fn count(&self, who: &str) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.total, open.by.get(who).copied().unwrap_or(0))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.by.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                open.by.remove(&self.who);
            }
        }
        open.total = open.total.saturating_sub(1);
        self.metrics.subscriptions.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use plinth_core::Role;
    use uuid::Uuid;

    const WIDE: Limits = Limits {
        per_principal: 16,
        total: 100,
    };

    #[test]
    fn streams_are_counted_until_dropped() {
        let streams = Arc::new(Streams::default());
        let metrics = RealtimeMetrics::default();
        let admit = |who: &str| streams.admit(who.to_owned(), WIDE, &metrics).expect("room");
        let a = admit("a");
        let b = admit("a");
        let c = admit("b");
        assert_eq!(streams.count("a"), (3, 2));
        assert_eq!(metrics.subscriptions.get(), 3);
        drop(a);
        drop(c);
        assert_eq!(streams.count("a"), (1, 1));
        assert_eq!(streams.count("b"), (1, 0));
        drop(b);
        assert_eq!(streams.count("a"), (0, 0));
        assert_eq!(metrics.subscriptions.get(), 0);
    }

    #[test]
    fn limits_refuse_per_principal_then_in_all_and_free_on_drop() {
        let streams = Arc::new(Streams::default());
        let metrics = RealtimeMetrics::default();
        let limits = Limits {
            per_principal: 2,
            total: 3,
        };
        let ada = Principal::user(Uuid::now_v7(), Role::User);
        let key = |p: &Principal, addr: &str| principal_key(p, addr);
        // A user counts as one wherever they connect from.
        let a = streams.admit(key(&ada, "10.0.0.1"), limits, &metrics);
        let b = streams.admit(key(&ada, "10.0.0.2"), limits, &metrics);
        let (a, b) = (a.expect("first"), b.expect("second"));
        let third = streams
            .admit(key(&ada, "10.0.0.3"), limits, &metrics)
            .expect_err("third")
            .into_response();
        assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(third.headers()["retry-after"], "5");
        // Guests count by address, an IPv6 /64 as one.
        let guest = Principal::guest();
        let g = streams
            .admit(key(&guest, "2001:db8::1"), limits, &metrics)
            .expect("a guest");
        let full = streams
            .admit(key(&guest, "10.9.9.9"), limits, &metrics)
            .expect_err("the total")
            .into_response();
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.headers()["retry-after"], "5");
        drop(a);
        let c = streams
            .admit(key(&ada, "10.0.0.3"), limits, &metrics)
            .expect("a place freed");
        drop((b, c, g));
        assert_eq!(streams.count("").0, 0);
        assert_eq!(metrics.subscriptions.get(), 0);
        let same = |addr| streams.admit(key(&guest, addr), limits, &metrics);
        let (_x, _y) = (
            same("2001:db8::2").expect("one"),
            same("2001:db8::3").expect("two"),
        );
        assert!(same("2001:db8::4").is_err(), "the same /64");
    }
}

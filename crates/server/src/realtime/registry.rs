//! The open streams of this instance, counted in total and per principal: the place where
//! a stream is admitted, and where the per-principal and total limits
//! (`realtime.max_per_principal`, `realtime.max_total`) are to be checked.

use crate::metrics::RealtimeMetrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The streams open now. A short lock per stream opened or closed, never held across an
/// await.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    /// Open streams by principal (a user id, or `guest` and the client address).
    open: Mutex<HashMap<String, usize>>,
}

/// One admitted stream, counted until dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    streams: Arc<Streams>,
    who: String,
    metrics: RealtimeMetrics,
}

impl Streams {
    /// Counts a stream of `who` in.
    pub(crate) fn admit(self: &Arc<Self>, who: String, metrics: &RealtimeMetrics) -> Admission {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        *open.entry(who.clone()).or_default() += 1;
        metrics.subscriptions.inc();
        Admission {
            streams: Arc::clone(self),
            who,
            metrics: metrics.clone(),
        }
    }

    /// Streams open now: in all, and of `who`.
    #[cfg(test)]
    pub(crate) fn count(&self, who: &str) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.values().sum(), open.get(who).copied().unwrap_or(0))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.who);
            }
        }
        self.metrics.subscriptions.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_until_dropped() {
        let streams = Arc::new(Streams::default());
        let metrics = RealtimeMetrics::default();
        let a = streams.admit("a".to_owned(), &metrics);
        let b = streams.admit("a".to_owned(), &metrics);
        let c = streams.admit("b".to_owned(), &metrics);
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
}

//! The change feed's metrics: open streams, events sent, streams ended by the server.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A label set of one label.
type Reason = [(&'static str, &'static str); 1];

/// The handles the streams record into (clones share the same series).
#[derive(Debug, Clone, Default)]
pub(crate) struct RealtimeMetrics {
    /// Streams open now.
    pub(crate) subscriptions: Gauge,
    /// Change events written to streams (control events and heartbeats not counted).
    pub(crate) events_sent: Counter,
    cut: Family<Reason, Counter>,
}

impl RealtimeMetrics {
    /// Registers the series; every reason a stream can be ended for shows from the start.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "plinth_realtime_subscriptions",
            "Change-feed streams open on this instance",
            metrics.subscriptions.clone(),
        );
        registry.register(
            "plinth_realtime_events_sent",
            "Change events written to change-feed streams",
            metrics.events_sent.clone(),
        );
        for reason in crate::realtime::EndReason::ALL {
            let _ = metrics.cut.get_or_create(&[("reason", reason.as_str())]);
        }
        registry.register(
            "plinth_realtime_subscribers_cut",
            "Change-feed streams the server ended, by reason",
            metrics.cut.clone(),
        );
        metrics
    }

    /// Counts a stream ended by the server for `reason`.
    pub(crate) fn cut(&self, reason: crate::realtime::EndReason) {
        self.cut.get_or_create(&[("reason", reason.as_str())]).inc();
    }
}

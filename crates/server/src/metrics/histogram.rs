//! `Timing`: a latency histogram of atomics. prometheus-client's own histogram takes a mutex
//! on every observation, which all requests to one route would share; here an observation
//! is two atomic adds and nothing waits.

use super::DURATION_BUCKETS;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Observations per bucket of [`DURATION_BUCKETS`] (not cumulative; the last one counts
/// what is above them all), and their sum in nanoseconds. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timing(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Timing {
    /// Counts one observation of `d`.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for Timing {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Timing {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        let mut buckets = [(0.0, 0); DURATION_BUCKETS.len() + 1];
        let mut count = 0;
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n = self.0.buckets[i].load(Ordering::Relaxed);
            count += n;
            *slot = (DURATION_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n);
        }
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn observations_land_in_the_smallest_bucket_that_holds_them() {
        let t = Timing::default();
        for micros in [100, 500, 501, 3_000, 7_000_000] {
            t.observe(Duration::from_micros(micros));
        }
        let mut registry = Registry::default();
        registry.register("t", "test", t.clone());
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("encodes");
        for line in [
            "t_bucket{le=\"0.0005\"} 2\n",
            "t_bucket{le=\"0.001\"} 3\n",
            "t_bucket{le=\"0.005\"} 4\n",
            "t_bucket{le=\"5\"} 4\n",
            "t_bucket{le=\"+Inf\"} 5\n",
            "t_sum 7.004101\n",
            "t_count 5\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }
}

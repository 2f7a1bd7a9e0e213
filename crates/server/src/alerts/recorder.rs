//! The recorder: what the request middleware tells the alerts about each answer, kept as a
//! ring of time buckets covering the window.
//!
//! Invariant: recording never takes a lock and never allocates. A bucket is a set of
//! atomics; the first request of a new bucket period claims the slot (a compare-and-swap
//! of its period) and clears it. A request counted in the instant between the claim and the
//! clearing is lost: counts are exact but for such rare races at bucket boundaries.
//!
//! The same ring, read bucket by bucket ([`Recorder::series`]), is the request rate, error
//! rate and p99 chart of `GET /api/v1/metrics/series`: buckets start on multiples of their
//! length in wall-clock time, so a chart's ticks fall on round times.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upper bounds of the latency histogram's buckets, in milliseconds; a last bucket holds
/// everything slower. The p99 is estimated from these (see [`Window::p99`]).
pub(crate) const LATENCY_BOUNDS_MS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/// Buckets per window: the window slides by a sixtieth of its length.
pub(crate) const BUCKETS_PER_WINDOW: u32 = 60;

/// The shortest bucket, whatever the window.
const MIN_BUCKET: Duration = Duration::from_millis(10);

/// One bucket: the answers of one period of `bucket` length.
#[derive(Debug)]
struct Slot {
    /// The period this slot holds (periods since `Recorder::start`, plus one: 0 is empty).
    period: AtomicU64,
    requests: AtomicU64,
    /// Answers with a status of 500 or more.
    errors: AtomicU64,
    /// Answers per latency bucket; the last is past every bound.
    latency: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
}

impl Slot {
    fn new() -> Self {
        Self {
            period: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Counts of answers over a rolling window, fed once per request.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// The start of period 1, on a multiple of `bucket` since the Unix epoch.
    start: Instant,
    /// `start` on the wall clock.
    wall_start: SystemTime,
    bucket: Duration,
    /// One slot per bucket of the window, plus the one being filled.
    slots: Box<[Slot]>,
}

impl Recorder {
    /// A recorder for a window of `window`.
    pub(crate) fn new(window: Duration) -> Self {
        let bucket = (window / BUCKETS_PER_WINDOW).max(MIN_BUCKET);
        let buckets = window.as_nanos().div_ceil(bucket.as_nanos()).max(1);
        let len = usize::try_from(buckets)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let (start, wall_start) = aligned(Instant::now(), SystemTime::now(), bucket);
        Self {
            start,
            wall_start,
            bucket,
            slots: (0..len).map(|_| Slot::new()).collect(),
        }
    }

    /// How long each bucket (each point of [`Self::series`]) lasts.
    pub(crate) fn bucket(&self) -> Duration {
        self.bucket
    }

    /// The period `at` falls in, plus one (so that 0 means an empty slot).
    fn period(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.start).as_nanos();
        u64::try_from(since / self.bucket.as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn slot(&self, period: u64) -> &Slot {
        let len = self.slots.len() as u64;
        &self.slots[(period % len) as usize]
    }

    /// Counts one answer with its status and how long it took, now.
    #[cfg(test)]
    pub(crate) fn record(&self, status: u16, latency: Duration) {
        self.record_at(Instant::now(), status, latency);
    }

    /// Counts one answer, sent at `at` (the middleware's clock reading, saving a second
    /// one), with its status and how long it took.
    pub(crate) fn record_at(&self, at: Instant, status: u16, latency: Duration) {
        let period = self.period(at);
        let slot = self.slot(period);
        let held = slot.period.load(Ordering::Acquire);
        if held != period
            && slot
                .period
                .compare_exchange(held, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This request claimed the slot for its period: clear what an old one left.
            slot.requests.store(0, Ordering::Relaxed);
            slot.errors.store(0, Ordering::Relaxed);
            for n in &slot.latency {
                n.store(0, Ordering::Relaxed);
            }
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_MS.partition_point(|&bound| bound < ms);
        slot.latency[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The answers of the last window (the buckets of its length, the current one
    /// included), as of now.
    pub(crate) fn window(&self) -> Window {
        self.window_at(Instant::now())
    }

    fn window_at(&self, at: Instant) -> Window {
        let now = self.period(at);
        // The current bucket is being filled; the window is the buckets before it that fit.
        let oldest = now.saturating_sub(self.slots.len() as u64 - 1);
        let mut w = Window::default();
        for slot in self.slots.iter() {
            let period = slot.period.load(Ordering::Acquire);
            if period == 0 || period < oldest.max(1) || period > now {
                continue;
            }
            w.requests += slot.requests.load(Ordering::Relaxed);
            w.errors += slot.errors.load(Ordering::Relaxed);
            for (sum, n) in w.latency.iter_mut().zip(&slot.latency) {
                *sum += n.load(Ordering::Relaxed);
            }
        }
        w
    }
}

/// The start of the bucket `(now, wall)` falls in: both clocks moved back by how far `wall`
/// is past a multiple of `bucket` since the epoch (not at all if `now` cannot go back that
/// far, as just after boot).
fn aligned(now: Instant, wall: SystemTime, bucket: Duration) -> (Instant, SystemTime) {
    let since = wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let past = u64::try_from(since % bucket.as_nanos()).unwrap_or(0);
    let past = Duration::from_nanos(past);
    match (now.checked_sub(past), wall.checked_sub(past)) {
        (Some(start), Some(wall_start)) => (start, wall_start),
        _ => (now, wall),
    }
}

/// One bucket of [`Recorder::series`]: when it started on the wall clock, and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) at: SystemTime,
    pub(crate) counts: Window,
}

impl Recorder {
    /// The window bucket by bucket, oldest first, as of now: one point per bucket of the
    /// window's length, the current (partial) one last. Buckets nothing was recorded in
    /// (before the recorder existed, say) count zero.
    pub(crate) fn series(&self) -> Vec<Point> {
        self.series_at(Instant::now())
    }

    /// [`Self::series`] as of `at`.
    pub(crate) fn series_at(&self, at: Instant) -> Vec<Point> {
        let now = self.period(at);
        let points = self.slots.len() as u64 - 1;
        // Periods are counted from 1 at `start`; the oldest may predate it.
        let first = i128::from(now) - i128::from(points) + 1;
        (0..points)
            .map(|i| {
                let period = first + i128::from(i);
                Point {
                    at: self.period_start(period),
                    counts: u64::try_from(period)
                        .ok()
                        .and_then(|p| self.counts_of(p))
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The wall-clock start of `period` (which may be before period 1).
    fn period_start(&self, period: i128) -> SystemTime {
        let steps = period - 1;
        let offset = |n: i128| {
            let nanos =
                u64::try_from(n.unsigned_abs() * self.bucket.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(nanos)
        };
        if steps >= 0 {
            self.wall_start
                .checked_add(offset(steps))
                .unwrap_or(self.wall_start)
        } else {
            self.wall_start
                .checked_sub(offset(steps))
                .unwrap_or(self.wall_start)
        }
    }

    /// The counts of `period`'s slot, if the slot holds that period.
    fn counts_of(&self, period: u64) -> Option<Window> {
        let slot = self.slot(period);
        if period == 0 || slot.period.load(Ordering::Acquire) != period {
            return None;
        }
        let mut w = Window {
            requests: slot.requests.load(Ordering::Relaxed),
            errors: slot.errors.load(Ordering::Relaxed),
            ..Window::default()
        };
        for (sum, n) in w.latency.iter_mut().zip(&slot.latency) {
            *sum = n.load(Ordering::Relaxed);
        }
        Some(w)
    }
}

/// The counts of one window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// Answers.
    pub(crate) requests: u64,
    /// Answers with a status of 500 or more.
    pub(crate) errors: u64,
    /// Answers per latency bucket (bounds [`LATENCY_BOUNDS_MS`], then the overflow).
    pub(crate) latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
}

impl Window {
    /// The share of answers that were 5xx, from 0 to 1 (0 with no answers).
    pub(crate) fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// The 99th percentile of latency, in milliseconds, estimated as Prometheus's
    /// `histogram_quantile` does: linear within the bucket that holds it. One past the last
    /// bound reads as the last bound. `None` with no answers.
    pub(crate) fn p99(&self) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = 0.99 * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.latency.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else {
                    return LATENCY_BOUNDS_MS.last().map(|&b| b as f64);
                };
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
                let within = (rank - below as f64) / n as f64;
                return Some(lower as f64 + (upper - lower) as f64 * within);
            }
            below += n;
        }
        LATENCY_BOUNDS_MS.last().map(|&b| b as f64)
    }
}

#[cfg(test)]
impl Recorder {
    /// Counts an answer as if it came `ahead` from now.
    pub(crate) fn record_ahead(&self, ahead: Duration, status: u16, latency: Duration) {
        self.record_at(Instant::now() + ahead, status, latency);
    }

    /// The window as it will be `ahead` from now (to test sliding without sleeping).
    pub(crate) fn window_ahead(&self, ahead: Duration) -> Window {
        self.window_at(Instant::now() + ahead)
    }
}

//! Open-loop load at a fixed rate, and the soak built on it.
//!
//! Request i of a workload is sent at `start + i / rate` from a task of its own, answered
//! or not the earlier ones (the scheduling of `fanout`'s writes, here for every workload).
//! Its latency runs from that SCHEDULED time, not from when the request left: a server
//! that stalls, or a load generator that falls behind, shows as long latencies instead of
//! as fewer requests (no coordinated omission). The schedule is kept by a thread of its
//! own sleeping to each send time, not by the runtime's timer, whose millisecond ticks
//! would send every request up to a millisecond late and count that as the server's; how
//! late the bench itself sent (its send lag) is reported beside the latencies. In-flight requests are capped; a request
//! due while the cap is reached is not delayed but counted as an `overflow` error, and a
//! request unanswered after [`REQUEST_TIMEOUT`] is a transport error.
//! Its figures and their tables are in `report`; the soak built on it is `crate::soak`.

mod report;

pub(crate) use report::write_header;
pub use report::{RateFigures, RateReport};

use crate::{Req, Target, mix64, new_histogram};
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a request may stay unanswered before it counts as a transport error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A workload of the fixed-rate mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Get one record by id.
    GetOne,
    /// The filtered, sorted list.
    List,
    /// Create a record.
    Create,
    /// 70 % gets, 20 % lists, 10 % creates.
    Mixed,
    /// 90 % gets, 10 % creates.
    ReadWrite,
}

impl Workload {
    /// Every workload, in run order.
    pub const ALL: [Workload; 5] = [
        Workload::GetOne,
        Workload::List,
        Workload::Create,
        Workload::Mixed,
        Workload::ReadWrite,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::GetOne => "get_one",
            Workload::List => "list",
            Workload::Create => "create",
            Workload::Mixed => "mixed",
            Workload::ReadWrite => "read_write",
        }
    }

    /// The workload called `name`, if any.
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Percentage of gets and of lists; the rest are creates.
    fn mix(self) -> [u64; 2] {
        match self {
            Workload::GetOne => [100, 0],
            Workload::List => [0, 100],
            Workload::Create => [0, 0],
            Workload::Mixed => [70, 20],
            Workload::ReadWrite => [90, 0],
        }
    }

    /// Whether it both reads and writes (and so is reported for each apart).
    fn is_mix(self) -> bool {
        let [get, list] = self.mix();
        get + list > 0 && get + list < 100
    }

    /// The request its i-th send makes.
    fn request(self, i: u64) -> Req {
        let [get, list] = self.mix();
        let roll = mix64(i ^ 0xA5A5) % 100;
        if roll < get {
            Req::Get
        } else if roll < get + list {
            Req::List
        } else {
            Req::Create
        }
    }
}

/// The shape of a fixed-rate run.
#[derive(Debug, Clone)]
pub struct RateOptions {
    /// Requests scheduled per second.
    pub rate: u32,
    /// How long each workload is scheduled.
    pub duration: Duration,
    /// The workloads, run one after another.
    pub workloads: Vec<Workload>,
    /// Requests in flight at most; one due beyond it is an `overflow` error.
    pub max_in_flight: usize,
}

impl RateOptions {
    /// Requests scheduled per workload: the rate times the duration, at least one.
    pub fn total(&self) -> u64 {
        let n = f64::from(self.rate) * self.duration.as_secs_f64();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = n.round() as u64;
        n.max(1)
    }
}

/// What happened to one scheduled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx answer, body read.
    Ok,
    /// Any other status.
    Status,
    /// No answer: connection failure, reset, or [`REQUEST_TIMEOUT`].
    Transport,
}

/// One side (reads or writes) of a tally.
#[derive(Debug, Clone)]
pub struct Side {
    /// Latency of 2xx answers, in µs, from the scheduled send time.
    pub latency: Histogram<u64>,
    /// Requests scheduled.
    pub scheduled: u64,
    /// Answers that were not 2xx.
    pub status_errors: u64,
    /// Requests with no answer (including timeouts).
    pub transport_errors: u64,
    /// Requests not sent because `max_in_flight` were in flight.
    pub overflow: u64,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            latency: new_histogram(),
            scheduled: 0,
            status_errors: 0,
            transport_errors: 0,
            overflow: 0,
        }
    }
}

impl Side {
    /// Every kind of error together.
    pub fn errors(&self) -> u64 {
        self.status_errors + self.transport_errors + self.overflow
    }

    /// Successful answers.
    pub fn ok(&self) -> u64 {
        self.latency.len()
    }

    fn add(&mut self, other: &Side) {
        let _ = self.latency.add(&other.latency);
        self.scheduled += other.scheduled;
        self.status_errors += other.status_errors;
        self.transport_errors += other.transport_errors;
        self.overflow += other.overflow;
    }

    /// The latency at `q` (0..=1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let micros = self.latency.value_at_quantile(q) as f64;
        micros / 1000.0
    }

    /// The slowest answer, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let micros = self.latency.max() as f64;
        micros / 1000.0
    }
}

/// Reads and writes of a run or of one window of it.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Gets and lists.
    pub reads: Side,
    /// Creates.
    pub writes: Side,
}

impl Tally {
    /// Reads and writes together.
    pub fn all(&self) -> Side {
        let mut all = self.reads.clone();
        all.add(&self.writes);
        all
    }

    fn side(&mut self, req: Req) -> &mut Side {
        match req {
            Req::Get | Req::List => &mut self.reads,
            Req::Create | Req::Update => &mut self.writes,
        }
    }
}

/// Gathers outcomes, as a whole and per window of scheduled time; its size does not grow
/// with the number of requests (the soak's embedded server shares the bench's process, so
/// the bench must not grow either).
#[derive(Debug)]
pub(crate) struct Recorder {
    window: Option<Duration>,
    total: Tally,
    windows: Vec<Tally>,
    /// How late each request left, in µs, behind its scheduled time.
    lag: Histogram<u64>,
}

impl Recorder {
    /// The whole run's tally so far.
    pub(crate) fn total(&self) -> &Tally {
        &self.total
    }

    pub(crate) fn new(window: Option<Duration>) -> Self {
        Recorder {
            window,
            total: Tally::default(),
            windows: Vec::new(),
            lag: new_histogram(),
        }
    }

    /// Records how late a request left behind its scheduled time.
    fn lagged(&mut self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        let _ = self.lag.record(micros.max(1));
    }

    /// Records a request scheduled `offset` after the start: answered `Ok` after `latency`,
    /// or failed as `outcome`, or (`None`) not sent for overflow.
    fn record(&mut self, offset: Duration, req: Req, outcome: Option<(Outcome, Duration)>) {
        let index = self.window.map(|w| {
            let n = offset.as_nanos() / w.as_nanos().max(1);
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        if let Some(i) = index
            && self.windows.len() <= i
        {
            self.windows.resize_with(i + 1, Tally::default);
        }
        let mut targets = vec![&mut self.total];
        if let Some(i) = index {
            targets.push(&mut self.windows[i]);
        }
        for tally in targets {
            let side = tally.side(req);
            side.scheduled += 1;
            match outcome {
                Some((Outcome::Ok, took)) => {
                    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                    let _ = side.latency.record(micros.max(1));
                }
                Some((Outcome::Status, _)) => side.status_errors += 1,
                Some((Outcome::Transport, _)) => side.transport_errors += 1,
                None => side.overflow += 1,
            }
        }
    }
}

/// Sends `total` requests, the i-th at `start + i / rate` from its own task, at most
/// `max_in_flight` at once; `send(i)` names the request and makes its future. Returns when
/// every sent request is answered or timed out, and how long that took.
pub(crate) async fn open_loop<F, Fut>(
    rate: f64,
    total: u64,
    max_in_flight: usize,
    recorder: &Arc<Mutex<Recorder>>,
    send: F,
) -> Duration
where
    F: Fn(u64) -> (Req, Fut),
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let cap = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    let start = Instant::now();
    let period = 1.0 / rate.max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let offset = move |i: u64| Duration::from_secs_f64(period * i as f64);
    // The pacer: each send's index at its time, to the loop below, which wakes at once.
    let (due, mut next) = tokio::sync::mpsc::unbounded_channel();
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + offset(i);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            if due.send(i).is_err() {
                break;
            }
        }
    });
    while let Some(i) = next.recv().await {
        let offset = offset(i);
        let at = start + offset;
        let (req, answer) = send(i);
        let lag = at.elapsed();
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            lock(recorder).record(offset, req, None);
            continue;
        };
        lock(recorder).lagged(lag);
        let recorder = Arc::clone(recorder);
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(REQUEST_TIMEOUT, answer)
                .await
                .unwrap_or(Outcome::Transport);
            // From the scheduled time: a late send is the server's (or the bench's) delay.
            let took = at.elapsed();
            lock(&recorder).record(offset, req, Some((outcome, took)));
            drop(slot);
        });
    }
    let _ = pacer.join();
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    start.elapsed()
}

fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends one request of `target` and reads its answer.
async fn outcome(target: Arc<Target>, req: Req) -> Outcome {
    match target.send(req).await {
        Ok(res) if res.status().is_success() => match res.bytes().await {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Transport,
        },
        Ok(res) => {
            let _ = res.bytes().await;
            Outcome::Status
        }
        Err(_) => Outcome::Transport,
    }
}

/// Runs `workload` at `rate` for `total` requests against `target`, tallied per `window`.
pub(crate) async fn run_workload(
    target: &Arc<Target>,
    workload: Workload,
    rate: u32,
    total: u64,
    max_in_flight: usize,
    window: Option<Duration>,
) -> RateFigures {
    let recorder = Arc::new(Mutex::new(Recorder::new(window)));
    let elapsed = open_loop(f64::from(rate), total, max_in_flight, &recorder, |i| {
        let req = workload.request(i);
        (req, outcome(Arc::clone(target), req))
    })
    .await;
    let recorder = std::mem::replace(&mut *lock(&recorder), Recorder::new(None));
    RateFigures {
        workload,
        rate,
        elapsed,
        total: recorder.total,
        windows: recorder.windows,
        lag: recorder.lag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn recorder() -> Arc<Mutex<Recorder>> {
        Arc::new(Mutex::new(Recorder::new(None)))
    }

    fn total(recorder: &Arc<Mutex<Recorder>>) -> Tally {
        lock(recorder).total.clone()
    }

    /// A load generator held up (here: the first send blocks the only thread for 200 ms)
    /// sends the next requests late; their latency counts that wait from the scheduled
    /// time, instead of looking instant.
    #[tokio::test(flavor = "current_thread")]
    async fn latency_runs_from_the_scheduled_send_not_the_actual_one() {
        let rec = recorder();
        open_loop(100.0, 10, 100, &rec, |i| {
            if i == 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            (Req::Get, async { Outcome::Ok })
        })
        .await;
        let t = total(&rec);
        assert_eq!((t.reads.scheduled, t.reads.ok()), (10, 10));
        // Requests 1..=9 were due at 10..=90 ms and left after 200 ms: at least 110 ms each.
        assert!(t.reads.ms(0.5) >= 110.0, "p50 {} ms", t.reads.ms(0.5));
        // And that lateness is the bench's own, reported as its send lag.
        let held = lock(&rec);
        let lag = &held.lag;
        assert_eq!(lag.len(), 10);
        assert!(
            lag.value_at_quantile(0.5) >= 110_000,
            "lag p50 {} µs",
            lag.value_at_quantile(0.5)
        );
    }

    /// A server that answers nothing for 300 ms after the first request arrives still
    /// gets every request on schedule: the count is not reduced, and the stall shows as
    /// latency (the first request waits the whole stall).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_server_shows_as_latency_not_as_fewer_requests() {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(std::sync::Once::new());
        let app = axum::Router::new().route(
            "/api/v1/resource/{id}",
            axum::routing::get(move || {
                let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
                async move {
                    started.call_once(|| {
                        let release = Arc::clone(&gate);
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            release.add_permits(Semaphore::MAX_PERMITS / 2);
                        });
                    });
                    let _ = gate.acquire().await;
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let target = Arc::new(Target {
            client: reqwest::Client::new(),
            base,
            ids: vec!["one".to_owned()],
            counter: AtomicU64::new(0),
            all_features: false,
        });
        let figures = run_workload(&target, Workload::GetOne, 50, 20, 100, None).await;
        let all = figures.total.all();
        assert_eq!((all.scheduled, all.ok(), all.errors()), (20, 20, 0));
        // The first to arrive was due no later than it arrived, and answered 300 ms after.
        assert!(all.max_ms() >= 300.0, "max {} ms", all.max_ms());
        assert!(figures.achieved() > 0.0);
    }

    /// With two in flight and both held, the other eight are overflow (not delayed); the
    /// two answered count as a non-2xx and a transport error.
    #[tokio::test(flavor = "current_thread")]
    async fn overflow_non_2xx_and_transport_errors_are_counted_apart() {
        let gate = Arc::new(Semaphore::new(0));
        let rec = recorder();
        open_loop(1000.0, 10, 2, &rec, |i| {
            if i == 9 {
                // Let the two held ones finish once the schedule is through.
                gate.add_permits(2);
            }
            let gate = Arc::clone(&gate);
            let req = if i % 2 == 0 { Req::Get } else { Req::Create };
            (req, async move {
                let _ = gate.acquire().await;
                if matches!(req, Req::Get) {
                    Outcome::Status
                } else {
                    Outcome::Transport
                }
            })
        })
        .await;
        let t = total(&rec);
        assert_eq!(t.reads.scheduled + t.writes.scheduled, 10);
        assert_eq!((t.reads.status_errors, t.writes.transport_errors), (1, 1));
        assert_eq!(t.reads.overflow + t.writes.overflow, 8);
        assert_eq!(t.all().errors(), 10);
        assert_eq!(t.all().ok(), 0);
    }

    #[test]
    fn outcomes_fall_in_the_window_of_their_scheduled_time() {
        let mut r = Recorder::new(Some(Duration::from_secs(60)));
        let ok = Some((Outcome::Ok, Duration::from_millis(2)));
        r.record(Duration::from_secs(10), Req::Get, ok);
        r.record(Duration::from_secs(70), Req::Create, ok);
        r.record(Duration::from_secs(71), Req::Get, None);
        assert_eq!(r.windows.len(), 2);
        assert_eq!((r.windows[0].reads.ok(), r.windows[0].writes.ok()), (1, 0));
        assert_eq!(
            (r.windows[1].writes.ok(), r.windows[1].reads.overflow),
            (1, 1)
        );
        assert_eq!((r.total.reads.scheduled, r.total.writes.scheduled), (2, 1));
    }

    #[test]
    fn mixes_have_their_share_of_writes() {
        let writes = (0..1000)
            .filter(|&i| matches!(Workload::ReadWrite.request(i), Req::Create))
            .count();
        assert!((70..=130).contains(&writes), "{writes} writes in 1000");
        assert!(!(0..100).any(|i| matches!(Workload::ReadWrite.request(i), Req::List)));
        assert!(Workload::ReadWrite.is_mix() && Workload::Mixed.is_mix());
        assert!(!Workload::GetOne.is_mix() && !Workload::Create.is_mix());
        assert_eq!(Workload::parse("read_write"), Some(Workload::ReadWrite));
        assert_eq!(Workload::parse("nope"), None);
    }
}

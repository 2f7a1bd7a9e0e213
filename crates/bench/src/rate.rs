//! Open-loop load at a fixed rate, and the soak built on it.
//!
//! Request i of a workload is sent at `start + i / rate` from a task of its own, answered
//! or not the earlier ones (the scheduling of `fanout`'s writes, here for every workload).
//! Its latency runs from that SCHEDULED time, not from when the request left: a server
//! that stalls, or a load generator that falls behind, shows as long latencies instead of
//! as fewer requests (no coordinated omission). In-flight requests are capped; a request
//! due while the cap is reached is not delayed but counted as an `overflow` error, and a
//! request unanswered after [`REQUEST_TIMEOUT`] is a transport error.
//!
//! The soak runs `read_write` for a long time, tallies it per window (a minute) and samples
//! the server's resident memory from its own `/metrics` (`process_resident_memory_bytes`).

use crate::{BenchError, Req, Target, mix64, new_histogram};
use hdrhistogram::Histogram;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

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
            Req::Create => &mut self.writes,
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
        }
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
    for i in 0..total {
        #[allow(clippy::cast_precision_loss)]
        let offset = Duration::from_secs_f64(period * i as f64);
        let at = start + offset;
        tokio::time::sleep_until(at).await;
        let (req, answer) = send(i);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            lock(recorder).record(offset, req, None);
            continue;
        };
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
    }
}

/// The figures of one fixed-rate workload.
#[derive(Debug, Clone)]
pub struct RateFigures {
    /// Which workload.
    pub workload: Workload,
    /// The rate asked for.
    pub rate: u32,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
    /// The whole run.
    pub total: Tally,
    /// Per window of scheduled time, when windows were asked for.
    pub windows: Vec<Tally>,
}

impl RateFigures {
    /// 2xx answers per second over the run.
    pub fn achieved(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ok = self.total.all().ok() as f64;
        ok / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The header of the fixed-rate table.
pub(crate) fn write_header(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:<17} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7} {:>7} {:>9} {:>8}",
        "workload",
        "sent",
        "ok/s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p99.9_ms",
        "max_ms",
        "errors",
        "non2xx",
        "transport",
        "overflow"
    )
}

fn write_row(f: &mut fmt::Formatter<'_>, name: &str, side: &Side, rps: f64) -> fmt::Result {
    writeln!(
        f,
        "{:<17} {:>8} {:>8.0} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>9.3} {:>7} {:>7} {:>9} {:>8}",
        name,
        side.scheduled,
        rps,
        side.ms(0.50),
        side.ms(0.90),
        side.ms(0.99),
        side.ms(0.999),
        side.max_ms(),
        side.errors(),
        side.status_errors,
        side.transport_errors,
        side.overflow
    )
}

impl fmt::Display for RateFigures {
    /// One row, and for mixes a row for reads and one for writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.workload.name();
        write_row(f, name, &self.total.all(), self.achieved())?;
        if self.workload.is_mix() {
            let secs = self.elapsed.as_secs_f64().max(1e-9);
            for (part, side) in [("reads", &self.total.reads), ("writes", &self.total.writes)] {
                #[allow(clippy::cast_precision_loss)]
                let rps = side.ok() as f64 / secs;
                write_row(f, &format!("{name}.{part}"), side, rps)?;
            }
        }
        Ok(())
    }
}

/// The fixed-rate run's report.
#[derive(Debug, Clone)]
pub struct RateReport {
    /// Target server.
    pub url: String,
    /// The shape it ran with.
    pub options: RateOptions,
    /// Records seeded before.
    pub seeded: u64,
    /// One entry per workload, in run order.
    pub workloads: Vec<RateFigures>,
}

impl RateReport {
    /// Errors of every workload together.
    pub fn errors(&self) -> u64 {
        self.workloads.iter().map(|w| w.total.all().errors()).sum()
    }
}

impl fmt::Display for RateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plinth bench: {} at {} req/s for {} s per workload, open loop (at most {} in \
             flight, latency from the scheduled send), {} seeded records",
            self.url,
            self.options.rate,
            self.options.duration.as_secs_f64(),
            self.options.max_in_flight,
            self.seeded
        )?;
        write_header(f)?;
        for w in &self.workloads {
            write!(f, "{w}")?;
        }
        Ok(())
    }
}

/// The shape of a soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Requests per second of `read_write`.
    pub rate: u32,
    /// How long it runs.
    pub duration: Duration,
    /// Growth is measured from the first RSS sample at or after this.
    pub warmup: Duration,
    /// Between RSS samples.
    pub sample_every: Duration,
    /// Length of a latency window in the report.
    pub window: Duration,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Failure threshold: errors over requests scheduled, in percent.
    pub max_error_rate: f64,
    /// Failure threshold: RSS growth after warm-up, in percent.
    pub max_rss_growth: f64,
    /// Sent to `/metrics` when set; without it `/metrics` answers loopback peers only (the
    /// API credential is not sent there: the server takes a bearer on `/metrics` for the
    /// metrics token and refuses any other).
    pub metrics_token: Option<String>,
}

/// One RSS sample: seconds since the soak started, resident bytes.
pub type RssSample = (f64, u64);

/// What a soak measured.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Target server.
    pub url: String,
    /// The shape it ran with.
    pub options: SoakOptions,
    /// The `read_write` run, with one window per `options.window`.
    pub figures: RateFigures,
    /// The server's resident memory over time.
    pub rss: Vec<RssSample>,
    /// Why RSS samples failed, the first one, and how many.
    pub rss_failures: (u64, Option<String>),
}

impl SoakReport {
    /// Errors over requests scheduled, in percent.
    pub fn error_rate(&self) -> f64 {
        let all = self.figures.total.all();
        #[allow(clippy::cast_precision_loss)]
        let rate = all.errors() as f64 * 100.0 / (all.scheduled.max(1) as f64);
        rate
    }

    /// RSS growth after warm-up, in percent, when there are samples to compare.
    pub fn rss_growth(&self) -> Option<f64> {
        rss_growth(&self.rss, self.options.warmup.as_secs_f64())
    }

    /// `Ok` when within both thresholds, else every reason it is not.
    pub fn verdict(&self) -> Result<(), String> {
        verdict(
            self.error_rate(),
            self.options.max_error_rate,
            self.rss_growth(),
            self.options.max_rss_growth,
        )
    }

    /// The RSS series as CSV: a `seconds,rss_bytes` header, then one line per sample.
    pub fn rss_csv(&self) -> String {
        rss_csv(&self.rss)
    }
}

/// (last sample − first sample at or after `warmup`) / that sample, in percent; `None`
/// without a sample after warm-up and a later one.
pub fn rss_growth(samples: &[RssSample], warmup: f64) -> Option<f64> {
    let base = samples.iter().position(|(t, _)| *t >= warmup)?;
    let last = samples.len() - 1;
    if base >= last || samples[base].1 == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (from, to) = (samples[base].1 as f64, samples[last].1 as f64);
    Some((to - from) * 100.0 / from)
}

/// Whether a soak passed: the error rate and RSS growth within their limits (percent).
/// No RSS figure fails too: memory that was not measured was not shown flat.
pub fn verdict(
    error_rate: f64,
    max_error_rate: f64,
    growth: Option<f64>,
    max_growth: f64,
) -> Result<(), String> {
    let mut why = Vec::new();
    if error_rate > max_error_rate {
        why.push(format!(
            "error rate {error_rate:.3} % is above --max-error-rate {max_error_rate} %"
        ));
    }
    match growth {
        Some(g) if g > max_growth => why.push(format!(
            "RSS grew {g:.1} % after warm-up, above --max-rss-growth {max_growth} %"
        )),
        Some(_) => {}
        None => why.push(
            "no RSS growth figure (no /metrics samples after warm-up: is the duration longer \
             than the warm-up, and does /metrics answer?)"
                .to_owned(),
        ),
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

/// `seconds,rss_bytes` lines for a plot.
pub fn rss_csv(samples: &[RssSample]) -> String {
    let mut out = String::from("seconds,rss_bytes\n");
    for (t, bytes) in samples {
        out.push_str(&format!("{t:.1},{bytes}\n"));
    }
    out
}

/// The value of `process_resident_memory_bytes` in a Prometheus text exposition.
pub fn parse_rss(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix("process_resident_memory_bytes")?;
        let value = rest.strip_prefix(' ')?.split_whitespace().next()?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        value.parse::<f64>().ok().map(|v| v as u64)
    })
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "plinth bench --soak: {} at {} req/s of read_write (90 % get_one, 10 % create) \
             for {} s, open loop, warm-up {} s",
            self.url,
            o.rate,
            o.duration.as_secs_f64(),
            o.warmup.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<8} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7}",
            "from_s", "reads", "r_p50_ms", "r_p99_ms", "writes", "w_p50_ms", "w_p99_ms", "errors"
        )?;
        for (i, w) in self.figures.windows.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let from = o.window.as_secs_f64() * i as f64;
            writeln!(
                f,
                "{:<8} {:>7} {:>9.3} {:>9.3} {:>7} {:>9.3} {:>9.3} {:>7}",
                from,
                w.reads.scheduled,
                w.reads.ms(0.50),
                w.reads.ms(0.99),
                w.writes.scheduled,
                w.writes.ms(0.50),
                w.writes.ms(0.99),
                w.all().errors()
            )?;
        }
        write_header(f)?;
        write!(f, "{}", self.figures)?;
        write!(f, "rss_mb  ")?;
        for (t, bytes) in &self.rss {
            #[allow(clippy::cast_precision_loss)]
            let mb = *bytes as f64 / 1_048_576.0;
            write!(f, " {t:.0}s:{mb:.1}")?;
        }
        writeln!(f)?;
        if let (n @ 1.., Some(first)) = (self.rss_failures.0, &self.rss_failures.1) {
            writeln!(f, "rss: {n} samples failed, the first: {first}")?;
        }
        match self.rss_growth() {
            Some(g) => writeln!(
                f,
                "rss growth after warm-up: {g:+.1} % (limit {} %)",
                o.max_rss_growth
            )?,
            None => writeln!(f, "rss growth after warm-up: not measured")?,
        }
        let all = self.figures.total.all();
        writeln!(
            f,
            "errors: {} of {} ({:.3} %, limit {} %)",
            all.errors(),
            all.scheduled,
            self.error_rate(),
            o.max_error_rate
        )
    }
}

/// Samples `process_resident_memory_bytes` from `{base}/metrics` now, every `every`, at
/// `warmup` (so growth has its base even when `every` does not divide it), and once more
/// when `stop` fires.
pub(crate) async fn sample_rss(
    client: reqwest::Client,
    token: Option<String>,
    base: String,
    every: Duration,
    warmup: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<RssSample>, (u64, Option<String>)) {
    let start = Instant::now();
    let url = format!("{base}/metrics");
    let mut samples = Vec::new();
    let mut failures = (0u64, None);
    let mut regular = start;
    let mut warm = Some(start + warmup).filter(|_| !warmup.is_zero());
    loop {
        let next = match warm {
            Some(w) if w <= regular => {
                warm = None;
                if w == regular {
                    regular += every; // one sample for both
                }
                w
            }
            _ => {
                let next = regular;
                regular += every;
                next
            }
        };
        let stopping = tokio::select! {
            () = tokio::time::sleep_until(next) => false,
            _ = stop.changed() => true,
        };
        let at = start.elapsed().as_secs_f64();
        match fetch_rss(&client, token.as_deref(), &url).await {
            Ok(bytes) => samples.push((at, bytes)),
            Err(why) => {
                failures.0 += 1;
                failures.1.get_or_insert(why);
            }
        }
        if stopping {
            return (samples, failures);
        }
    }
}

async fn fetch_rss(
    client: &reqwest::Client,
    token: Option<&str>,
    url: &str,
) -> Result<u64, String> {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("GET /metrics: HTTP {status}"));
    }
    parse_rss(&text)
        .ok_or_else(|| "GET /metrics: no process_resident_memory_bytes in the answer".to_owned())
}

/// Runs the soak against a seeded `target`.
pub(crate) async fn soak(
    target: &Arc<Target>,
    opts: &SoakOptions,
) -> Result<SoakReport, BenchError> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let plain = reqwest::Client::builder()
        .build()
        .map_err(|e| BenchError::Server(format!("cannot build the HTTP client: {e}")))?;
    let sampler = tokio::spawn(sample_rss(
        plain,
        opts.metrics_token.clone(),
        target.base.clone(),
        opts.sample_every,
        opts.warmup,
        stop,
    ));
    let shape = RateOptions {
        rate: opts.rate,
        duration: opts.duration,
        workloads: vec![Workload::ReadWrite],
        max_in_flight: opts.max_in_flight,
    };
    let figures = run_workload(
        target,
        Workload::ReadWrite,
        opts.rate,
        shape.total(),
        opts.max_in_flight,
        Some(opts.window),
    )
    .await;
    let _ = stop_tx.send(true);
    let (rss, rss_failures) = sampler
        .await
        .map_err(|e| BenchError::Server(format!("the RSS sampler failed: {e}")))?;
    Ok(SoakReport {
        url: target.base.clone(),
        options: opts.clone(),
        figures,
        rss,
        rss_failures,
    })
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

    #[test]
    fn rss_growth_is_measured_from_the_first_sample_after_warm_up() {
        let samples = [(0.0, 50), (10.0, 90), (20.0, 100), (40.0, 104), (60.0, 105)];
        let g = rss_growth(&samples, 20.0).expect("a figure");
        assert!((g - 5.0).abs() < 1e-9, "{g}");
        // Warm-up at 15 s: the base is the 20 s sample, the first at or after it.
        assert!((rss_growth(&samples, 15.0).expect("a figure") - 5.0).abs() < 1e-9);
        let shrank = rss_growth(&[(0.0, 200), (5.0, 100)], 0.0).expect("a figure");
        assert!((shrank + 50.0).abs() < 1e-9, "{shrank}");
        // Nothing after warm-up to compare with.
        assert_eq!(rss_growth(&samples, 60.0), None);
        assert_eq!(rss_growth(&samples, 61.0), None);
        assert_eq!(rss_growth(&[], 0.0), None);
    }

    #[test]
    fn the_verdict_fails_on_errors_growth_or_no_figure_and_says_why() {
        assert_eq!(verdict(0.1, 0.1, Some(10.0), 10.0), Ok(()));
        let errors = verdict(0.2, 0.1, Some(1.0), 10.0).expect_err("a failure");
        assert!(errors.contains("error rate 0.200 %"), "{errors}");
        let growth = verdict(0.0, 0.1, Some(12.5), 10.0).expect_err("a failure");
        assert!(growth.contains("RSS grew 12.5 %"), "{growth}");
        let both = verdict(5.0, 0.1, Some(50.0), 10.0).expect_err("a failure");
        assert!(
            both.contains("error rate") && both.contains("RSS grew"),
            "{both}"
        );
        let unmeasured = verdict(0.0, 0.1, None, 10.0).expect_err("a failure");
        assert!(unmeasured.contains("no RSS growth figure"), "{unmeasured}");
    }

    #[test]
    fn the_rss_csv_is_seconds_and_bytes() {
        let csv = rss_csv(&[(0.0, 1000), (5.004, 2048)]);
        assert_eq!(csv, "seconds,rss_bytes\n0.0,1000\n5.0,2048\n");
        assert_eq!(rss_csv(&[]), "seconds,rss_bytes\n");
    }

    #[test]
    fn rss_is_read_from_the_prometheus_text() {
        let text = "# HELP process_resident_memory_bytes Resident memory size in bytes\n\
                    # TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes_other 1\n\
                    process_resident_memory_bytes 7.2e7\n";
        assert_eq!(parse_rss(text), Some(72_000_000));
        assert_eq!(parse_rss("up 1\n"), None);
    }
}

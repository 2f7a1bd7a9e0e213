//! The load generator behind `plinth bench`: seeds a Plinth server on loopback and measures
//! requests/s and latency percentiles for get-by-id, list, create, update and a 70/20/10 mix, each
//! with a bounded number of requests; on demand, the change feed's fan-out too.
//!
//! Layout: [`Options`], [`run`] and the [`Report`] here; each workload is a request builder
//! run by `measure` with a fixed number of requests and a fixed concurrency, timed into an
//! HDR histogram. `fanout`: subscribers on the change feed and writes at a fixed rate
//! ([`FanoutOptions`], [`FanoutFigures`]); `sse`: the event-stream reader it uses; `bulk`:
//! records inserted through batch writes ([`BulkOptions`], [`BulkFigures`]); `scale`: a
//! server's lists, memory and restart as its table grows ([`ScaleServer`], [`ScaleReport`]).

mod bulk;
mod ceiling;
mod fanout;
mod live;
mod rate;
mod scale;
mod soak;
mod sse;

pub use bulk::{BulkFields, BulkFigures, BulkOptions, RANK_SPREAD};
pub use ceiling::{Ceiling, start as start_ceiling};
pub use fanout::{FanoutFigures, FanoutOptions};
pub use live::{Live, LiveFigures};
pub use rate::{REQUEST_TIMEOUT, RateFigures, RateOptions, RateReport, Side, Tally, Workload};
pub use scale::{
    ColdStart, Latency, ListFigures, Plan, SCALE_LISTS, ScaleCheckpoint, ScaleList, ScaleReport,
    ScaleServer, checkpoints, deep_target, next_walk_limit,
};
pub use soak::{RssSample, SoakOptions, SoakReport, parse_rss, rss_csv, rss_growth, verdict};

use hdrhistogram::Histogram;

/// The configuration `plinth bench --all-features` serves (`features.toml`): `resource`
/// with a `pii` field (`contact`) and an indexed integer (`rank`), metrics on.
pub const FEATURES_TOML: &str = include_str!("../features.toml");
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests per workload.
    pub requests: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Records created before measuring.
    pub seed: u64,
    /// Sent as `Authorization: Bearer …` (an access token or API key that may create).
    pub credential: Option<String>,
    /// The fan-out workload, run after the others when set.
    pub fanout: Option<FanoutOptions>,
    /// The bulk workload, run last when set.
    pub bulk: Option<BulkOptions>,
    /// Also measure `get_one` against the ceiling probe (`ceiling.rs`) with the same
    /// requests, concurrency and seed count, after the workloads.
    pub ceiling: bool,
    /// Creates also fill the fields of [`FEATURES_TOML`]'s `resource` (`contact`, sealed,
    /// and `rank`).
    pub all_features: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The URL is not a loopback HTTP URL.
    #[error("refusing to load {0}: only http:// URLs on a loopback address are benchmarked")]
    NotLoopback(String),
    /// The server did not answer as expected.
    #[error("{0}")]
    Server(String),
}

/// Figures of one workload.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Workload name.
    pub name: &'static str,
    /// Requests sent.
    pub requests: u64,
    /// Answers that were not 2xx, or transport errors.
    pub errors: u64,
    /// Wall-clock time of the workload.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Figures {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.requests as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// All workloads' figures.
#[derive(Debug, Clone)]
pub struct Report {
    /// Target server.
    pub url: String,
    /// Options used.
    pub options: Options,
    /// One entry per workload, in run order (none when `requests` is 0).
    pub workloads: Vec<Figures>,
    /// Ids of the seeded records, e.g. for the peer benchmark scripts (`IDS_FILE`).
    pub seeded_ids: Vec<String>,
    /// The fan-out's figures, when it ran.
    pub fanout: Option<FanoutFigures>,
    /// The bulk workload's figures, when it ran.
    pub bulk: Option<BulkFigures>,
    /// `get_one` against the ceiling probe, when it ran.
    pub ceiling: Option<Figures>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plinth bench: {} ({} requests per workload, concurrency {}, {} seeded records)",
            self.url, self.options.requests, self.options.concurrency, self.options.seed
        )?;
        writeln!(
            f,
            "{:<10} {:>10} {:>9} {:>9} {:>8}",
            "workload", "req/s", "p50_ms", "p99_ms", "errors"
        )?;
        let fanout = self.fanout.iter().flat_map(|f| [&f.writes, &f.delivery]);
        for w in self.workloads.iter().chain(fanout).chain(&self.ceiling) {
            writeln!(
                f,
                "{:<10} {:>10.0} {:>9.3} {:>9.3} {:>8}",
                w.name,
                w.rps(),
                w.p50.as_secs_f64() * 1000.0,
                w.p99.as_secs_f64() * 1000.0,
                w.errors
            )?;
        }
        let get = self.workloads.iter().find(|w| w.name == "get_one");
        if let (Some(ceiling), Some(get)) = (&self.ceiling, get) {
            writeln!(
                f,
                "get_one reached {:.0} % of the ceiling probe (a bare handler reading the row through rusqlite)",
                100.0 * get.rps() / ceiling.rps().max(1e-9)
            )?;
        }
        if let Some(fanout) = &self.fanout {
            write!(f, "{fanout}")?;
        }
        if let Some(bulk) = &self.bulk {
            write!(f, "{bulk}")?;
        }
        Ok(())
    }
}

/// A request the workload wants sent.
#[derive(Debug, Clone, Copy)]
enum Req {
    Get,
    List,
    Create,
    /// A change to a seeded record (no `If-Match`).
    Update,
}

/// Seeds `opts.seed` records, then measures each workload.
pub async fn run(url: &str, opts: &Options) -> Result<Report, BenchError> {
    let target = connect(url, opts, opts.concurrency).await?;
    let mut workloads = Vec::new();
    let runs: &[(&str, [u64; 3])] = if opts.requests == 0 { &[] } else { &WORKLOADS };
    for &(name, mix) in runs {
        workloads.push(measure(&target, name, opts, mix).await);
    }
    let ceiling = if opts.ceiling && opts.requests > 0 {
        Some(measure_ceiling(&target.client, opts).await?)
    } else {
        None
    };
    let fanout = match &opts.fanout {
        Some(shape) => Some(fanout::run(&target.client, &target.base, shape).await?),
        None => None,
    };
    let bulk = match opts.bulk {
        Some(shape) => Some(bulk::run(&target.client, &target.base, shape).await?),
        None => None,
    };
    Ok(Report {
        url: target.base.clone(),
        options: opts.clone(),
        workloads,
        seeded_ids: target.ids.clone(),
        fanout,
        bulk,
        ceiling,
    })
}

/// `get_one` against a ceiling probe seeded with as many rows, through the same client.
async fn measure_ceiling(client: &reqwest::Client, opts: &Options) -> Result<Figures, BenchError> {
    let probe = ceiling::start(([127, 0, 0, 1], 0).into(), opts.seed).await?;
    let target = Arc::new(Target {
        client: client.clone(),
        base: probe.url.clone(),
        ids: probe.ids.clone(),
        counter: AtomicU64::new(0),
        all_features: false,
    });
    let figures = measure(&target, "ceiling", opts, [100, 0, 0]).await;
    probe.stop().await;
    Ok(figures)
}

/// Seeds `opts.seed` records, then runs each of `shape.workloads` open loop at a fixed rate.
pub async fn run_rate(
    url: &str,
    opts: &Options,
    shape: &RateOptions,
) -> Result<RateReport, BenchError> {
    let target = connect(url, opts, shape.max_in_flight).await?;
    let mut workloads = Vec::new();
    for &w in &shape.workloads {
        let figures = rate::run_workload(
            &target,
            w,
            shape.rate,
            shape.total(),
            shape.max_in_flight,
            None,
        )
        .await;
        workloads.push(figures);
    }
    Ok(RateReport {
        url: target.base.clone(),
        options: shape.clone(),
        seeded: target.ids.len() as u64,
        workloads,
    })
}

/// Seeds `opts.seed` records, then runs the soak: `read_write` at a fixed rate, with the
/// server's RSS sampled from its `/metrics`. The report's `verdict` says whether it passed.
pub async fn run_soak(
    url: &str,
    opts: &Options,
    shape: &SoakOptions,
) -> Result<SoakReport, BenchError> {
    let target = connect(url, opts, shape.max_in_flight).await?;
    soak::soak(&target, shape).await
}

/// `url` without a trailing `/`, or why it is not an `http://` URL on a loopback address.
fn loopback(url: &str) -> Result<String, BenchError> {
    let base = url.trim_end_matches('/').to_owned();
    let loopback = ["http://127.", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| base.starts_with(p)) {
        return Err(BenchError::NotLoopback(base));
    }
    Ok(base)
}

/// Checks `url`, builds the client (keeping `idle` connections) and seeds the records.
async fn connect(url: &str, opts: &Options, idle: usize) -> Result<Arc<Target>, BenchError> {
    let base = loopback(url)?;
    let client = client(opts.credential.as_deref(), idle)?;
    let target = Arc::new(Target {
        client,
        base,
        ids: Vec::new(),
        counter: AtomicU64::new(0),
        all_features: opts.all_features,
    });
    let ids = seed(&target, opts).await?;
    Ok(Arc::new(Target {
        client: target.client.clone(),
        base: target.base.clone(),
        ids,
        counter: AtomicU64::new(0),
        all_features: opts.all_features,
    }))
}

/// A client that sends `credential` as `Authorization: Bearer …` on every request and keeps
/// `idle` connections.
fn client(credential: Option<&str>, idle: usize) -> Result<reqwest::Client, BenchError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(c) = credential {
        let value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {c}")).map_err(|_| {
                BenchError::Server("the credential is not a valid header value".to_owned())
            })?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(idle)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BenchError::Server(format!("cannot build the HTTP client: {e}")))
}

/// Workload names with their mix: percentage of gets, of lists, of updates; the rest are
/// creates.
const WORKLOADS: [(&str, [u64; 3]); 5] = [
    ("get_one", [100, 0, 0]),
    ("list", [0, 100, 0]),
    ("create", [0, 0, 0]),
    ("update", [0, 0, 100]),
    ("mixed", [70, 20, 0]),
];

#[derive(Debug)]
struct Target {
    client: reqwest::Client,
    base: String,
    ids: Vec<String>,
    /// Numbers created records and drives the id choice of reads.
    counter: AtomicU64,
    /// Creates fill `contact` and `rank` too ([`Options::all_features`]).
    all_features: bool,
}

impl Target {
    async fn send(&self, req: Req) -> Result<reqwest::Response, reqwest::Error> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = || &self.ids[usize::try_from(mix64(n)).unwrap_or(0) % self.ids.len().max(1)];
        match req {
            Req::Get => {
                let id = id();
                self.client
                    .get(format!("{}/api/v1/resource/{id}", self.base))
                    .send()
                    .await
            }
            Req::Update => {
                let id = id();
                let body = if self.all_features {
                    format!(r#"{{"rank":{}}}"#, n % 1000)
                } else {
                    format!(r#"{{"name":"bench-{n}"}}"#)
                };
                let url = format!("{}/api/v1/resource/{id}", self.base);
                send_json(self.client.patch(url), body).await
            }
            Req::List => {
                self.client
                    .get(format!(
                        "{}/api/v1/resource?status=active&sort=-created_at&limit=20",
                        self.base
                    ))
                    .send()
                    .await
            }
            Req::Create => {
                let status = if n.is_multiple_of(2) {
                    "active"
                } else {
                    "inactive"
                };
                let body = if self.all_features {
                    let rank = n % 1000;
                    format!(
                        r#"{{"name":"bench-{n}","status":"{status}","contact":"bench-{n}@example.com","rank":{rank}}}"#
                    )
                } else {
                    format!(r#"{{"name":"bench-{n}","status":"{status}"}}"#)
                };
                let url = format!("{}/api/v1/resource", self.base);
                send_json(self.client.post(url), body).await
            }
        }
    }
}

/// Sends `req` with `body` as its JSON.
async fn send_json(
    req: reqwest::RequestBuilder,
    body: String,
) -> Result<reqwest::Response, reqwest::Error> {
    req.header("content-type", "application/json")
        .body(body)
        .send()
        .await
}

/// A cheap, well-spread hash for choosing ids and request kinds (splitmix64).
pub(crate) fn mix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn seed(target: &Arc<Target>, opts: &Options) -> Result<Vec<String>, BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (target, next, total) = (Arc::clone(target), Arc::clone(&next), opts.seed.max(1));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let res = target
                    .send(Req::Create)
                    .await
                    .map_err(|e| BenchError::Server(format!("seeding failed: {e}")))?;
                if !res.status().is_success() {
                    return Err(BenchError::Server(format!(
                        "seeding failed: HTTP {}",
                        res.status()
                    )));
                }
                let body: serde_json::Value = res
                    .json()
                    .await
                    .map_err(|e| BenchError::Server(format!("seeding failed: {e}")))?;
                match body["data"]["id"].as_str() {
                    Some(id) => ids.push(id.to_owned()),
                    None => {
                        return Err(BenchError::Server(
                            "seeding failed: no id in the answer".to_owned(),
                        ));
                    }
                }
            }
            Ok(ids)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.map_err(|e| BenchError::Server(e.to_string()))??);
    }
    Ok(ids)
}

/// Sends `opts.requests` requests from `opts.concurrency` tasks; `mix` is the percentage of
/// gets, of lists and of updates (the rest are creates).
async fn measure(
    target: &Arc<Target>,
    name: &'static str,
    opts: &Options,
    mix: [u64; 3],
) -> Figures {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (target, next, total) = (Arc::clone(target), Arc::clone(&next), opts.requests);
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let roll = mix64(i ^ 0xA5A5) % 100;
                let req = if roll < mix[0] {
                    Req::Get
                } else if roll < mix[0] + mix[1] {
                    Req::List
                } else if roll < mix[0] + mix[1] + mix[2] {
                    Req::Update
                } else {
                    Req::Create
                };
                let t0 = Instant::now();
                let ok = match target.send(req).await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        ok && res.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = hist.record(micros.max(1));
                errors += u64::from(!ok);
            }
            (hist, errors)
        }));
    }
    let mut hist = new_histogram();
    let mut errors = 0;
    for t in tasks {
        if let Ok((h, e)) = t.await {
            let _ = hist.add(&h);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    Figures {
        name,
        requests: opts.requests,
        errors,
        elapsed,
        p50: Duration::from_micros(hist.value_at_quantile(0.50)),
        p99: Duration::from_micros(hist.value_at_quantile(0.99)),
    }
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant figures; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

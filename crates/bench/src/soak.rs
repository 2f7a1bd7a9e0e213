//! The soak: `read_write` at a fixed rate for a long time (`rate::open_loop`), tallied per
//! window (a minute), with the server's resident memory sampled from its own `/metrics`
//! (`process_resident_memory_bytes`); its verdict fails on errors or memory growth, never
//! on timings.

use crate::rate::{RateFigures, RateOptions, Workload, run_workload, write_header};
use crate::{BenchError, Target};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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

    /// The whole run's latency distribution of 2xx answers, reads and writes apart, as CSV
    /// (`side,upto_ms,count`): log-spaced buckets from 0.1 ms, each 25 % wider than the
    /// last, empty ones left out.
    pub fn latency_csv(&self) -> String {
        let total = &self.figures.total;
        latency_csv(&[
            ("read", &total.reads.latency),
            ("write", &total.writes.latency),
        ])
    }
}

/// [`SoakReport::latency_csv`] of named histograms (µs).
pub(crate) fn latency_csv(sides: &[(&str, &hdrhistogram::Histogram<u64>)]) -> String {
    let mut out = String::from("side,upto_ms,count\n");
    for (name, hist) in sides {
        if hist.is_empty() {
            continue;
        }
        for v in hist.iter_log(100, 1.25) {
            let count = v.count_since_last_iteration();
            if count > 0 {
                #[allow(clippy::cast_precision_loss)]
                let upto = v.value_iterated_to() as f64 / 1000.0;
                out.push_str(&format!("{name},{upto:.3},{count}\n"));
            }
        }
    }
    out
}

/// How far the server's RSS moved after `warmup`, in percent: from the median of the first
/// samples at or after it to the median of the last ones (an odd number each: about a
/// minute of samples, a quarter of them at most in a short run, three when there are six
/// or more, one at least), so that a transient of a few samples (the periodic sweep's
/// work, say, which may fall on the run's last seconds) neither passes a leak nor fails a
/// flat run. `None` without two samples after warm-up.
pub fn rss_growth(samples: &[RssSample], warmup: f64) -> Option<f64> {
    let base = samples.iter().position(|(t, _)| *t >= warmup)?;
    let after: Vec<u64> = samples[base..].iter().map(|(_, b)| *b).collect();
    if after.len() < 2 {
        return None;
    }
    let start = samples[base].0;
    let minute = samples[base..]
        .iter()
        .take_while(|(t, _)| *t < start + 60.0)
        .count();
    // At least one: there are two samples or more.
    let mut k = minute.min(after.len() / 4).max((after.len() / 2).min(3));
    if k % 2 == 0 {
        k -= 1;
    }
    let median = |part: &[u64]| {
        let mut part = part.to_vec();
        part.sort_unstable();
        part[part.len() / 2]
    };
    let (from, to) = (median(&after[..k]), median(&after[after.len() - k..]));
    if from == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (from, to) = (from as f64, to as f64);
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
        self.figures.write_lag(f)?;
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

pub(crate) async fn fetch_rss(
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
    fn one_transient_sample_moves_no_growth_figure_but_a_steady_climb_does() {
        let flat: Vec<RssSample> = (0..12).map(|i| (f64::from(i) * 5.0, 100)).collect();
        // The last sample spikes (a sweep's work): the medians ignore it.
        let mut spiked = flat.clone();
        spiked.last_mut().expect("a sample").1 = 117;
        assert_eq!(rss_growth(&spiked, 10.0), Some(0.0));
        // So does one spike among the first samples after warm-up.
        let mut early = flat.clone();
        early[2].1 = 150;
        assert_eq!(rss_growth(&early, 10.0), Some(0.0));
        // A leak moves every later sample: it shows.
        let climbing: Vec<RssSample> = (0..12u32)
            .map(|i| (f64::from(i) * 5.0, 100 + u64::from(i) * 2))
            .collect();
        let g = rss_growth(&climbing, 10.0).expect("a figure");
        assert!((g - 14.0 / 1.06).abs() < 1e-9, "{g}");
        // Ten minutes of samples every 5 s: a sweep's two high samples at the very end
        // (they fell there in a PostgreSQL soak, +32 %) move nothing; a minute's medians.
        let mut long: Vec<RssSample> = (0..=120).map(|i| (f64::from(i) * 5.0, 100)).collect();
        for sample in long.iter_mut().rev().take(2) {
            sample.1 = 134;
        }
        assert_eq!(rss_growth(&long, 60.0), Some(0.0));
        // While a slow leak over the ten minutes still shows.
        let leaking: Vec<RssSample> = (0..=120u32)
            .map(|i| (f64::from(i) * 5.0, 100 + u64::from(i)))
            .collect();
        assert!(rss_growth(&leaking, 60.0).expect("a figure") > 40.0);
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
    fn the_latency_csv_counts_every_answer_once_in_log_buckets() {
        let mut reads = crate::new_histogram();
        for us in [150, 160, 900, 4_000, 4_100] {
            reads.record(us).expect("in range");
        }
        let mut writes = crate::new_histogram();
        writes.record(2_000).expect("in range");
        let empty = crate::new_histogram();
        let csv = latency_csv(&[("read", &reads), ("write", &writes), ("none", &empty)]);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("side,upto_ms,count"));
        let rows: Vec<(String, f64, u64)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[0].to_owned(),
                    f[1].parse().expect("ms"),
                    f[2].parse().expect("count"),
                )
            })
            .collect();
        let count = |side: &str| {
            rows.iter()
                .filter(|r| r.0 == side)
                .map(|r| r.2)
                .sum::<u64>()
        };
        assert_eq!((count("read"), count("write"), count("none")), (5, 1, 0));
        // Bucket bounds grow and each holds what lies at or below it.
        let reads: Vec<_> = rows.iter().filter(|r| r.0 == "read").collect();
        assert!(reads.windows(2).all(|w| w[0].1 < w[1].1));
        assert!(
            reads.first().is_some_and(|r| r.1 >= 0.15 && r.1 < 0.16),
            "{csv}"
        );
        assert!(
            reads.last().is_some_and(|r| r.1 >= 4.1 && r.2 == 2),
            "{csv}"
        );
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

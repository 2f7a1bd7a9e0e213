//! The figures of a fixed-rate run and the table they print as.

use super::{RateOptions, Side, Tally, Workload};
use hdrhistogram::Histogram;
use std::fmt;
use std::time::Duration;

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
    /// How late the bench sent each request behind its schedule, in µs: its own delay,
    /// counted in the latencies too.
    pub lag: Histogram<u64>,
}

impl RateFigures {
    /// 2xx answers per second over the run.
    pub fn achieved(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ok = self.total.all().ok() as f64;
        ok / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The line naming the bench's own send lag: p50, p99 and max, in milliseconds.
    pub(crate) fn write_lag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(clippy::cast_precision_loss)]
        let ms = |micros: u64| micros as f64 / 1000.0;
        writeln!(
            f,
            "{}: the bench sent behind its schedule by p50 {:.3} / p99 {:.3} / max {:.3} ms \
             (counted in the latencies above)",
            self.workload.name(),
            ms(self.lag.value_at_quantile(0.5)),
            ms(self.lag.value_at_quantile(0.99)),
            ms(self.lag.max())
        )
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
        for w in &self.workloads {
            w.write_lag(f)?;
        }
        Ok(())
    }
}

//! The scale mode's figures and how they print: one table of checkpoints (RSS, and each
//! list's first and deep page, median, with their ratio), the p90s, how each checkpoint
//! was seeded and walked, the query plans and the cold start.

use super::ScaleList;
use crate::bulk::BulkFigures;
use std::fmt;
use std::time::Duration;

/// The latency of one page over repeated sequential requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// How many requests.
    pub samples: usize,
}

impl Latency {
    /// The percentiles of `samples` (nearest rank; all zero for none).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples
                .get(rank.saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        Self {
            p50: at(0.5),
            p90: at(0.9),
            samples: samples.len(),
        }
    }
}

/// One list at one checkpoint.
#[derive(Debug, Clone)]
pub struct ListFigures {
    /// Which list.
    pub list: ScaleList,
    /// Records it holds (`page.total`).
    pub total: u64,
    /// Records before its deep page.
    pub deep_after: u64,
    /// Pages the walk to the deep page read.
    pub pages: u64,
    /// How long the walk took.
    pub walk: Duration,
    /// Its first page.
    pub first: Latency,
    /// The page after `deep_after` records.
    pub deep: Latency,
    /// The cursor of the deep page (`None` when it is the first).
    pub deep_cursor: Option<String>,
}

impl ListFigures {
    /// The deep page's median over the first page's.
    pub fn ratio(&self) -> f64 {
        self.deep.p50.as_secs_f64() / self.first.p50.as_secs_f64().max(1e-9)
    }
}

/// The figures at one checkpoint.
#[derive(Debug, Clone)]
pub struct ScaleCheckpoint {
    /// Records seeded.
    pub records: u64,
    /// The server's resident memory.
    pub rss_bytes: u64,
    /// The seeding from the previous checkpoint.
    pub seed: BulkFigures,
    /// One entry per list of [`super::SCALE_LISTS`].
    pub lists: Vec<ListFigures>,
}

/// The query plan of one page of a list, as the engine gave it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which list.
    pub list: ScaleList,
    /// Records before the page (0: the first page).
    pub after: u64,
    /// One line per plan node.
    pub lines: Vec<String>,
}

/// The server started again on the full database.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// From spawning the process to the first 200 of `/readyz`.
    pub ready: Duration,
    /// Records in the database.
    pub records: u64,
    /// Resident memory once ready.
    pub rss_bytes: u64,
    /// The default list's first page: the first request after the start.
    pub first_request: Duration,
    /// The same page over the requests after it.
    pub first: Latency,
}

/// Everything a scale run measured.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    /// The server's URL.
    pub url: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
    /// One entry per checkpoint, in order.
    pub checkpoints: Vec<ScaleCheckpoint>,
    /// The plans of the indexed sort and the filtered list, first and deep page.
    pub plans: Vec<Plan>,
    /// The restart on the full database.
    pub cold: Option<ColdStart>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// MiB, as the soak prints them.
#[allow(clippy::cast_precision_loss)]
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

impl fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let samples = self
            .checkpoints
            .first()
            .and_then(|c| c.lists.first())
            .map_or(0, |l| l.first.samples);
        writeln!(
            f,
            "plinth bench --scale: {} ({}, the server in a process of its own); latency in ms, \
             median of {samples} sequential requests per page",
            self.url, self.engine
        )?;
        let lists: Vec<ScaleList> = self
            .checkpoints
            .first()
            .map(|c| c.lists.iter().map(|l| l.list).collect())
            .unwrap_or_default();
        list_header(f, ("records", "rss_mb"), &lists, "ratio")?;
        for c in &self.checkpoints {
            write!(f, "{:>9} {:>8.1}", c.records, mb(c.rss_bytes))?;
            for l in &c.lists {
                write!(
                    f,
                    " {:>14.3} {:>14.3} {:>8.2}",
                    ms(l.first.p50),
                    ms(l.deep.p50),
                    l.ratio()
                )?;
            }
            writeln!(f)?;
        }
        list_header(f, ("p90", ""), &lists, "")?;
        for c in &self.checkpoints {
            write!(f, "p90 {:>14}", c.records)?;
            for l in &c.lists {
                write!(
                    f,
                    " {:>14.3} {:>14.3} {:>8}",
                    ms(l.first.p90),
                    ms(l.deep.p90),
                    ""
                )?;
            }
            writeln!(f)?;
        }
        for c in &self.checkpoints {
            let s = &c.seed;
            write!(
                f,
                "at {}: seeded {} in {:.1} s ({:.0} records/s); deep pages after",
                c.records,
                s.written,
                s.elapsed.as_secs_f64(),
                s.records_per_second()
            )?;
            for (i, l) in c.lists.iter().enumerate() {
                write!(
                    f,
                    "{} {} of {} ({}, {} pages walked in {:.1} s)",
                    if i == 0 { "" } else { ";" },
                    l.deep_after,
                    l.total,
                    l.list.name,
                    l.pages,
                    l.walk.as_secs_f64()
                )?;
            }
            writeln!(f)?;
        }
        for p in &self.plans {
            let page = match p.after {
                0 => "first page".to_owned(),
                n => format!("the page after {n} records"),
            };
            writeln!(
                f,
                "plan of {} ({}), {page}:",
                p.list.name,
                p.list.query(p.list.limit)
            )?;
            for line in &p.lines {
                writeln!(f, "  {line}")?;
            }
        }
        if let Some(c) = &self.cold {
            writeln!(
                f,
                "cold start at {} records: {:.3} s from spawn to the first 200 of /readyz; \
                 rss {:.1} MiB; default first page {:.3} ms on the first request, then {:.3} \
                 (p90 {:.3})",
                c.records,
                c.ready.as_secs_f64(),
                mb(c.rss_bytes),
                ms(c.first_request),
                ms(c.first.p50),
                ms(c.first.p90)
            )?;
        }
        Ok(())
    }
}

/// A table's header: two leading columns, then first, deep and `third` per list.
fn list_header(
    f: &mut fmt::Formatter<'_>,
    (a, b): (&str, &str),
    lists: &[ScaleList],
    third: &str,
) -> fmt::Result {
    write!(f, "{a:>9} {b:>8}")?;
    for l in lists {
        let n = l.name;
        write!(
            f,
            " {:>14} {:>14} {third:>8}",
            format!("{n}.first"),
            format!("{n}.deep")
        )?;
    }
    writeln!(f)
}

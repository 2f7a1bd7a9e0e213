//! Figures read when `/metrics` is scraped, not on the request path: the engine's writer
//! queue and batches and the record cache (SQLite) or its pool (PostgreSQL), whether the
//! database answers, how long the audit chain is, and the process's memory, CPU time and
//! open descriptors.

use super::Metrics;
use crate::state::AppState;
use plinth_store::stats::{BatchHistogram, PoolStats};
use plinth_store::{AuditQuery, EngineStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// How long a scrape waits for the database to answer before it reports `store_up 0`.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Kernel clock ticks per second of `/proc/self/stat`'s CPU times (`USER_HZ`, 100 on
/// every Linux architecture Plinth builds for).
const TICKS_PER_SECOND: f64 = 100.0;

/// The whole `/metrics` text: the registered metrics, then the sampled ones.
pub(crate) async fn render(state: &AppState, metrics: &Metrics) -> Result<String, std::fmt::Error> {
    let store = state.store();
    let up = matches!(
        tokio::time::timeout(PING_TIMEOUT, store.ping()).await,
        Ok(Ok(()))
    );
    // The chain's newest entry's `seq` counts every entry ever appended, by any instance.
    let audit = if up {
        let newest = AuditQuery {
            newest_first: true,
            limit: 1,
            ..AuditQuery::default()
        };
        match tokio::time::timeout(PING_TIMEOUT, store.audit_query(&newest)).await {
            Ok(Ok(entries)) => Some(entries.first().map_or(0, |e| e.seq.max(0) as u64)),
            _ => None,
        }
    } else {
        None
    };
    let sample = Sample {
        engine: store.engine_stats(),
        up,
        audit,
        process: Process::read(),
    };
    let mut out = String::new();
    metrics.encode(&mut out)?;
    let mut sampled = Registry::default();
    sampled.register_collector(Box::new(sample));
    prometheus_client::encoding::prometheus_text::encode(&mut out, &sampled)?;
    Ok(out)
}

/// One scrape's sampled figures.
#[derive(Debug)]
struct Sample {
    engine: EngineStats,
    up: bool,
    audit: Option<u64>,
    process: Process,
}

impl Collector for Sample {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        gauge(
            &mut e,
            "store_up",
            "1 when the database answered this scrape's ping within 2 s, else 0",
            i64::from(self.up),
        )?;
        if let Some(n) = self.audit {
            counter(
                &mut e,
                "audit_entries",
                "Audit entries ever appended to the database's chain, by every instance",
                n,
            )?;
        }
        if let Some(w) = &self.engine.writer {
            gauge(
                &mut e,
                "sqlite_writer_queue_depth",
                "Write jobs waiting for the SQLite writer thread",
                w.queue_depth as i64,
            )?;
            batch_sizes(
                &mut e,
                "sqlite_writer_batch_size",
                "Write jobs committed per SQLite transaction (group commit)",
                &w.batch_sizes,
            )?;
        }
        if let Some(c) = &self.engine.record_cache {
            counter(
                &mut e,
                "sqlite_record_cache_hits",
                "Record gets answered from the records kept in memory (SQLite)",
                c.hits,
            )?;
            counter(
                &mut e,
                "sqlite_record_cache_misses",
                "Record gets that read the database (SQLite, with the record cache on)",
                c.misses,
            )?;
            gauge(
                &mut e,
                "sqlite_record_cache_bytes",
                "Estimated bytes of the records kept in memory (SQLite)",
                c.bytes as i64,
            )?;
            gauge(
                &mut e,
                "sqlite_record_cache_records",
                "Records kept in memory after gets (SQLite)",
                c.records as i64,
            )?;
        }
        if let Some(g) = &self.engine.group {
            gauge(
                &mut e,
                "pg_group_queue_depth",
                "Record writes waiting for PostgreSQL's group commit",
                g.queue_depth as i64,
            )?;
            batch_sizes(
                &mut e,
                "pg_group_batch_size",
                "Record writes committed per PostgreSQL transaction (group commit)",
                &g.batch_sizes,
            )?;
        }
        if let Some(p) = &self.engine.pool {
            pool(&mut e, p)?;
        }
        let p = &self.process;
        if let Some(rss) = p.resident_bytes {
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss as i64,
            )?;
        }
        if let Some(cpu) = p.cpu_seconds {
            counter(
                &mut e,
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                cpu,
            )?;
        }
        if let Some(fds) = p.open_fds {
            gauge(
                &mut e,
                "process_open_fds",
                "Open file descriptors",
                fds as i64,
            )?;
        }
        if let Some(max) = p.max_fds {
            gauge(
                &mut e,
                "process_max_fds",
                "The open-files limit (soft)",
                max as i64,
            )?;
        }
        Ok(())
    }
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter<N>(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: N) -> std::fmt::Result
where
    ConstCounter<N>: EncodeMetric,
{
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn batch_sizes(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &BatchHistogram,
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        h.sum as f64,
        h.count,
        &h.buckets,
        None,
    )
}

fn pool(e: &mut DescriptorEncoder<'_>, p: &PoolStats) -> std::fmt::Result {
    let mut m = e.encode_descriptor(
        "pg_pool_connections",
        "The PostgreSQL pool's connections: max (its size), open, in_use, idle, and callers waiting for one",
        None,
        MetricType::Gauge,
    )?;
    for (state, v) in [
        ("max", p.max_size),
        ("open", p.size),
        ("in_use", p.in_use),
        ("idle", p.idle),
        ("waiting", p.waiting),
    ] {
        ConstGauge::new(v as i64).encode(m.encode_family(&[("state", state)])?)?;
    }
    Ok(())
}

/// The process's figures from `/proc/self` (Linux); `None` where they cannot be read.
#[derive(Debug, Default)]
struct Process {
    resident_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Process {
    fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        Self {
            resident_bytes: status.as_deref().and_then(resident_bytes),
            cpu_seconds: stat.as_deref().and_then(cpu_seconds),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: crate::fds::soft_limit(),
        }
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `utime + stime` of a `/proc/<pid>/stat` text, in seconds. The fields are counted after
/// the command name's closing parenthesis, since the name may hold spaces.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3 of the whole line; utime is 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_parse() {
        let status = "Name:\tplinth\nVmPeak:\t  2000 kB\nVmRSS:\t    1234 kB\n";
        assert_eq!(resident_bytes(status), Some(1234 * 1024));
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 2 3";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }
}

//! The bulk workload: `records` records of `resource` inserted through batch writes
//! (`POST /api/v1/resource/batch`) of `batch_size` creates, `concurrency` batches in flight
//! at once; the figures are the total time and records per second, from the first batch
//! sent to the last answered.

use crate::BenchError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The bulk workload's shape.
#[derive(Debug, Clone, Copy)]
pub struct BulkOptions {
    /// Records inserted in all.
    pub records: u64,
    /// Creates per batch (at most 1000, the endpoint's limit).
    pub batch_size: u64,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// The number of the first record: record `k`'s `rank` and `contact` derive from it, so
    /// a later run goes on where an earlier one stopped (`--scale` seeds each checkpoint
    /// after the last).
    pub first: u64,
    /// What each create holds.
    pub fields: BulkFields,
}

/// What a bulk create holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFields {
    /// `name` (`bulk-{batch}-{i}`) and `status` `active`.
    Plain,
    /// As the seed's creates with `--all-features`: the name, statuses alternating `active`
    /// and `inactive`, the sealed `contact` and `rank` = k mod [`RANK_SPREAD`], so a sort
    /// on `rank` meets many distinct values.
    Features,
}

/// How many distinct `rank` values [`BulkFields::Features`] writes.
pub const RANK_SPREAD: u64 = 100_000;

/// What the bulk workload measured.
#[derive(Debug, Clone)]
pub struct BulkFigures {
    /// Its shape.
    pub options: BulkOptions,
    /// Records the server answered as written.
    pub written: u64,
    /// Batches sent.
    pub batches: u64,
    /// Batches that failed (not 200, or a transport error).
    pub failed: u64,
    /// The first failure, as the server or the transport said it.
    pub first_error: Option<String>,
    /// From the first batch sent to the last answered.
    pub elapsed: Duration,
}

impl BulkFigures {
    /// Records written per second.
    pub fn records_per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let n = self.written as f64;
        n / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for BulkFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bulk: {} records in {} batches of {} ({} in flight): {} written in {:.2} s, \
             {:.0} records/s, {} batches failed",
            self.options.records,
            self.batches,
            self.options.batch_size,
            self.options.concurrency,
            self.written,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
            self.failed
        )?;
        if let Some(first) = &self.first_error {
            writeln!(f, "bulk: the first failed batch: {first}")?;
        }
        Ok(())
    }
}

/// The body of batch `n`: `size` creates named `bulk-{n}-{i}`, the first of them record
/// number `first`.
fn body(n: u64, size: u64, first: u64, fields: BulkFields) -> String {
    let mut out = String::with_capacity(120 * usize::try_from(size).unwrap_or(0) + 16);
    out.push_str(r#"{"items":["#);
    for i in 0..size {
        if i > 0 {
            out.push(',');
        }
        let k = first + i;
        out.push_str(&match fields {
            BulkFields::Plain => format!(
                r#"{{"op":"create","data":{{"name":"bulk-{n}-{i}","status":"active"}}}}"#
            ),
            BulkFields::Features => {
                let status = if k.is_multiple_of(2) {
                    "active"
                } else {
                    "inactive"
                };
                let rank = k % RANK_SPREAD;
                format!(
                    r#"{{"op":"create","data":{{"name":"bulk-{n}-{i}","status":"{status}","contact":"bulk-{k}@example.com","rank":{rank}}}}}"#
                )
            }
        });
    }
    out.push_str("]}");
    out
}

/// Runs the workload against `base` with `client` (which carries the credential).
pub(crate) async fn run(
    client: &reqwest::Client,
    base: &str,
    opts: BulkOptions,
) -> Result<BulkFigures, BenchError> {
    let size = opts.batch_size.clamp(1, 1000);
    let batches = opts.records.div_ceil(size);
    let url = Arc::new(format!("{base}/api/v1/resource/batch"));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (client, url, next) = (client.clone(), Arc::clone(&url), Arc::clone(&next));
        let (records, first_record, fields) = (opts.records, opts.first, opts.fields);
        tasks.push(tokio::spawn(async move {
            let (mut written, mut failed, mut first) = (0u64, 0u64, None);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= batches {
                    break;
                }
                let this = size.min(records - n * size);
                let sent = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body(n, this, first_record + n * size, fields))
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(res) if res.status().is_success() => {
                        res.bytes().await.map_err(|e| e.to_string())
                    }
                    Ok(res) => {
                        let status = res.status();
                        Err(format!(
                            "HTTP {status}: {}",
                            res.text().await.unwrap_or_default()
                        ))
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(_) => written += this,
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert(e);
                    }
                }
            }
            (written, failed, first)
        }));
    }
    let (mut written, mut failed, mut first_error) = (0, 0, None);
    for t in tasks {
        let (w, f, first) = t.await.map_err(|e| BenchError::Server(e.to_string()))?;
        written += w;
        failed += f;
        if first_error.is_none() {
            first_error = first;
        }
    }
    Ok(BulkFigures {
        options: BulkOptions {
            batch_size: size,
            ..opts
        },
        written,
        batches,
        failed,
        first_error,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_bodies_number_records_from_first() {
        let batch: serde_json::Value =
            serde_json::from_str(&body(3, 2, 199_999, BulkFields::Features)).expect("JSON");
        let items = batch["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        let data = |i: usize| &items[i]["data"];
        assert_eq!(data(0)["name"], "bulk-3-0");
        assert_eq!(data(0)["status"], "inactive");
        assert_eq!(data(0)["rank"], 99_999);
        assert_eq!(data(0)["contact"], "bulk-199999@example.com");
        assert_eq!(data(1)["status"], "active");
        assert_eq!(data(1)["rank"], 0);
        let plain: serde_json::Value =
            serde_json::from_str(&body(0, 1, 0, BulkFields::Plain)).expect("JSON");
        assert_eq!(
            plain["items"][0]["data"],
            serde_json::json!({"name": "bulk-0-0", "status": "active"})
        );
    }
}

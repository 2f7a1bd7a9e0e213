//! What an engine reports for monitoring, read when `/metrics` is scraped: the SQLite
//! writer's queue and batch sizes, the PostgreSQL pool's connections and its group commit's
//! queue and batch sizes; the SQLite record cache's hits and size. Recording costs an
//! atomic add per batch (an add under the lock a get already holds, for the cache), never
//! a lock or anything per row.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the batch-size buckets: powers of two up to the writer's largest batch.
pub const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// An engine's figures at one moment; the parts an engine does not have are `None`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// SQLite: the writer thread.
    pub writer: Option<WriterStats>,
    /// PostgreSQL: the primary's connection pool.
    pub pool: Option<PoolStats>,
    /// PostgreSQL: the group commit of record writes (its queue and batch sizes).
    pub group: Option<WriterStats>,
    /// SQLite, when `plinth serve` keeps records after gets: what it kept and found.
    pub record_cache: Option<CacheStats>,
}

/// The records kept after gets (SQLite).
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    /// Gets answered from the kept records, since the store opened.
    pub hits: u64,
    /// Gets that read the database, since the store opened.
    pub misses: u64,
    /// Records kept now.
    pub records: u64,
    /// Their estimated size in bytes.
    pub bytes: u64,
}

/// A group commit (the SQLite writer thread, PostgreSQL's group-commit task): jobs waiting
/// for it and the sizes of the batches it committed.
#[derive(Debug, Clone)]
pub struct WriterStats {
    /// Jobs queued for the writer thread, not yet taken into a batch.
    pub queue_depth: u64,
    /// Jobs per committed transaction since the store opened.
    pub batch_sizes: BatchHistogram,
}

/// A histogram of batch sizes: per bucket of [`BATCH_BUCKETS`] the batches that fell into
/// it (not cumulative), then their total of jobs and their count.
#[derive(Debug, Clone)]
pub struct BatchHistogram {
    /// `(upper bound, batches)` for each bucket of [`BATCH_BUCKETS`].
    pub buckets: Vec<(f64, u64)>,
    /// Jobs in all batches.
    pub sum: u64,
    /// Batches.
    pub count: u64,
}

/// A connection pool's state (deadpool's `status()`).
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// The most connections the pool opens.
    pub max_size: u64,
    /// Connections open now.
    pub size: u64,
    /// Open connections lent out.
    pub in_use: u64,
    /// Open connections idle in the pool.
    pub idle: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
}

/// The writer's batch sizes, counted as they are committed (one call per batch).
#[derive(Debug, Default)]
pub(crate) struct BatchSizes {
    /// Batches per bucket of [`BATCH_BUCKETS`]; the last counts any larger one.
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    sum: AtomicU64,
}

impl BatchSizes {
    /// Counts one batch of `jobs` jobs.
    pub(crate) fn observe(&self, jobs: usize) {
        let n = jobs as f64;
        let i = BATCH_BUCKETS
            .iter()
            .position(|&b| n <= b)
            .unwrap_or(BATCH_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(jobs as u64, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> BatchHistogram {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let mut buckets: Vec<(f64, u64)> = BATCH_BUCKETS
            .iter()
            .copied()
            .zip(counts.iter().copied())
            .collect();
        buckets.push((f64::INFINITY, counts[BATCH_BUCKETS.len()]));
        BatchHistogram {
            count: counts.iter().sum(),
            sum: self.sum.load(Ordering::Relaxed),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fall_into_the_smallest_bucket_that_holds_them() {
        let sizes = BatchSizes::default();
        for jobs in [1, 2, 3, 256, 300] {
            sizes.observe(jobs);
        }
        let h = sizes.snapshot();
        assert_eq!(h.count, 5);
        assert_eq!(h.sum, 562);
        let count_at = |le: f64| h.buckets.iter().find(|(b, _)| *b == le).map(|(_, c)| *c);
        assert_eq!(count_at(1.0), Some(1));
        assert_eq!(count_at(2.0), Some(1));
        assert_eq!(count_at(4.0), Some(1));
        assert_eq!(count_at(256.0), Some(1));
        assert_eq!(count_at(f64::INFINITY), Some(1));
    }
}

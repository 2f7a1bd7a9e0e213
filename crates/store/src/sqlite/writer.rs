//! The writer thread: the one connection that writes, with group commit.
//!
//! Write jobs arrive on a bounded channel. The thread takes every job already waiting (up to
//! [`MAX_BATCH`]), runs them in one transaction and commits once; only then does each
//! caller get its answer. A job that fails leaves the others intact: the jobs run without
//! savepoints until one fails, then the transaction is rolled back, the jobs before it run
//! again and the rest run each in its own savepoint, as do the next batches until a few in
//! a row had no failure (see [`run_plain`]). Batching changes
//! throughput, never outcomes: every acknowledged write is committed, and every refused one
//! left nothing behind.

use super::cache::RecordCache;
use super::checkpoint::Checkpointer;
use super::errors::map;
use super::exec::WriteConn;
use super::recent::{Appended, Recent};
use crate::StoreError;
use crate::sql::{audit, ready};
use crate::stats::{BatchSizes, EngineStats, WriterStats};
use plinth_core::Timestamp;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed together: bounds the latency a batch adds to its first job.
const MAX_BATCH: usize = 256;
/// Batches in a row without a failed job before the jobs run without savepoints again: a
/// client whose writes keep failing (a stale `If-Match`, say) must not make every batch
/// run twice.
const CALM: u32 = 8;
/// Jobs that may wait for the writer; senders beyond that wait (backpressure).
pub(super) const QUEUE: usize = 4096;

/// The write connection and its clock.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) conn: WriteConn,
    /// Creation and update times are strictly increasing in commit order, so keyset
    /// pagination on `created_at` never misses a record committed after a page was read.
    last_ts: Timestamp,
    /// Batches in a row without a failed job (saturating at [`CALM`]): at `CALM`, the next
    /// batch runs its jobs without savepoints.
    calm: u32,
    /// Copies the log into the database file beside the writer; none when read-only.
    checkpointer: Option<Checkpointer>,
    /// The change log's tail, kept after each commit (see `recent`).
    pub(super) recent: Arc<Recent>,
    /// Records kept after gets: the writer drops those it changed (see `cache`).
    records: Arc<RecordCache>,
    closed: bool,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        checkpointer: Option<Checkpointer>,
        recent: Arc<Recent>,
        records: Arc<RecordCache>,
    ) -> Self {
        Self {
            conn: WriteConn::new(conn),
            last_ts: Timestamp::from_system(std::time::UNIX_EPOCH),
            calm: CALM,
            checkpointer,
            recent,
            records,
            closed: false,
        }
    }

    /// The time of the write being made: now, or just after the previous write's time.
    pub(super) fn now(&mut self) -> Timestamp {
        let now = Timestamp::from_system(std::time::SystemTime::now());
        self.last_ts = if now > self.last_ts {
            now
        } else {
            self.last_ts.next()
        };
        self.last_ts
    }

    /// Ends the writer thread after the current message, and stops the checkpointer (the
    /// close checkpoints last, on the writer's connection).
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.checkpointer.take();
    }
}

impl Drop for Writer {
    /// The checkpointer's connection closes after the writer's, whose close checkpoints.
    fn drop(&mut self) {
        self.checkpointer.take();
    }
}

/// A job that runs inside the shared transaction; its result is delivered after commit.
///
/// A job may run more than once: when a job of its batch fails, the transaction is rolled
/// back and the jobs run again (but one that panicked). Its only effects are on the
/// connection, so the answer delivered is that of the run that commits.
pub(super) trait Job: Send {
    /// Runs the job; true if it succeeded.
    fn run(&mut self, w: &mut Writer) -> bool;
    /// Delivers the result, or `failed` if the commit failed after the job succeeded.
    fn finish(self: Box<Self>, failed: Option<&str>);
}

struct Pending<T, F> {
    f: F,
    result: Option<Result<T, StoreError>>,
    /// A job that panicked is not run again: its answer stays the internal error.
    panicked: bool,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnMut(&mut Writer) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, w: &mut Writer) -> bool {
        if self.panicked {
            return false;
        }
        let f = &mut self.f;
        let result = catch_unwind(AssertUnwindSafe(|| f(w))).unwrap_or_else(|_| {
            self.panicked = true;
            Err(StoreError::internal("a write job panicked"))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failed: Option<&str>) {
        let result = match (self.result, failed) {
            (Some(Ok(_)), Some(why)) => {
                Err(StoreError::Unavailable(format!("commit failed: {why}")))
            }
            (Some(r), _) => r,
            // The batch could not start (the database is locked by another process, say).
            (None, Some(why)) => Err(StoreError::Unavailable(format!(
                "the write could not start: {why}"
            ))),
            (None, None) => Err(StoreError::internal("write job never ran")),
        };
        let _ = self.reply.send(result);
    }
}

/// A message to the writer thread.
pub(super) enum Msg {
    /// A job for the next group commit.
    Write(Box<dyn Job>),
    /// A job that manages its own transaction (migrations) or closes the connection; runs
    /// alone, between batches.
    Exclusive(Box<dyn FnOnce(&mut Writer) + Send>),
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Msg::Write",
            Self::Exclusive(_) => "Msg::Exclusive",
        })
    }
}

/// A write job whose result arrives on the returned receiver after its batch commits. `f`
/// may be called more than once (see [`Job`]); each call must start from its captured
/// inputs, not from what an earlier call left.
pub(super) fn write_job<T, F>(f: F) -> (Msg, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnMut(&mut Writer) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    (
        Msg::Write(Box::new(Pending {
            f,
            result: None,
            panicked: false,
            reply,
        })),
        rx,
    )
}

/// An exclusive job whose result arrives on the returned receiver.
pub(super) fn exclusive_job<T, F>(f: F) -> (Msg, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    let job = move |w: &mut Writer| {
        let result = catch_unwind(AssertUnwindSafe(|| f(w)))
            .unwrap_or_else(|_| Err(StoreError::internal("a job panicked")));
        // Before the answer: a migration, an import or a restore may change any record.
        w.records.clear();
        let _ = reply.send(result);
    };
    (Msg::Exclusive(Box::new(job)), rx)
}

/// The way to the writer thread: its queue, and the sizes of the batches it committed.
#[derive(Debug)]
pub(super) struct Queue {
    tx: mpsc::Sender<Msg>,
    batches: Arc<BatchSizes>,
}

impl Queue {
    /// Queues `msg`, waiting while the queue is full; fails once the thread has stopped.
    pub(super) async fn send(&self, msg: Msg) -> Result<(), ()> {
        self.tx.send(msg).await.map_err(drop)
    }

    /// A place in the queue, for a test to send into as the writer thread stops.
    #[cfg(test)]
    pub(super) async fn reserve(&self) -> Option<mpsc::Permit<'_, Msg>> {
        self.tx.reserve().await.ok()
    }

    /// Waits until the writer thread takes no more jobs.
    #[cfg(test)]
    pub(super) async fn stopped(&self) {
        self.tx.closed().await;
    }

    /// The queue's depth now and the batch sizes so far.
    pub(super) fn stats(&self) -> EngineStats {
        EngineStats {
            writer: Some(WriterStats {
                queue_depth: (self.tx.max_capacity() - self.tx.capacity()) as u64,
                batch_sizes: self.batches.snapshot(),
            }),
            pool: None,
            group: None,
            record_cache: None,
        }
    }
}

/// Starts the writer thread over `conn`.
pub(super) fn spawn(
    conn: Connection,
    checkpointer: Option<Checkpointer>,
    recent: Arc<Recent>,
    records: Arc<RecordCache>,
) -> Result<Queue, StoreError> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let batches = Arc::new(BatchSizes::default());
    let counted = Arc::clone(&batches);
    std::thread::Builder::new()
        .name("plinth-sqlite-writer".to_owned())
        .spawn(move || {
            run(
                Writer::new(conn, checkpointer, recent, records),
                rx,
                &counted,
            )
        })
        .map_err(StoreError::internal)?;
    Ok(Queue { tx, batches })
}

fn run(mut w: Writer, mut rx: mpsc::Receiver<Msg>, batches: &BatchSizes) {
    let mut next: Option<Msg> = None;
    while !w.closed {
        let Some(msg) = next.take().or_else(|| rx.blocking_recv()) else {
            break;
        };
        match msg {
            Msg::Exclusive(f) => {
                // A migration or a restore may change what the log holds and how it reads.
                w.recent.forget();
                f(&mut w);
                w.recent.settle(head(&w.conn), None);
            }
            Msg::Write(job) => {
                let mut batch = vec![job];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Msg::Write(job)) => batch.push(job),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                batches.observe(batch.len());
                commit_batch(&mut w, batch);
            }
        }
        if let Some(c) = &mut w.checkpointer {
            c.after_commit(&w.conn);
        }
    }
    drain(&mut rx);
    tracing::debug!("writer thread stopped");
}

/// Answers every job still queued, and every one sent by a caller that had its place in the
/// queue before the queue closed, that the database is closed (dropping a job drops its
/// reply, which its caller hears as closed). Only dropping the queue would leave such a late
/// job in it, unanswered for as long as the store lives: its caller would wait for ever.
fn drain(rx: &mut mpsc::Receiver<Msg>) {
    rx.close();
    while rx.blocking_recv().is_some() {}
}

/// The audit trail's head now; `None` when it cannot be read (no trail yet, say).
fn head(conn: &Connection) -> Option<i64> {
    conn.prepare_cached(crate::sql::changes::HEAD)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ok()
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(map)
}

fn commit_batch(w: &mut Writer, mut batch: Vec<Box<dyn Job>>) {
    if let Err(e) = begin(w) {
        fail_batch(w, batch, &e);
        return;
    }
    // The jobs' audit entries are held, then appended together after the last job: outside
    // any savepoint, and with one read of the chain's head.
    w.conn.audit.open();
    let ran = if w.calm >= CALM {
        run_plain(w, &mut batch)
    } else {
        run_guarded(w, &mut batch, true)
    };
    if let Err(e) = ran {
        // The transaction is in an unknown state: give up on the whole batch.
        tracing::error!(error = %e, "the batch's transaction failed; rolling it back");
        w.conn.audit.close();
        fail_batch(w, batch, &e);
        return;
    }
    let entries = w.conn.audit.close();
    let mut appended = None;
    if !entries.is_empty() {
        match ready(audit::append_kept(&w.conn, entries)) {
            Ok((before, after, changes)) => {
                appended = Some(Appended {
                    before,
                    after,
                    changes,
                });
            }
            Err(e) => {
                // No write may commit without its entry.
                tracing::error!(error = %e, "appending the audit entries failed; rolling back the batch");
                fail_batch(w, batch, &e);
                return;
            }
        }
    }
    let failed = match exec(&w.conn, "COMMIT") {
        Ok(()) => {
            // Before any answer: a get after one does not find the record as it was, and
            // the feed woken by one finds its change in the tail.
            match appended.as_ref().map(|a| &a.changes) {
                None => {}
                Some(Some(changes)) => w.records.drop_ids(changes.iter().map(|(c, _)| c.record.id)),
                Some(None) => w.records.clear(),
            }
            w.recent.settle(head(&w.conn), appended);
            None
        }
        Err(e) => {
            let _ = w.conn.execute_batch("ROLLBACK");
            Some(e.to_string())
        }
    };
    for job in batch {
        job.finish(failed.as_deref());
    }
}

/// Runs the jobs with no savepoints, whose page journaling costs a create about a tenth of
/// its work. Once one fails, the transaction is rolled back and the jobs run again, each
/// in its own savepoint but those before the failed one, which succeeded from this state
/// (if one of them now fails, every job is guarded). The next batches are guarded too, until
/// [`CALM`] of them in a row had no failure.
fn run_plain(w: &mut Writer, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let Some(failed) = batch.iter_mut().position(|job| !job.run(w)) else {
        return Ok(());
    };
    restart(w)?;
    let (before, after) = batch.split_at_mut(failed);
    if let Some(again) = before.iter_mut().position(|job| !job.run(w)) {
        // The state moved under a job (a time limit passed, say): begin once more and guard
        // every job.
        tracing::debug!(
            job = again,
            "a job's second run failed; guarding the whole batch"
        );
        restart(w)?;
        run_guarded(w, batch, true)?;
    } else {
        run_guarded(w, after, failed == 0)?;
    }
    w.calm = 0;
    Ok(())
}

/// Runs each job inside its own savepoint, so a failed one rolls back alone. While the
/// transaction holds nothing (`empty`) a job needs none: if it fails, the transaction is
/// begun again.
fn run_guarded(
    w: &mut Writer,
    jobs: &mut [Box<dyn Job>],
    mut empty: bool,
) -> Result<(), StoreError> {
    let mut calm = true;
    for job in jobs {
        if empty {
            if job.run(w) {
                empty = false;
            } else {
                calm = false;
                restart(w)?;
            }
            continue;
        }
        let mark = w.conn.audit.len();
        exec(&w.conn, "SAVEPOINT job")?;
        if !job.run(w) {
            calm = false;
            w.conn.audit.truncate(mark);
            exec(&w.conn, "ROLLBACK TO job")?;
        }
        exec(&w.conn, "RELEASE job")?;
    }
    w.calm = if calm { (w.calm + 1).min(CALM) } else { 0 };
    Ok(())
}

/// Rolls back what the transaction holds, with its held audit entries, and begins again.
fn restart(w: &mut Writer) -> Result<(), StoreError> {
    w.conn.audit.truncate(0);
    if !w.conn.is_autocommit() {
        exec(&w.conn, "ROLLBACK")?;
    }
    begin(w)
}

fn begin(w: &mut Writer) -> Result<(), StoreError> {
    exec(&w.conn, "BEGIN IMMEDIATE")
}

/// Rolls the batch back and fails every job in it with `e`.
fn fail_batch(w: &mut Writer, batch: Vec<Box<dyn Job>>, e: &StoreError) {
    let _ = w.conn.execute_batch("ROLLBACK");
    let why = e.to_string();
    for job in batch {
        job.finish(Some(&why));
    }
}

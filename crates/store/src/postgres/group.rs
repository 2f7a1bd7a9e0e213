//! Group commit: the record writes of one instance (creates, updates, deletes and restores)
//! that arrive while a transaction is open are committed together in the next one, so N
//! concurrent writes pay one hold of the audit chain's lock and one WAL flush instead of N.
//!
//! A task per store takes the first job waiting, then every job already queued (up to
//! [`MAX_BATCH`]; it never waits for more, so a lone write adds no latency), and runs them
//! on one pooled connection in one transaction, all at once: their statements are
//! pipelined, sent without waiting for the answers before. One batch runs at a time; the
//! jobs that arrive meanwhile make the next, so batches grow with the load. The audit
//! entries are appended together after the jobs (one lock, one read of the chain's head,
//! as the SQLite writer does), then the transaction commits, and only then is each caller
//! answered. If a job fails, the batch is rolled back and runs again job by job, each in
//! its own savepoint, so the failed one rolls back alone with the audit entries it held.
//! Jobs are data (what to write), run by the same statements as a write in a transaction
//! of its own, but for the records of several creates, inserted together once every job
//! has run. Batching changes throughput, never outcomes: every acknowledged write is
//! committed, and every refused one left nothing behind.
//!
//! A job that loses a race (`Contention`) runs again in a later batch, up to
//! [`WRITE_ATTEMPTS`] in all; so does every job of a batch whose commit lost one. Jobs take
//! their times from the store's clock in batch order (creates in queue order, then changes
//! in the order of the records they change: `in_lock_order`), so times are strictly
//! increasing in commit order within an instance.

mod tx;

use super::PgStore;
use crate::shared::Visibility;
use crate::sql::records::{Staged, StatusChange};
use crate::stats::{BatchSizes, WriterStats};
use crate::{Created, IdempotencyClaim, StoreError, WriteCtx};
use plinth_core::{Draft, ModelDef, Patch, Record, RecordId};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use tokio::sync::{Notify, mpsc, oneshot};
use tx::commit;

/// Most jobs committed together: run job by job (after a failure), each runs in a
/// subtransaction, and a backend caches 64 subtransaction ids before its snapshots
/// overflow (slowing every reader).
const MAX_BATCH: usize = 63;
/// Jobs that may wait for the task; senders beyond that wait (backpressure).
const QUEUE: usize = 4096;

/// A write to make in the next batch.
pub(super) enum Write {
    Create {
        ctx: WriteCtx,
        model: Arc<ModelDef>,
        vis: Visibility,
        draft: Draft,
        /// Its id, pii values and texts, staged before it was queued.
        staged: Staged,
        claim: Option<(String, IdempotencyClaim)>,
    },
    Update {
        ctx: WriteCtx,
        model: Arc<ModelDef>,
        vis: Visibility,
        id: RecordId,
        patch: Patch,
        expected: Option<i64>,
    },
    /// A delete or a restore.
    Status {
        ctx: WriteCtx,
        model: Arc<ModelDef>,
        id: RecordId,
        change: StatusChange,
        expected: Option<i64>,
    },
}

impl Write {
    /// Who writes, and from where.
    fn ctx(&self) -> &WriteCtx {
        match self {
            Self::Create { ctx, .. } | Self::Update { ctx, .. } | Self::Status { ctx, .. } => ctx,
        }
    }

    /// The record this write changes (its model's name and its id); none for a create.
    fn changes(&self) -> Option<(&str, RecordId)> {
        match self {
            Self::Create { .. } => None,
            Self::Update { model, id, .. } | Self::Status { model, id, .. } => {
                Some((model.name().as_str(), *id))
            }
        }
    }
}

/// What a write answers.
enum Answer {
    Created(Created),
    Changed(Record),
}

/// Where a write's answer goes.
enum Reply {
    Created(oneshot::Sender<Result<Created, StoreError>>),
    Changed(oneshot::Sender<Result<Record, StoreError>>),
}

/// A queued write, its caller, and the attempts it has had.
pub(super) struct Job {
    write: Write,
    reply: Reply,
    attempt: u32,
}

impl Job {
    /// Whether the caller stopped waiting (its time ran out): the job is not run.
    fn abandoned(&self) -> bool {
        match &self.reply {
            Reply::Created(r) => r.is_closed(),
            Reply::Changed(r) => r.is_closed(),
        }
    }

    fn answer(self, result: Result<Answer, StoreError>) {
        let mismatch = || StoreError::internal("a grouped write got another kind's answer");
        match self.reply {
            Reply::Created(r) => {
                let _ = r.send(result.and_then(|a| match a {
                    Answer::Created(c) => Ok(c),
                    Answer::Changed(_) => Err(mismatch()),
                }));
            }
            Reply::Changed(r) => {
                let _ = r.send(result.and_then(|a| match a {
                    Answer::Changed(record) => Ok(record),
                    Answer::Created(_) => Err(mismatch()),
                }));
            }
        }
    }
}

impl Job {
    /// Whether every statement of this job is sent when it is first polled, none of them
    /// waiting for another's answer (see `records::inserts_first` and
    /// `records::changes_first`).
    pub(super) fn sends_at_once(&self) -> bool {
        match &self.write {
            Write::Create {
                model,
                draft,
                claim,
                ..
            } => crate::sql::records::inserts_first(model, draft, claim.is_some()),
            Write::Update { model, patch, .. } => crate::sql::records::changes_first(model, patch),
            Write::Status { .. } => true,
        }
    }
}

/// Whether no two jobs of `batch` claim the same idempotency key or change the same record:
/// run at once, the second could read the first's claim before its record is written, or
/// the record as it was before the first changed it (and write an audit entry whose
/// changes start from there).
pub(super) fn apart(batch: &[Job]) -> bool {
    let mut claims = HashSet::new();
    let mut changed = HashSet::new();
    batch.iter().all(|job| match &job.write {
        Write::Create { model, claim, .. } => claim.as_ref().is_none_or(|(scope, c)| {
            claims.insert((model.name().as_str(), scope.as_str(), c.key.as_str()))
        }),
        Write::Update { .. } | Write::Status { .. } => {
            job.write.changes().is_none_or(|row| changed.insert(row))
        }
    })
}

/// A batch: `first`, then the jobs waiting (those to run again first, then the queue's), up
/// to [`MAX_BATCH`]. A second change of a record already in the batch is left at the front
/// of `again`, for the next batch: this one still runs at once (see [`apart`]), and that
/// change then starts from this one's. Jobs left so do not count towards the batch's size,
/// so changes queued for one busy record never keep the batch from the jobs behind them.
fn take(first: Job, again: &mut VecDeque<Job>, rx: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut changed = HashSet::new();
    let mut keep = |job: &Job| {
        job.write
            .changes()
            .is_none_or(|(model, id)| changed.insert((model.to_owned(), id)))
    };
    keep(&first);
    let mut batch = vec![first];
    let mut later = Vec::new();
    while batch.len() < MAX_BATCH {
        match again.pop_front().map_or_else(|| rx.try_recv().ok(), Some) {
            Some(job) if keep(&job) => batch.push(job),
            Some(job) => later.push(job),
            None => break,
        }
    }
    for job in later.into_iter().rev() {
        again.push_front(job);
    }
    batch
}

/// Whether `batch`, run at once, may take the audit chain's lock with its jobs' first
/// statements (see `tx::pipelined`): every job sends all its statements when first polled,
/// and the batch does not mix creates with changes (its creates' records, held,
/// are inserted once the changes are answered, so the insert would follow the lock).
pub(super) fn lock_early(batch: &[Job]) -> bool {
    let changes = batch
        .iter()
        .filter(|job| job.write.changes().is_some())
        .count();
    let mixed = changes > 0 && changes < batch.len();
    batch.iter().all(Job::sends_at_once) && !mixed
}

/// Puts `batch` in the order its jobs run: creates first, in queue order, then changes in
/// the order of the records they change. Their first statements go in that order, so two
/// batches (on two instances) that change the same records mostly lock them in the same
/// order rather than each wait on a row the other holds. Not always: a change that sets a
/// reference first locks the record it references, and a statement its connection had not
/// prepared is sent only after its preparation; a deadlock that follows PostgreSQL ends
/// after `deadlock_timeout`, and the batch that lost runs again.
pub(super) fn in_lock_order(batch: &mut [Job]) {
    batch.sort_by(|a, b| a.write.changes().cmp(&b.write.changes()));
}

/// The way to the group-commit task: its queue and the sizes of its batches.
pub(super) struct Group {
    tx: mpsc::Sender<Job>,
    batches: Arc<BatchSizes>,
    /// Notified by `close`: the task stops batching and answers every write still queued.
    stop: Arc<Notify>,
}

impl Group {
    /// The queue; the task is started by [`Group::start`] once the store exists.
    pub(super) fn new() -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let group = Self {
            tx,
            batches: Arc::new(BatchSizes::default()),
            stop: Arc::new(Notify::new()),
        };
        (group, rx)
    }

    /// Starts the task over `store`'s pool (held weakly: the task ends with the store).
    pub(super) fn start(store: &PgStore, rx: mpsc::Receiver<Job>) {
        let stop = Arc::clone(&store.inner.group.stop);
        tokio::spawn(run(Arc::downgrade(&store.inner), rx, stop));
    }

    /// Ends the task (`close`): the batch in flight is dropped, and writes still queued are
    /// answered that the database closed.
    pub(super) fn stop(&self) {
        self.stop.notify_one();
    }

    /// The queue's depth now and the batch sizes so far.
    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            queue_depth: (self.tx.max_capacity() - self.tx.capacity()) as u64,
            batch_sizes: self.batches.snapshot(),
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database is closed".to_owned())
}

impl PgStore {
    /// Creates a record in the next group commit.
    pub(super) async fn create_grouped(&self, write: Write) -> Result<Created, StoreError> {
        debug_assert!(matches!(write, Write::Create { .. }), "a create");
        let (reply, rx) = oneshot::channel();
        self.grouped(write, Reply::Created(reply), rx).await
    }

    /// Updates, deletes or restores a record in the next group commit.
    pub(super) async fn change_grouped(&self, write: Write) -> Result<Record, StoreError> {
        debug_assert!(write.changes().is_some(), "a change of a record");
        let (reply, rx) = oneshot::channel();
        self.grouped(write, Reply::Changed(reply), rx).await
    }

    async fn grouped<T>(
        &self,
        write: Write,
        reply: Reply,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let job = Job {
            write,
            reply,
            attempt: 1,
        };
        let written = self
            .bounded(async {
                self.inner.group.tx.send(job).await.map_err(|_| closed())?;
                rx.await.map_err(|_| closed())?
            })
            .await;
        self.changed(written)
    }
}

/// The task: batches until the store is closed or dropped; then answers that the database
/// closed to every job still queued, and to every one sent by a caller that had its place
/// in the queue before it closed. Only dropping the queue would leave such a late job in
/// it, unanswered for as long as the store lives: its caller would wait for ever.
async fn run(inner: Weak<super::Inner>, mut rx: mpsc::Receiver<Job>, stop: Arc<Notify>) {
    tokio::select! {
        () = batches(inner, &mut rx) => {}
        // The batch in flight is dropped, and with it its callers' replies.
        () = stop.notified() => {}
    }
    rx.close();
    while let Some(job) = rx.recv().await {
        job.answer(Err(closed()));
    }
    tracing::debug!("the group-commit task stopped");
}

/// Batches until the store is dropped or the queue closed, one at a time. Two at once (the
/// next one's writes beside the one before's audit entries and commit) served fewer
/// writes: each batch was smaller, and the chain's lock is still held by one at a time.
async fn batches(inner: Weak<super::Inner>, rx: &mut mpsc::Receiver<Job>) {
    // Jobs that lost a race, for the next batch (ahead of newer ones).
    let mut again: VecDeque<Job> = VecDeque::new();
    loop {
        let first = match again.pop_front() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let mut batch = take(first, &mut again, rx);
        batch.retain(|job| !job.abandoned());
        if batch.is_empty() {
            continue;
        }
        let Some(inner) = inner.upgrade() else {
            break;
        };
        let store = PgStore { inner };
        store.inner.group.batches.observe(batch.len());
        again.extend(commit(&store, batch).await);
    }
    for job in again {
        job.answer(Err(closed()));
    }
}

#[cfg(test)]
mod tests;

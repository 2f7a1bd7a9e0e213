//! Group commit: the record creates of one instance that arrive while a transaction is open
//! are committed together in the next one, so N concurrent creates pay one hold of the
//! audit chain's lock and one WAL flush instead of N. (Updates and deletes still run in a
//! transaction each: `Write` is where they would join.)
//!
//! A task per store takes the first job waiting, then every job already queued (up to
//! [`MAX_BATCH`]; it never waits for more, so a lone write adds no latency), and runs them
//! on one pooled connection in one transaction (up to [`IN_FLIGHT`] batches at once: one
//! runs its writes while the one before appends its audit entries and commits, see
//! `Turn`), all at once: their statements are
//! pipelined, sent without waiting for the answers before. The audit entries are appended
//! together after the jobs (one lock, one read of the chain's head, as the SQLite writer
//! does), then the transaction commits, and only then is each caller answered. If a job
//! fails, the batch is rolled back and runs again job by job, each in its own savepoint,
//! so the failed one rolls back alone with the audit entries it held. Jobs are data (what
//! to write), run by the same statements as a write in a transaction of its own. Batching
//! changes throughput, never outcomes: every acknowledged write is committed, and every
//! refused one left nothing behind.
//!
//! A job that loses a race (`Contention`) runs again in a later batch, up to
//! [`WRITE_ATTEMPTS`] in all; so does every job of a batch whose commit lost one. Jobs take
//! their times from the store's clock in queue order, so times are strictly increasing in
//! commit order within an instance.

use super::exec::Pg;
use super::{PgStore, WRITE_ATTEMPTS, errors};
use crate::shared::Visibility;
use crate::sql::audit::{self, AuditBatch};
use crate::sql::records::{self, By};
use crate::sql::{Dialect, Exec, Query};
use crate::stats::{BatchSizes, WriterStats};
use crate::{Created, IdempotencyClaim, StoreError, WriteCtx};
use deadpool_postgres::Transaction;
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use plinth_core::{Draft, ModelDef};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::task::Poll;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;

/// Most jobs committed together: each runs in a subtransaction, and a backend caches 64
/// subtransaction ids before its snapshots overflow (slowing every reader).
const MAX_BATCH: usize = 63;
/// Batches running at once, each on a connection of its own: the next one's writes run
/// while the one before appends its audit entries and commits.
const IN_FLIGHT: usize = 2;
/// Jobs that may wait for the task; senders beyond that wait (backpressure).
const QUEUE: usize = 4096;

/// A write to make in the next batch.
pub(super) enum Write {
    Create {
        ctx: WriteCtx,
        model: Arc<ModelDef>,
        vis: Visibility,
        draft: Draft,
        claim: Option<(String, IdempotencyClaim)>,
    },
}

impl Write {
    /// Who writes, and from where.
    fn ctx(&self) -> &WriteCtx {
        match self {
            Self::Create { ctx, .. } => ctx,
        }
    }
}

/// What a write answers.
enum Answer {
    Created(Created),
}

/// Where a write's answer goes.
enum Reply {
    Created(oneshot::Sender<Result<Created, StoreError>>),
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
        }
    }

    fn answer(self, result: Result<Answer, StoreError>) {
        match self.reply {
            Reply::Created(r) => {
                let _ = r.send(result.map(|Answer::Created(c)| c));
            }
        }
    }
}

/// The way to the group-commit task: its queue and the sizes of its batches.
pub(super) struct Group {
    tx: mpsc::Sender<Job>,
    batches: Arc<BatchSizes>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Group {
    /// The queue; the task is started by [`Group::start`] once the store exists.
    pub(super) fn new() -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let group = Self {
            tx,
            batches: Arc::new(BatchSizes::default()),
            task: std::sync::Mutex::new(None),
        };
        (group, rx)
    }

    /// Starts the task over `store`'s pool (held weakly: the task ends with the store).
    pub(super) fn start(store: &PgStore, rx: mpsc::Receiver<Job>) {
        let task = tokio::spawn(run(Arc::downgrade(&store.inner), rx));
        if let Ok(mut slot) = store.inner.group.task.lock() {
            *slot = Some(task);
        }
    }

    /// Ends the task (`close`): writes still queued are answered that the database closed.
    pub(super) fn stop(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
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
        let (reply, rx) = oneshot::channel();
        self.grouped(write, Reply::Created(reply), rx).await
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

/// The task: batches until the store is closed or dropped, up to [`IN_FLIGHT`] at once.
async fn run(inner: Weak<super::Inner>, mut rx: mpsc::Receiver<Job>) {
    // Jobs that lost a race, for the next batch (ahead of newer ones).
    let mut again: VecDeque<Job> = VecDeque::new();
    let mut running = FuturesUnordered::new();
    // The signals of the latest batch started, which the next waits for (see `Turn`).
    let mut writes: Option<oneshot::Receiver<()>> = None;
    let mut appends: Option<oneshot::Receiver<()>> = None;
    loop {
        while running.len() >= IN_FLIGHT {
            if let Some(retry) = running.next().await {
                again.extend::<Vec<Job>>(retry);
            }
        }
        let first = match again.pop_front() {
            Some(job) => job,
            None => tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                Some(retry) = running.next(), if !running.is_empty() => {
                    again.extend(retry);
                    continue;
                }
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match again.pop_front().map_or_else(|| rx.try_recv().ok(), Some) {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        batch.retain(|job| !job.abandoned());
        if batch.is_empty() {
            continue;
        }
        let Some(inner) = inner.upgrade() else {
            break;
        };
        let store = PgStore { inner };
        store.inner.group.batches.observe(batch.len());
        let (wrote, next_writes) = oneshot::channel();
        let (appended, next_appends) = oneshot::channel();
        let order = Turn {
            may_write: writes.replace(next_writes),
            wrote: Some(wrote),
            may_append: appends.replace(next_appends),
            appended: Some(appended),
        };
        running.push(Box::pin(async move { commit(&store, batch, order).await }));
    }
    while let Some(retry) = running.next().await {
        for job in retry {
            job.answer(Err(closed()));
        }
    }
    tracing::debug!("the group-commit task stopped");
}

/// A batch's place among the batches in flight. Its writes start once the batch started
/// before it has run its own (so it never waits on a row this one holds, which would wait
/// on it in turn, unseen by PostgreSQL's deadlock detection); it appends its audit entries
/// once that batch has appended its own; an early end lets the next go (dropping a
/// `Turn` drops its signals). So entries, and commits, follow the order the batches
/// started in, as their times do, while one batch's writes run beside the previous one's
/// audit entries and commit.
struct Turn {
    /// The batch before ran its writes.
    may_write: Option<oneshot::Receiver<()>>,
    /// Tells the next batch this one ran its writes.
    wrote: Option<oneshot::Sender<()>>,
    /// The batch before appended its audit entries.
    may_append: Option<oneshot::Receiver<()>>,
    /// Tells the next batch this one appended its audit entries.
    appended: Option<oneshot::Sender<()>>,
}

/// Waits for `signal` (once); a dropped sender counts as given.
async fn after(signal: &mut Option<oneshot::Receiver<()>>) {
    if let Some(before) = signal.take() {
        let _ = before.await;
    }
}

/// Gives `signal` (once).
fn give(signal: &mut Option<oneshot::Sender<()>>) {
    if let Some(signal) = signal.take() {
        let _ = signal.send(());
    }
}

impl Turn {
    /// Waits until this batch may run its writes.
    async fn write(&mut self) {
        after(&mut self.may_write).await;
    }

    /// This batch ran its writes: the next may run its own; waits until this one may
    /// append its audit entries.
    async fn append(&mut self) {
        give(&mut self.wrote);
        after(&mut self.may_append).await;
    }

    /// This batch appended its audit entries: the next may append its own.
    fn appended(&mut self) {
        give(&mut self.appended);
    }
}

/// Runs `batch` in one transaction and answers its jobs; returns those to run again.
///
/// First every job at once, their statements pipelined (each sent without waiting for the
/// answer to the one before: a round trip for the batch rather than several a job), no
/// savepoints. If a job of several fails, that transaction is rolled back and the batch
/// runs again job by job, each in its savepoint, so the failed one rolls back alone: a
/// failure costs its batch a second run; the jobs that succeed never see it. A batch
/// holding a job that already lost a race runs job by job at once, so that each attempt
/// of a write is one run.
async fn commit(store: &PgStore, batch: Vec<Job>, mut turn: Turn) -> Vec<Job> {
    turn.write().await;
    let mut client = match store.inner.pool.get().await {
        Ok(client) => client,
        Err(e) => return settle(batch, Err(errors::pool(e))),
    };
    let lone = batch.len() == 1;
    if lone || (batch.iter().all(|job| job.attempt == 1) && claims_apart(&batch)) {
        match pipelined(store, &mut client, &batch, &mut turn).await {
            Ok(Ok(answers)) => {
                for (job, answer) in batch.into_iter().zip(answers) {
                    job.answer(Ok(answer));
                }
                return Vec::new();
            }
            Ok(Err(failed)) if lone => {
                // Alone, its failure is its own: answered as a run job by job would.
                return batch
                    .into_iter()
                    .next()
                    .and_then(|job| finish(job, Err(failed)))
                    .into_iter()
                    .collect();
            }
            Ok(Err(_)) => {}
            Err(e) => return settle(batch, Err(e)),
        }
    }
    one_by_one(store, &mut client, batch, &mut turn).await
}

/// Whether no two jobs of `batch` claim the same idempotency key: run at once, the second
/// could read the first's claim before its record is written.
fn claims_apart(batch: &[Job]) -> bool {
    let mut claims = std::collections::HashSet::new();
    batch.iter().all(|job| match &job.write {
        Write::Create { model, claim, .. } => claim.as_ref().is_none_or(|(scope, c)| {
            claims.insert((model.name().as_str(), scope.as_str(), c.key.as_str()))
        }),
    })
}

/// Runs every job of `batch` at once in one transaction: their answers, committed; or the
/// first failed job's error, the transaction rolled back and nothing of the batch kept; or
/// an error when the batch cannot commit at all. Each job takes its time from the clock in
/// queue order, before any runs, and its audit entries are appended in that order.
async fn pipelined(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    batch: &[Job],
    turn: &mut Turn,
) -> Result<Result<Vec<Answer>, StoreError>, StoreError> {
    let tx = client.transaction().await.map_err(errors::map)?;
    let held: Vec<AuditBatch> = batch.iter().map(|_| AuditBatch::opened()).collect();
    let runs = batch.iter().zip(&held).map(|(job, held)| {
        let e = Grouped { tx: &tx, held };
        let by = store.by(job.write.ctx());
        async move { caught(apply(&e, by, &job.write)).await }
    });
    let mut answers = Vec::with_capacity(batch.len());
    for result in join_all(runs.collect::<Vec<_>>()).await {
        match result.unwrap_or_else(|| Err(panicked())) {
            Ok(answer) => answers.push(answer),
            Err(e) => {
                let _ = tx.rollback().await;
                return Ok(Err(e));
            }
        }
    }
    let entries: Vec<_> = held.iter().flat_map(AuditBatch::close).collect();
    turn.append().await;
    if !entries.is_empty()
        && let Err(e) = audit::append_all(&Pg(&tx), entries).await
    {
        let _ = tx.rollback().await;
        return Err(e);
    }
    turn.appended();
    tx.commit().await.map_err(errors::map)?;
    Ok(Ok(answers))
}

fn panicked() -> StoreError {
    StoreError::internal("a grouped write panicked")
}

/// Answers `job` with `result`, or gives it back to run again when it lost a race and has
/// attempts left.
fn finish(job: Job, result: Result<Answer, StoreError>) -> Option<Job> {
    match result {
        Err(StoreError::Contention(why)) if job.attempt < WRITE_ATTEMPTS => {
            tracing::debug!(attempt = job.attempt, why = %why, "retrying a write that lost a race");
            Some(Job {
                attempt: job.attempt + 1,
                ..job
            })
        }
        result => {
            job.answer(result);
            None
        }
    }
}

/// Runs `batch` job by job in one transaction, each in its savepoint, and answers its jobs;
/// returns those to run again.
async fn one_by_one(
    store: &PgStore,
    client: &mut deadpool_postgres::Client,
    batch: Vec<Job>,
    turn: &mut Turn,
) -> Vec<Job> {
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return settle(batch, Err(errors::map(e))),
    };
    let held = AuditBatch::opened();
    let mut results = Vec::with_capacity(batch.len());
    for job in &batch {
        match run_job(store, &tx, &held, &job.write).await {
            Ok(result) => results.push(result),
            Err(e) => {
                // The transaction is in an unknown state: give up on the whole batch.
                tracing::error!(error = %e, "a grouped transaction failed; rolling it back");
                let _ = tx.rollback().await;
                return settle(batch, Err(e));
            }
        }
    }
    let entries = held.close();
    turn.append().await;
    if !entries.is_empty()
        && let Err(e) = audit::append_all(&Pg(&tx), entries).await
    {
        // No write may commit without its entry.
        let _ = tx.rollback().await;
        return settle(batch, Err(e));
    }
    turn.appended();
    match tx.commit().await.map_err(errors::map) {
        Ok(()) => batch
            .into_iter()
            .zip(results)
            .filter_map(|(job, result)| finish(job, result))
            .collect(),
        Err(e) => settle(batch, Err(e)),
    }
}

/// Answers every job of a batch that did not commit with `outcome`'s error, or keeps it for
/// another attempt when the batch lost a race.
fn settle(batch: Vec<Job>, outcome: Result<(), StoreError>) -> Vec<Job> {
    let Err(e) = outcome else {
        return Vec::new();
    };
    let mut again = Vec::new();
    for job in batch {
        match &e {
            StoreError::Contention(_) if job.attempt < WRITE_ATTEMPTS => again.push(Job {
                attempt: job.attempt + 1,
                ..job
            }),
            _ => job.answer(Err(copy(&e))),
        }
    }
    again
}

/// The same failure again, for another job of the batch it failed.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Contention(why) => StoreError::Contention(why.clone()),
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::InUse(why) => StoreError::InUse(why.clone()),
        StoreError::Timeout(d) => StoreError::Timeout(*d),
        StoreError::Conflict { field, reason } => StoreError::Conflict {
            field: field.clone(),
            reason: reason.clone(),
        },
        StoreError::InvalidValue { reason } => StoreError::InvalidValue {
            reason: reason.clone(),
        },
        other => StoreError::internal(other.to_string()),
    }
}

/// Runs one job in its own savepoint: the job's result, or the error that leaves the
/// transaction unusable (a savepoint statement failed). A savepoint is never released
/// (a round trip saved per job): the next job's, of the same name, nests in it and is the one
/// a failed job rolls back to; the commit ends them all.
async fn run_job(
    store: &PgStore,
    tx: &Transaction<'_>,
    held: &AuditBatch,
    write: &Write,
) -> Result<Result<Answer, StoreError>, StoreError> {
    let mark = held.len();
    tx.batch_execute("SAVEPOINT job")
        .await
        .map_err(errors::map)?;
    let e = Grouped { tx, held };
    let result = caught(apply(&e, store.by(write.ctx()), write))
        .await
        .unwrap_or_else(|| Err(panicked()));
    if result.is_err() {
        held.truncate(mark);
        tx.batch_execute("ROLLBACK TO SAVEPOINT job")
            .await
            .map_err(errors::map)?;
    }
    Ok(result)
}

/// The write's statements, `by` its time and keys: the same as a write in a transaction of
/// its own.
async fn apply(e: &Grouped<'_, '_>, by: By<'_>, write: &Write) -> Result<Answer, StoreError> {
    match write {
        Write::Create {
            model,
            vis,
            draft,
            claim,
            ..
        } => records::create(e, by, vis, model, draft.clone(), claim.clone())
            .await
            .map(Answer::Created),
    }
}

/// `fut`'s output, or `None` if polling it panicked (the task lives on).
async fn caught<T>(fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        },
    )
    .await
}

/// The batch's transaction as an [`Exec`] whose audit entries are held for the batch's end.
struct Grouped<'c, 't> {
    tx: &'c Transaction<'t>,
    held: &'c AuditBatch,
}

impl Exec for Grouped<'_, '_> {
    const DIALECT: Dialect = Dialect::Postgres;
    type Row<'r> = Row;

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        Pg(self.tx).rows(q, f).await
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Pg(self.tx).row(q, f).await
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        Pg(self.tx).execute(q).await
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Pg(self.tx).batch(sql).await
    }

    fn audit_batch(&self) -> Option<&AuditBatch> {
        Some(self.held)
    }
}

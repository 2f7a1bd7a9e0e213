//! One batch's transaction: every job at once, their statements pipelined, or job by job
//! in savepoints when one of several failed (see the parent module).

use super::super::exec::Pg;
use super::super::{PgStore, WRITE_ATTEMPTS, errors};
use super::{Answer, Job, Write, apart, closed, in_lock_order, lock_early};
use crate::StoreError;
use crate::sql::audit::{self, AuditBatch};
use crate::sql::records;
use crate::sql::records::{By, NewRow};
use crate::sql::{Dialect, Exec, Query, runs};
use deadpool_postgres::{GenericClient, Transaction};
use futures_util::future::{join, join_all};
use plinth_core::ModelDef;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use tokio_postgres::{Row, Statement};

/// Runs `batch` in one transaction and answers its jobs; returns those to run again.
///
/// First every job at once, their statements pipelined (each sent without waiting for the
/// answer to the one before: a round trip for the batch rather than several a job), no
/// savepoints. If a job of several fails, that transaction is rolled back and the batch
/// runs again job by job, each in its savepoint, so the failed one rolls back alone: a
/// failure costs its batch a second run; the jobs that succeed never see it. A batch
/// holding a job that already lost a race runs job by job at once, so that each attempt
/// of a write is one run; so does one with two jobs for one record or one idempotency key
/// (see [`apart`]). The jobs run in lock order (see [`in_lock_order`]).
pub(super) async fn commit(store: &PgStore, mut batch: Vec<Job>) -> Vec<Job> {
    in_lock_order(&mut batch);
    let mut conn = match store.inner.pool.get().await {
        Ok(client) => Conn {
            client: Some(client),
            open: false,
        },
        Err(e) => return settle(batch, Err(errors::pool(e))),
    };
    let lone = batch.len() == 1;
    if lone || (batch.iter().all(|job| job.attempt == 1) && apart(&batch)) {
        match pipelined(store, &mut conn, &batch).await {
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
    let Some(client) = conn.client.as_mut() else {
        return settle(batch, Err(closed()));
    };
    one_by_one(store, client, batch).await
}

/// A pooled connection, and whether it holds a transaction begun by hand (its `BEGIN` sent
/// with the batch's first statements, its `COMMIT` with the last: see [`pipelined`]).
/// Dropped with that transaction open (its batch's future dropped, or a panic), it leaves
/// the pool and closes, which rolls the transaction back: a connection is never handed on
/// in the middle of a transaction.
struct Conn {
    client: Option<deadpool_postgres::Client>,
    open: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.open
            && let Some(client) = self.client.take()
        {
            drop(deadpool_postgres::Client::take(client));
        }
    }
}

impl Conn {
    /// Rolls back the transaction begun by hand; it stays open (and the connection leaves
    /// the pool) only if the connection is lost.
    async fn rollback(&mut self) {
        if let Some(client) = &self.client {
            let _ = client.batch_execute("ROLLBACK").await;
            self.open = client.is_closed();
        }
    }
}

/// Runs every job of `batch` at once in one transaction: their answers, committed; or the
/// first failed job's error, the transaction rolled back and nothing of the batch kept; or
/// an error when the batch cannot commit at all. Each job takes its time from the clock in
/// batch order (see [`in_lock_order`]), before any runs, and its audit entries are
/// appended in that order.
///
/// The transaction is begun and ended by hand so that its `BEGIN` travels with the jobs'
/// first statements and its `COMMIT` with the audit entries. The chain's lock and head
/// go with the jobs' first statements, or, for jobs that cannot have them go so, once the
/// jobs ran. A lone create, update, delete or restore then costs two round trips (`BEGIN`,
/// its statements, the lock and head; the entry and `COMMIT`), three otherwise, rather
/// than five. It is taken early only by jobs that send all their statements at once
/// ([`Job::sends_at_once`]: a create's insert, a change's read and `UPDATE`), never by
/// creates mixed with changes ([`lock_early`]), so the lock is queued behind them: it
/// waits in the server for another instance's `COMMIT` and is not held while a statement
/// waits on a row another transaction holds (one that would want the lock next). The one
/// exception is a statement its connection had not prepared yet, sent after its
/// preparation, so after the lock; should it then meet such a row, the server finds the
/// deadlock (after `deadlock_timeout`) and the batch runs again, as after any lost race.
/// `BEGIN` is sent first, as the join first polls it; it fails only on a lost connection,
/// which fails every statement behind it too. `COMMIT` is sent behind the entries, each
/// run with the statement prepared for it (a cache cleared meanwhile cannot delay one past
/// `COMMIT`); if one of them failed in the server, PostgreSQL rolls back at that `COMMIT`,
/// and if one failed before it was sent, `ROLLBACK` goes instead: nothing of the batch is
/// kept.
async fn pipelined(
    store: &PgStore,
    conn: &mut Conn,
    batch: &[Job],
) -> Result<Result<Vec<Answer>, StoreError>, StoreError> {
    let Some(client) = &conn.client else {
        return Err(closed());
    };
    let held: Vec<AuditBatch> = batch.iter().map(|_| AuditBatch::opened()).collect();
    // Several creates' records go in few statements once every job has run (alone, a
    // record's insert goes with `BEGIN` as it is).
    let holds: Vec<AtomicBool> = batch.iter().map(|_| AtomicBool::new(false)).collect();
    let several = batch.len() > 1;
    let runs = batch
        .iter()
        .zip(&held)
        .zip(&holds)
        .map(|((job, held), hold)| {
            let e = Grouped {
                tx: client,
                held,
                hold: several.then_some(hold),
            };
            let by = store.by(job.write.ctx());
            async move { caught(apply(&e, by, &job.write)).await }
        });
    conn.open = true;
    let jobs = async {
        let results: Vec<_> = join_all(runs.collect::<Vec<_>>())
            .await
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(panicked())))
            .collect();
        // Sealing and binding run here, outside the jobs: a panic fails the batch alone.
        let inserted = caught(insert_held(store, client, batch, &results, &holds))
            .await
            .unwrap_or_else(|| Err(panicked()));
        (results, inserted)
    };
    // Polled after the jobs, so sent behind their first statements.
    let early = lock_early(batch);
    let head = async {
        if early {
            Some(audit::head(&Pg(client)).await)
        } else {
            None
        }
    };
    let (begun, ((results, inserted), head)) =
        join(client.batch_execute("BEGIN"), join(jobs, head)).await;
    begun.map_err(errors::map)?;
    let mut answers = Vec::with_capacity(batch.len());
    for result in results.into_iter().chain(inserted.err().map(Err)) {
        match result {
            Ok(answer) => answers.push(answer),
            Err(e) => {
                conn.rollback().await;
                return Ok(Err(e));
            }
        }
    }
    let entries: Vec<_> = held.iter().flat_map(AuditBatch::close).collect();
    // Sent behind the entries, which hold the chain's lock till then. `ROLLBACK` instead if
    // an entry could not be sent.
    let mut sent = false;
    let committed = {
        let sent = &mut sent;
        let commit = |sendable: bool| async move {
            *sent = true;
            let end = if sendable { "COMMIT" } else { "ROLLBACK" };
            client.batch_execute(end).await.map_err(errors::map)
        };
        let head = match head {
            Some(early) => Some(early),
            None if entries.is_empty() => None,
            None => Some(audit::head(&Pg(client)).await),
        };
        match head {
            // A failed statement fails the transaction: its `COMMIT` would roll back.
            Some(Err(e)) => Err(e),
            Some(Ok(head)) if !entries.is_empty() => {
                audit::append_after_then(&Pg(client), head, entries, commit)
                    .await
                    .map(drop)
            }
            _ => commit(true).await,
        }
    };
    if sent {
        // A `COMMIT` ends the transaction whatever it answers, unless the connection is lost.
        conn.open = client.is_closed();
    } else {
        conn.rollback().await;
    }
    committed?;
    Ok(Ok(answers))
}

/// Inserts the records the jobs of `batch` held (see [`Grouped`]), once every job has run
/// and none failed: a model's records in [`runs`] of up to [`RUN`](crate::sql::RUN) rows
/// a statement, all pipelined. A failure (a unique value taken) fails the batch, which
/// then runs job by job and so finds the job it belongs to. Records are grouped by the
/// definition they were made under (the same `Arc` for one schema), never by name alone:
/// a migration between two jobs leaves each record with its own columns.
async fn insert_held(
    store: &PgStore,
    client: &deadpool_postgres::Client,
    batch: &[Job],
    results: &[Result<Answer, StoreError>],
    holds: &[AtomicBool],
) -> Result<(), StoreError> {
    if results.iter().any(Result::is_err) {
        return Ok(());
    }
    let mut models: Vec<(&Arc<ModelDef>, Vec<NewRow>)> = Vec::new();
    for ((job, result), hold) in batch.iter().zip(results).zip(holds) {
        let (Write::Create { model, staged, .. }, Ok(Answer::Created(c))) = (&job.write, result)
        else {
            continue;
        };
        if !hold.load(Ordering::Relaxed) {
            continue;
        }
        match models.iter_mut().find(|(m, _)| Arc::ptr_eq(m, model)) {
            Some((_, records)) => records.push((&c.record, Some(staged))),
            None => models.push((model, vec![(&c.record, Some(staged))])),
        }
    }
    let mut statements = Vec::new();
    for (model, records) in &models {
        let most = usize::from(u16::MAX) / records::insert_columns(model);
        let mut rest = records.as_slice();
        for take in runs(records.len(), most) {
            let (run, after) = rest.split_at(take);
            rest = after;
            let rows = run.iter().copied();
            statements.push(records::insert_rows(
                Dialect::Postgres,
                &store.inner.keys,
                model,
                rows,
            )?);
        }
    }
    let e = Pg(client);
    for done in join_all(statements.iter().map(|q| e.execute(q))).await {
        done?;
    }
    Ok(())
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
    if !entries.is_empty()
        && let Err(e) = audit::append_all(&Pg(&tx), entries).await
    {
        // No write may commit without its entry.
        let _ = tx.rollback().await;
        return settle(batch, Err(e));
    }
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
    let e = Grouped {
        tx,
        held,
        hold: None,
    };
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
async fn apply<C: GenericClient>(
    e: &Grouped<'_, C>,
    by: By<'_>,
    write: &Write,
) -> Result<Answer, StoreError> {
    match write {
        Write::Create {
            model,
            vis,
            draft,
            staged,
            claim,
            ..
        } => records::create(e, by, vis, model, draft.clone(), staged, claim.clone())
            .await
            .map(Answer::Created),
        Write::Update {
            model,
            vis,
            id,
            patch,
            expected,
            ..
        } => records::update(e, by, vis, model, *id, patch, *expected)
            .await
            .map(Answer::Changed),
        Write::Status {
            model,
            id,
            change,
            expected,
            ..
        } => records::set_status(e, by, model, *id, *change, *expected)
            .await
            .map(Answer::Changed),
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

/// The batch's transaction as an [`Exec`] whose audit entries are held for the batch's end,
/// and, when `hold` is given, the record its create makes (told there).
struct Grouped<'c, C> {
    tx: &'c C,
    held: &'c AuditBatch,
    hold: Option<&'c AtomicBool>,
}

impl<C: GenericClient> Exec for Grouped<'_, C> {
    const DIALECT: Dialect = Dialect::Postgres;
    type Row<'r> = Row;
    type Prepared = Statement;

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

    async fn prepare(&self, q: &Query<'_>) -> Result<Statement, StoreError> {
        Pg(self.tx).prepare(q).await
    }

    async fn execute_prepared(&self, p: &Statement, q: &Query<'_>) -> Result<u64, StoreError> {
        Pg(self.tx).execute_prepared(p, q).await
    }

    async fn row_prepared<T>(
        &self,
        p: &Statement,
        q: &Query<'_>,
        f: impl FnOnce(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Pg(self.tx).row_prepared(p, q, f).await
    }

    fn audit_batch(&self) -> Option<&AuditBatch> {
        Some(self.held)
    }

    fn hold_insert(&self) -> bool {
        self.hold
            .inspect(|h| h.store(true, Ordering::Relaxed))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Conn;
    use deadpool_postgres::{Manager, Pool};

    /// The connection's server process and its transaction id, if it is in a transaction
    /// that has one.
    async fn backend(client: &deadpool_postgres::Client) -> (i32, Option<String>) {
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), pg_current_xact_id_if_assigned()::text",
                &[],
            )
            .await
            .expect("ask the backend");
        (row.get(0), row.get(1))
    }

    /// A connection dropped in the middle of a transaction begun by hand is not handed on:
    /// the next taken from the pool (of one) is another, in no transaction; one whose
    /// transaction was rolled back is handed on.
    #[tokio::test]
    async fn a_connection_dropped_mid_transaction_leaves_the_pool() {
        let test = "a_connection_dropped_mid_transaction_leaves_the_pool";
        let Some(server) = plinth_testkit::postgres_server(test) else {
            return;
        };
        let db = plinth_testkit::PgDatabase::create(&server).await;
        let config: tokio_postgres::Config = db.url().parse().expect("a URL");
        let manager = Manager::new(config, tokio_postgres::NoTls);
        let pool = Pool::builder(manager).max_size(1).build().expect("a pool");
        let begun = async |pool: &Pool| {
            let client = pool.get().await.expect("a connection");
            client.batch_execute("BEGIN").await.expect("begin");
            client
                .batch_execute("SELECT pg_current_xact_id()")
                .await
                .expect("a transaction id");
            let (pid, xact) = backend(&client).await;
            assert!(xact.is_some(), "in a transaction");
            let conn = Conn {
                client: Some(client),
                open: true,
            };
            (conn, pid)
        };

        let (conn, first) = begun(&pool).await;
        drop(conn);
        let next = pool.get().await.expect("a connection");
        let (pid, xact) = backend(&next).await;
        assert_ne!(pid, first, "not the connection dropped mid-transaction");
        assert_eq!(xact, None, "in no transaction");
        drop(next);

        let (mut conn, second) = begun(&pool).await;
        conn.rollback().await;
        assert!(!conn.open);
        drop(conn);
        let next = pool.get().await.expect("a connection");
        assert_eq!(
            backend(&next).await,
            (second, None),
            "the same, rolled back"
        );
    }
}

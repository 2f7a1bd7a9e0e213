//! Group commit's outcomes: jobs queued together run in one transaction, without savepoints
//! until one fails; whatever path a batch takes, each kept job's writes commit once and a
//! refused job leaves nothing behind.

use super::super::writer::{self, Msg, Writer};
use super::super::{SqliteOptions, SqliteStore};
use crate::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

type Reply = oneshot::Receiver<Result<(), StoreError>>;
/// The rows a job inserts, and on which of its runs (1-based) it fails.
type Spec = (&'static [&'static str], fn(usize) -> bool);

/// A job's plan: the rows it inserts, then whether it fails on a given run (1-based).
struct Plan {
    rows: &'static [&'static str],
    fails: fn(usize) -> bool,
    runs: Arc<AtomicUsize>,
}

fn job(rows: &'static [&'static str], fails: fn(usize) -> bool) -> (Msg, Reply, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let plan = Plan {
        rows,
        fails,
        runs: Arc::clone(&runs),
    };
    let (msg, reply) = writer::write_job(move |w: &mut Writer| {
        let run = plan.runs.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(plan.rows != ["panic"], "a job that panics");
        for row in plan.rows {
            w.conn
                .execute("INSERT INTO t (v) VALUES (?1)", [row])
                .map_err(super::super::errors::map)?;
        }
        if (plan.fails)(run) {
            return Err(StoreError::InvalidValue {
                reason: "refused on purpose".to_owned(),
            });
        }
        Ok(())
    });
    (msg, reply, runs)
}

fn never(_: usize) -> bool {
    false
}
fn always(_: usize) -> bool {
    true
}
fn second(run: usize) -> bool {
    run == 2
}

struct Harness {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
            .await
            .expect("open");
        let (msg, reply) = writer::exclusive_job(|w: &mut Writer| {
            w.conn
                .execute_batch("CREATE TABLE t (v TEXT NOT NULL UNIQUE)")
                .map_err(super::super::errors::map)
        });
        store.inner.writer.send(msg).await.expect("send");
        reply.await.expect("reply").expect("table");
        Self { store, _dir: dir }
    }

    /// Queues `jobs` behind a held writer, so that they form one batch, then lets it go;
    /// gives each job's answer and how many times it ran.
    async fn batch(&self, jobs: Vec<Spec>) -> Vec<(Result<(), StoreError>, usize)> {
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (msg, _) =
            writer::exclusive_job(move |_: &mut Writer| held.recv().map_err(StoreError::internal));
        self.store.inner.writer.send(msg).await.expect("send");
        let mut waiting = Vec::new();
        for (rows, fails) in jobs {
            let (msg, reply, runs) = job(rows, fails);
            self.store.inner.writer.send(msg).await.expect("send");
            waiting.push((reply, runs));
        }
        hold.send(()).expect("release the writer");
        let mut out = Vec::new();
        for (reply, runs) in waiting {
            let result = reply.await.expect("reply");
            out.push((result, runs.load(Ordering::SeqCst)));
        }
        out
    }

    async fn rows(&self) -> Vec<String> {
        self.store
            .read(|c| {
                let mut s = c
                    .prepare("SELECT v FROM t ORDER BY v")
                    .map_err(super::super::errors::map)?;
                let rows = s
                    .query_map([], |r| r.get(0))
                    .and_then(Iterator::collect)
                    .map_err(super::super::errors::map)?;
                Ok(rows)
            })
            .await
            .expect("rows")
    }
}

fn outcomes(results: &[(Result<(), StoreError>, usize)]) -> Vec<(bool, usize)> {
    results.iter().map(|(r, runs)| (r.is_ok(), *runs)).collect()
}

#[tokio::test]
async fn a_batch_without_failures_runs_each_job_once() {
    let h = Harness::new().await;
    let got = h
        .batch(vec![(&["a"], never), (&["b"], never), (&["c"], never)])
        .await;
    assert_eq!(outcomes(&got), [(true, 1), (true, 1), (true, 1)]);
    assert_eq!(h.rows().await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_job_that_fails_midway_leaves_nothing_and_the_others_commit_once() {
    let h = Harness::new().await;
    // Plain: the second job writes a row, then fails; the first runs again, the rest (the
    // second included) each in a savepoint; the fourth fails on a taken value after a row
    // of its own.
    let got = h
        .batch(vec![
            (&["a"], never),
            (&["b1", "b2"], always),
            (&["c"], never),
            (&["d", "a"], never),
            (&["e"], never),
        ])
        .await;
    assert_eq!(
        outcomes(&got),
        [(true, 2), (false, 2), (true, 1), (false, 1), (true, 1)]
    );
    assert!(
        matches!(got[3].0, Err(StoreError::Conflict { .. })),
        "{:?}",
        got[3].0
    );
    assert_eq!(h.rows().await, ["a", "c", "e"]);

    // The batch after a failure is guarded: a refused job runs once, the others once.
    let got = h
        .batch(vec![(&["f"], never), (&["g"], always), (&["h"], never)])
        .await;
    assert_eq!(outcomes(&got), [(true, 1), (false, 1), (true, 1)]);
    // Seven calm batches are not enough: the next failure finds its batch still guarded.
    for _ in 0..7 {
        let got = h.batch(vec![(&[], never)]).await;
        assert_eq!(outcomes(&got), [(true, 1)]);
    }
    let got = h.batch(vec![(&["i"], never), (&["x"], always)]).await;
    assert_eq!(outcomes(&got), [(true, 1), (false, 1)]);
    // Eight calm batches in a row make the next one plain again.
    for _ in 0..8 {
        let got = h.batch(vec![(&[], never)]).await;
        assert_eq!(outcomes(&got), [(true, 1)]);
    }
    let got = h
        .batch(vec![(&["j"], never), (&["k"], never), (&["l"], always)])
        .await;
    assert_eq!(outcomes(&got), [(true, 2), (true, 2), (false, 2)]);
    assert_eq!(h.rows().await, ["a", "c", "e", "f", "h", "i", "j", "k"]);
}

#[tokio::test]
async fn a_failed_first_job_runs_again_alone() {
    let h = Harness::new().await;
    let got = h
        .batch(vec![
            (&["a1", "a2"], always),
            (&["b"], never),
            (&["c"], always),
        ])
        .await;
    assert_eq!(outcomes(&got), [(false, 2), (true, 1), (false, 1)]);
    assert_eq!(h.rows().await, ["b"]);
}

#[tokio::test]
async fn a_job_that_panicked_is_not_run_again() {
    let h = Harness::new().await;
    let got = h
        .batch(vec![(&["a"], never), (&["panic"], never), (&["c"], never)])
        .await;
    assert_eq!(outcomes(&got), [(true, 2), (false, 1), (true, 1)]);
    assert!(
        matches!(got[1].0, Err(StoreError::Internal(_))),
        "{:?}",
        got[1].0
    );
    assert_eq!(h.rows().await, ["a", "c"]);
}

#[tokio::test]
async fn a_job_whose_second_run_fails_sends_the_whole_batch_to_savepoints() {
    let h = Harness::new().await;
    // The first job succeeds, then fails when run again after the second job's failure:
    // the whole batch is run once more, each job in its savepoint.
    let got = h
        .batch(vec![(&["a"], second), (&["b"], always), (&["c"], never)])
        .await;
    assert_eq!(outcomes(&got), [(true, 3), (false, 2), (true, 1)]);
    assert_eq!(h.rows().await, ["a", "c"]);
}

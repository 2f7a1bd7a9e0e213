mod batches;
mod cache;
mod checkpoints;
mod filter_sql;
mod tail;

use super::{SqliteOptions, SqliteStore};
use crate::{Store, StoreError};

/// A store on a new file in a temporary directory (kept while the store is used).
async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
        .await
        .expect("open");
    (dir, store)
}

fn select_one(c: &rusqlite::Connection) -> Result<i64, StoreError> {
    c.query_row("SELECT 1", [], |r| r.get(0))
        .map_err(super::errors::map)
}

#[tokio::test]
async fn a_read_that_panics_gives_its_connection_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SqliteOptions::new(dir.path().join("db.sqlite"));
    opts.readers = 1;
    let store = SqliteStore::open(opts).await.expect("open");

    // On the blocking pool.
    let panicked = store
        .read(|_| -> Result<(), StoreError> { panic!("a read that panics") })
        .await;
    assert!(
        matches!(panicked, Err(StoreError::Internal(_))),
        "{panicked:?}"
    );
    assert_eq!(store.read(select_one).await.expect("the next read"), 1);

    // A short list, tried on the calling thread: the same answer, the connection back.
    let panicked = store
        .inner
        .readers
        .list(false, true, |_| -> Result<(), StoreError> {
            panic!("a list that panics")
        })
        .await;
    assert!(
        matches!(panicked, Err(StoreError::Internal(_))),
        "{panicked:?}"
    );
    assert_eq!(store.read(select_one).await.expect("the next read"), 1);

    // On the calling task.
    let s = store.clone();
    let task = tokio::spawn(async move {
        s.read_point(|_| -> Result<(), StoreError> { panic!("a point read that panics") })
            .await
    });
    assert!(task.await.is_err(), "the task should have panicked");
    assert_eq!(
        store.read_point(select_one).await.expect("the next read"),
        1
    );
    store.close().await;
}

/// A write whose place in the queue was taken before the store closed, and which is put
/// there only once the writer thread stopped taking jobs, is answered that the database
/// is closed: it is not left in the queue, its caller waiting for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_as_the_store_closes_is_answered() {
    let (_dir, store) = fresh_store().await;
    let queue = &store.inner.writer;
    let place = queue.reserve().await.expect("a place in the queue");
    store.close().await;
    queue.stopped().await;
    let (msg, reply) = super::writer::write_job(|_| Ok::<_, StoreError>(()));
    place.send(msg);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), reply)
        .await
        .expect("an answer, not a wait for ever");
    assert!(answer.is_err(), "the job was not run: {answer:?}");
    let err = store.ping().await.expect_err("closed");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// The refresh sweep finds its candidates through indexes: no step of its plan reads the
/// whole token table (scanning the partial index of revoked tokens reads only those).
#[test]
fn the_refresh_sweep_reads_no_whole_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = rusqlite::Connection::open(dir.path().join("db.sqlite")).expect("open");
    super::ddl::init_internal(&conn, &crate::Keys::missing()).expect("internal tables");
    let now = plinth_core::Timestamp::from_system(std::time::SystemTime::now());
    let q = crate::sql::sweep::refresh_sweep(crate::sql::Dialect::Sqlite, now, now, 100);
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql))
        .expect("explain");
    let plan: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(&q.params), |r| r.get(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan rows");
    let scans: Vec<&String> = plan
        .iter()
        .filter(|step| step.starts_with("SCAN") && !step.contains("_plinth_refresh_tokens_revoked"))
        .collect();
    assert!(scans.is_empty(), "whole-table steps {scans:?} in {plan:#?}");
}

#[tokio::test]
async fn every_table_plinth_creates_for_itself_is_in_a_backup() {
    let (_dir, store) = fresh_store().await;
    let mut created: Vec<String> = store
        .read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name LIKE '\\_plinth%' ESCAPE '\\' \
                     AND name <> '_plinth_schema_versions'",
                )
                .map_err(super::errors::map)?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(super::errors::map)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(super::errors::map)?;
            Ok(names)
        })
        .await
        .expect("the tables");
    created.sort();
    let mut listed: Vec<String> = crate::sql::backup::INTERNAL_TABLES
        .iter()
        .chain(&crate::sql::backup::UNSAVED_TABLES)
        .map(|t| (*t).to_owned())
        .collect();
    listed.sort();
    assert_eq!(created, listed);
    assert_eq!(crate::sql::backup::INTERNAL_TABLES[0], "_plinth_models");
}

/// `f` run as a short list, its runs counted: its answer, how many times it ran, and
/// whether its last run was on the calling thread.
async fn run_short<T: Send + 'static>(
    store: &SqliteStore,
    f: impl Fn(&rusqlite::Connection) -> Result<T, StoreError> + Send + Sync + 'static,
) -> (T, usize, bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let here = std::thread::current().id();
    let (answer, thread) = store
        .inner
        .readers
        .list(false, true, move |c| {
            counted.fetch_add(1, Ordering::Relaxed);
            f(c).map(|answer| (answer, std::thread::current().id()))
        })
        .await
        .expect("a list");
    (answer, runs.load(Ordering::Relaxed), thread == here)
}

/// The count, by one query, of the numbers 1 to `n`.
fn count_to(n: i64) -> impl Fn(&rusqlite::Connection) -> Result<i64, StoreError> {
    move |c| {
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
                   SELECT count(*) FROM c";
        c.query_row(sql, [n], |r| r.get(0))
            .map_err(super::errors::map)
    }
}

/// A record list runs first on the calling thread, and only a list that needs more than a
/// few thousand steps goes to the blocking pool, run again there from the start: both
/// answer the whole result.
#[tokio::test]
async fn a_short_list_runs_here_and_a_long_one_on_the_blocking_pool() {
    let (_dir, store) = fresh_store().await;
    assert_eq!(run_short(&store, count_to(20)).await, (20, 1, true));
    assert_eq!(
        run_short(&store, count_to(100_000)).await,
        (100_000, 2, false),
        "stopped here, run again on the blocking pool, whole"
    );
}

/// A short list whose steps are few but slow (here a function that sleeps a millisecond a
/// row, as reading a long value's overflow pages can be) is stopped on the calling thread
/// after half a millisecond and run again on the blocking pool; a page's size and its
/// model's width decide which lists are tried here at all.
#[tokio::test]
async fn a_short_list_that_runs_long_moves_to_the_blocking_pool() {
    let (_dir, store) = fresh_store().await;
    let napping = |c: &rusqlite::Connection| {
        c.create_scalar_function(
            "nap",
            0,
            rusqlite::functions::FunctionFlags::empty(),
            |_| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(1)
            },
        )
        .map_err(super::errors::map)?;
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30) \
                   SELECT sum(nap()) FROM c";
        c.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(super::errors::map)
    };
    assert_eq!(
        run_short(&store, napping).await,
        (30, 2, false),
        "stopped here by time, run again on the blocking pool, whole"
    );

    use super::readers::fits_inline;
    assert!(fits_inline(20, 2) && fits_inline(50, 2) && fits_inline(20, 60));
    assert!(!fits_inline(51, 2), "a long page");
    assert!(!fits_inline(20, 80), "a wide model's page");
}

/// SQLite is built without its global locks (`.cargo/config.toml`): each connection keeps
/// its page cache on its own, and allocations keep no statistics under a mutex.
#[test]
fn sqlite_is_built_without_its_global_locks() {
    let c = rusqlite::Connection::open_in_memory().expect("open");
    let mut stmt = c.prepare("PRAGMA compile_options").expect("prepare");
    let options: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("options");
    for wanted in ["DEFAULT_MEMSTATUS=0", "OMIT_SHARED_CACHE", "USE_ALLOCA"] {
        assert!(
            options.iter().any(|o| o == wanted),
            "{wanted} not in {options:?}"
        );
    }
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

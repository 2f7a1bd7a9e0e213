//! The checkpointer copies the log into the database file beside the writer, and the log
//! stays bounded under writes that never pause.

use super::super::checkpoint::{CAP, Checkpointer};
use super::super::exec::open_conn;
use rusqlite::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

/// A writer connection over a fresh file, with a table of blobs, and its checkpointer
/// woken every `pages` new log pages.
fn writer(dir: &Path, pages: i32) -> (Connection, Checkpointer) {
    let path = dir.join("db.sqlite");
    let busy = Duration::from_secs(5);
    let conn = open_conn(&path, busy, false).expect("writer");
    conn.execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
        .expect("table");
    let other = open_conn(&path, busy, false).expect("checkpointer's connection");
    let checkpointer = Checkpointer::start(&conn, other, pages).expect("checkpointer");
    (conn, checkpointer)
}

/// One commit of about two pages, then what the writer thread does after each commit.
fn commit(conn: &Connection, checkpointer: &mut Checkpointer) {
    conn.execute("INSERT INTO t (b) VALUES (zeroblob(6000))", [])
        .expect("insert");
    checkpointer.after_commit(conn);
}

fn pages(conn: &Connection) -> u64 {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size")
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn the_checkpointer_copies_the_log_into_the_database_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 100);
    let db = dir.path().join("db.sqlite");
    let before = size(&db);
    // About 280 log pages (each commit writes three or four): past the interval twice,
    // short of the writer's own cap (1,600).
    for _ in 0..80 {
        commit(&conn, &mut checkpointer);
    }
    // The writer copied nothing itself (no commit waits on it): the file grows only by the
    // checkpointer's work, on its own thread.
    let page = pages(&conn);
    let deadline = Instant::now() + Duration::from_secs(20);
    while size(&db) < before + 40 * page && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        size(&db) >= before + 40 * page,
        "the database file is {} bytes, {before} before the writes",
        size(&db)
    );
    drop(checkpointer);
}

#[test]
fn writes_without_a_pause_keep_the_log_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 20);
    // About 1,600 pages, with no pause in which the checkpointer could catch up: the log
    // begins again from its start only because the writer copies the rest past the cap
    // (sixteen intervals, 320 pages).
    for _ in 0..800 {
        commit(&conn, &mut checkpointer);
    }
    let page = pages(&conn);
    let wal = size(&dir.path().join("db.sqlite-wal"));
    let most = u64::try_from(CAP * 20 + 40).expect("a page count");
    assert!(
        wal <= most * (page + 24),
        "the log is {wal} bytes, {} pages",
        wal / (page + 24)
    );
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 800);
}

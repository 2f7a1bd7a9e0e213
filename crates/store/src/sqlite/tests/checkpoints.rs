//! The checkpointer copies the log into the database file beside the writer, and the log
//! stays bounded under writes that never pause.

use super::super::checkpoint::{After, CAP, Checkpointer, GAP, log_pages, next};
use super::super::exec::open_conn;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{PoisonError, mpsc};
use std::time::{Duration, Instant};

/// A writer connection over a fresh file, with a table of blobs, and its checkpointer
/// woken at most every `pages` new log pages.
fn writer(dir: &Path, pages: i32) -> (Connection, Checkpointer) {
    let path = dir.join("db.sqlite");
    let busy = Duration::from_secs(5);
    let mut conn = open_conn(&path, busy, false).expect("writer");
    conn.execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
        .expect("table");
    let other = open_conn(&path, busy, false).expect("checkpointer's connection");
    let checkpointer = Checkpointer::start(&mut conn, other, pages).expect("checkpointer");
    (conn, checkpointer)
}

/// One commit of about two pages, then what the writer thread does after each commit.
fn commit(conn: &Connection, checkpointer: &mut Checkpointer) -> After {
    conn.execute("INSERT INTO t (b) VALUES (zeroblob(6000))", [])
        .expect("insert");
    checkpointer.after_commit(conn)
}

fn pages(conn: &Connection) -> u64 {
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size");
    size.unsigned_abs()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits (20 s at most) for the checkpointer to grow the database file at `db` to `bytes`.
fn grown_to(db: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while size(db) < bytes && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (20 s at most) for the checkpointer to grow the database file at `db`, `before`
/// bytes long, by at least 40 pages.
fn copied(conn: &Connection, db: &Path, before: u64) {
    let page = pages(conn);
    grown_to(db, before + 40 * page);
    assert!(
        size(db) >= before + 40 * page,
        "the database file is {} bytes, {before} before the writes",
        size(db)
    );
}

#[test]
fn the_checkpointer_copies_the_log_into_the_database_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 100);
    let db = dir.path().join("db.sqlite");
    let before = size(&db);
    // About 280 log pages (each commit writes three or four): past the interval twice,
    // short of the writer's own cap (400).
    for _ in 0..80 {
        commit(&conn, &mut checkpointer);
    }
    // The writer copied nothing itself (no commit waits on it): the file grows only by the
    // checkpointer's work, on its own thread.
    copied(&conn, &db, before);
    drop(checkpointer);
}

#[test]
fn writes_without_a_pause_keep_the_log_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 20);
    // About 2,800 pages, with no pause in which the checkpointer could catch up: the log
    // begins again from its start only because the writer copies the rest past the cap
    // (four intervals, 80 pages), or a quarter past it if the checkpointer was copying then.
    for _ in 0..800 {
        commit(&conn, &mut checkpointer);
    }
    let page = pages(&conn);
    let wal = size(&dir.path().join("db.sqlite-wal"));
    let most = u64::try_from(CAP * 20 * 5 / 4 + 40).expect("a page count");
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

#[test]
fn near_the_cap_every_commit_wakes_the_checkpointer() {
    let cap = CAP * 100;
    // Far from the cap: a wake-up every interval.
    assert_eq!(next(150, 100, 100, Duration::ZERO), After::Nothing);
    assert_eq!(next(200, 100, 100, Duration::ZERO), After::Wake);
    // In the last interval before it: after every commit that added pages.
    assert_eq!(next(cap - 100, cap - 150, 100, Duration::ZERO), After::Wake);
    assert_eq!(next(cap - 1, cap - 3, 100, Duration::ZERO), After::Wake);
    assert_eq!(next(cap - 3, cap - 3, 100, Duration::ZERO), After::Nothing);
    // At the cap the writer copies, and waits for a running checkpoint only a quarter past.
    assert_eq!(
        next(cap, cap - 1, 100, Duration::ZERO),
        After::Copy { wait: false }
    );
    assert_eq!(
        next(cap + cap / 4 - 1, 0, 100, Duration::ZERO),
        After::Copy { wait: false }
    );
    assert_eq!(
        next(cap + cap / 4, 0, 100, Duration::ZERO),
        After::Copy { wait: true }
    );
}

#[test]
fn a_sixteenth_of_the_interval_wakes_the_checkpointer_once_the_gap_has_passed() {
    assert_eq!(next(106, 100, 100, GAP), After::Wake);
    assert_eq!(next(105, 100, 100, GAP), After::Nothing);
    assert_eq!(
        next(106, 100, 100, GAP - Duration::from_millis(1)),
        After::Nothing
    );
    // However small the interval, a new page is needed.
    assert_eq!(next(20, 20, 10, GAP), After::Nothing);
    assert_eq!(next(21, 20, 10, GAP), After::Wake);
}

#[test]
fn writes_at_a_steady_pace_are_copied_before_the_interval_is_reached() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A wake-up every 3,200 pages, or every 200 once the gap has passed.
    let (conn, mut checkpointer) = writer(dir.path(), 3200);
    let db = dir.path().join("db.sqlite");
    let before = size(&db);
    // About 280 pages: past a sixteenth of the interval, far short of the interval.
    for _ in 0..80 {
        commit(&conn, &mut checkpointer);
    }
    std::thread::sleep(GAP);
    commit(&conn, &mut checkpointer);
    copied(&conn, &db, before);
    drop(checkpointer);
}

#[test]
fn the_gap_counts_from_the_last_wake_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A wake-up every 3,200 pages, or every 200 once the gap has passed.
    let (conn, mut checkpointer) = writer(dir.path(), 3200);
    std::thread::sleep(GAP);
    let mut first = 0;
    while commit(&conn, &mut checkpointer) != After::Wake {
        first += 1;
        assert!(first < 200, "no wake-up in {first} commits");
    }
    // Right after that wake-up, another 200 pages do not wake it again.
    let woken = Instant::now();
    let mut again = false;
    for _ in 0..80 {
        again |= commit(&conn, &mut checkpointer) == After::Wake;
    }
    if woken.elapsed() >= GAP {
        eprintln!(
            "skipped: the commits took {:?}, past the gap",
            woken.elapsed()
        );
        return;
    }
    assert!(!again, "woken again within the gap");
}

#[test]
fn what_a_burst_wrote_after_its_last_wake_up_is_copied_soon_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 100);
    let db = dir.path().join("db.sqlite");
    // About 140 pages: one wake-up, at 100, then no more writes.
    for _ in 0..40 {
        commit(&conn, &mut checkpointer);
    }
    // The database file holds every page once the whole log is copied.
    let page = pages(&conn);
    let count: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page count");
    let count = count.unsigned_abs();
    grown_to(&db, count * page);
    assert_eq!(size(&db), count * page, "the log is not wholly copied");
    drop(checkpointer);
}

#[test]
fn at_the_cap_the_writer_does_not_wait_for_a_running_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conn, mut checkpointer) = writer(dir.path(), 20);
    let cap = CAP * 20;
    // A checkpoint that runs on, on another thread, until told to stop (or 20 s on).
    let running = checkpointer.running();
    let (held_tx, held) = mpsc::channel();
    let (stop, stopped) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _copying = running.lock().unwrap_or_else(PoisonError::into_inner);
        held_tx.send(()).expect("held");
        stopped.recv_timeout(Duration::from_secs(20)).is_ok()
    });
    held.recv().expect("the checkpoint holds its lock");
    // Past the cap the commits go on and the log grows on: the writer neither copies nor
    // waits (it would wait here until the other thread gave up).
    let started = Instant::now();
    let mut commits = 0;
    while log_pages() < cap + cap / 8 {
        commit(&conn, &mut checkpointer);
        commits += 1;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the writer waited for the running checkpoint"
        );
        assert!(commits < 2_000, "the log never grew past the cap");
    }
    stop.send(()).expect("stop");
    let stopped_in_time = holder.join().expect("the checkpoint ends");
    assert!(
        stopped_in_time,
        "the running checkpoint gave up before the writes were done"
    );
    // Once it has ended, a commit soon finds no checkpoint running, copies the rest, and the
    // log begins again from its start.
    for _ in 0..400 {
        commit(&conn, &mut checkpointer);
        if log_pages() < cap {
            break;
        }
    }
    assert!(log_pages() < cap, "the log is {} pages", log_pages());
}

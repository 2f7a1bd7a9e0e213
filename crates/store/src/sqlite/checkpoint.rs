//! The checkpointer: copies the write-ahead log back into the database file on a thread and
//! connection of its own, so the writer never waits for that copy and its `fsync`.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, on
//! the writer thread, and stalls every write queued behind it. Here the writer's commit only
//! notes how long the log has grown (a WAL hook, which also turns the automatic checkpoint
//! off); past [`PAGES`] new pages it wakes the checkpointer, which runs a passive checkpoint
//! beside the writer and its readers.
//!
//! SQLite begins the log again from its start only when a write finds it wholly copied,
//! which writes without a pause never allow: a checkpoint beside them always finds new
//! pages. So once the log holds [`CAP`] times [`PAGES`] pages, the writer copies the rest
//! itself, between two commits (by then most pages are copied, so that takes little). Little
//! is still two `fsync`s, which every write queued meanwhile waits for: the cap keeps that
//! rare (a single create writes a dozen or more pages to the log, one per B-tree it
//! touches: at 200 creates a second, one at a time, a cap of 4,000 pages had the writer
//! copy eight times in ten seconds).

use super::{SqliteOptions, errors};
use crate::StoreError;
use rusqlite::Connection;
use rusqlite::hooks::Wal;
use std::cell::Cell;
use std::ffi::c_int;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// New log pages between checkpoints: SQLite's default for its automatic checkpoint.
const PAGES: i32 = 1000;
/// Log length, in multiples of the checkpoint interval, at which the writer copies the rest:
/// 64 MiB of 4 KiB pages, the `journal_size_limit` the log is cut back to afterwards.
pub(super) const CAP: i32 = 16;

thread_local! {
    /// The pages in the log after the last commit on this thread's connection.
    static LOG_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// Called by SQLite after each commit of the writer connection, on the writer thread.
fn note(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The checkpointer thread, stopped (and waited for) on drop.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Held while a checkpoint runs: one at a time, and the writer past the cap waits for
    /// the checkpointer's to end rather than find the log busy.
    running: Arc<Mutex<()>>,
    /// New log pages between checkpoints ([`PAGES`] but in tests).
    pages: i32,
    /// The log's length when the checkpointer was last woken.
    woken_at: i32,
}

impl Checkpointer {
    /// The checkpointer of a store opened with `opts` over `writer`; none if read-only.
    pub(super) fn open(
        writer: &Connection,
        opts: &SqliteOptions,
    ) -> Result<Option<Self>, StoreError> {
        if opts.read_only {
            return Ok(None);
        }
        let conn = super::exec::open_conn(&opts.path, opts.busy_timeout, false)?;
        Self::start(writer, conn, PAGES).map(Some)
    }

    /// Hooks the writer's commits (which turns SQLite's automatic checkpoint off on it) and
    /// starts the thread over `conn`, a connection that may write.
    pub(super) fn start(
        writer: &Connection,
        conn: Connection,
        pages: i32,
    ) -> Result<Self, StoreError> {
        let (wake, woken) = sync_channel(1);
        let running = Arc::new(Mutex::new(()));
        let held = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name("plinth-sqlite-ckpt".to_owned())
            .spawn(move || run(&conn, &woken, &held))
            .map_err(StoreError::internal)?;
        writer.wal_hook(Some(note));
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
            running,
            pages,
            woken_at: 0,
        })
    }

    /// After the writer's commits: wakes the checkpointer when the log has grown by
    /// `pages` since it was last woken (or was begun again from its start since); past the
    /// cap, checkpoints on `writer` itself.
    pub(super) fn after_commit(&mut self, writer: &Connection) {
        let pages = LOG_PAGES.with(Cell::get);
        if pages < self.woken_at {
            self.woken_at = 0;
        }
        if pages >= self.pages.saturating_mul(CAP) {
            // Not all copied: a reader still needs the rest; the next commit tries again.
            if let Ok((log, copied)) = passive(writer, &self.running)
                && log == copied
            {
                LOG_PAGES.with(|p| p.set(0));
                self.woken_at = 0;
            }
        } else if pages - self.woken_at >= self.pages {
            self.woken_at = pages;
            // Full: a wake-up is already pending, and its checkpoint will take these pages.
            if let Some(wake) = &self.wake {
                let _ = wake.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, woken: &Receiver<()>, running: &Mutex<()>) {
    while woken.recv().is_ok() {
        match passive(conn, running) {
            Ok((log, copied)) => tracing::debug!(log, copied, "checkpoint"),
            Err(e) => tracing::debug!(error = %e, "checkpoint not done; the next one retries"),
        }
    }
}

/// A passive checkpoint: copies what no reader still needs, waits for no one, blocks no
/// one (but another checkpoint of this store, which it waits for). Gives the pages in the
/// log and how many of them are copied; busy (another process checkpoints) is an error.
fn passive(conn: &Connection, running: &Mutex<()>) -> Result<(i64, i64), StoreError> {
    let _one = running.lock().unwrap_or_else(PoisonError::into_inner);
    let (busy, log, copied) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(errors::map)?;
    if busy != 0 || log < 0 {
        return Err(StoreError::Unavailable(
            "another checkpoint of the database is running".to_owned(),
        ));
    }
    Ok((log, copied))
}

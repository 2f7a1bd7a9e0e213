//! The checkpointer: copies the write-ahead log back into the database file on a thread and
//! connection of its own, so the writer never waits for that copy and its `fsync`.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold, on
//! the writer thread, and stalls every write queued behind it. Here the writer's commit only
//! notes how long the log has grown (a WAL hook, which also turns the automatic checkpoint
//! off); past [`PAGES`] new pages, or a sixteenth of them once [`GAP`] has passed since the
//! last wake-up, it wakes the checkpointer, which runs a passive checkpoint beside the writer
//! and its readers, and one more [`GAP`] after its last wake-up.
//!
//! SQLite begins the log again from its start only when a write finds it wholly copied,
//! which writes without a pause never allow: a checkpoint beside them always finds new
//! pages. So once the log holds [`CAP`] times [`PAGES`] pages, the writer copies the rest
//! itself, between two commits, and every write queued meanwhile waits for that copy and its
//! two `fsync`s. The cap keeps that rare, and [`next`] keeps it short: in the last interval
//! before the cap the checkpointer is woken after every commit, so the rest is only what
//! came after its last copy began, and at the cap the writer does not wait for a running
//! checkpoint (the log grows on, up to a quarter past the cap). Under creates without a
//! pause (about 12,000 a second, five log pages each), a cap of 16,000 pages and no
//! wake-ups near it had the writer copy four times a second for 8 to 29 ms each; a cap of
//! 64,000 pages, wake-ups every 1,000 and after every commit in the last 1,000 had it copy
//! about once a second, for 6 to 18 ms.
//!
//! Under writes without a pause a long interval lets a checkpoint copy a page the writes
//! rewrote many times (a leaf of an index they insert into at random places) once, with one
//! pair of `fsync`s: under wrk's creates, [`PAGES`] (16,000) rather than SQLite's 1,000,
//! with the same cap in pages, served 8–15 % more of them and cut their p99 from 17–19 ms
//! to 7–9 ms. At a steady rate that interval alone makes each checkpoint one large burst,
//! so a sixteenth of it wakes the checkpointer too once [`GAP`] has passed since the last
//! wake-up: the interval is 1,000 pages or half a second's worth, whichever is more, up to
//! 16,000 (1,000 below 2,000 pages a second). And the checkpointer runs once more [`GAP`]
//! after its last wake-up, so what a burst wrote after it is soon copied, and synced.

use super::{SqliteOptions, errors};
use crate::StoreError;
use rusqlite::Connection;
use rusqlite::hooks::Wal;
use std::cell::Cell;
use std::ffi::c_int;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most new log pages between two checkpoints: about 65 MB of 4 KiB pages.
const PAGES: i32 = 16_000;
/// The time after a wake-up past which a sixteenth of the interval wakes the checkpointer.
pub(super) const GAP: Duration = Duration::from_millis(500);
/// Log length, in multiples of the checkpoint interval, at which the writer copies the rest:
/// 64,000 pages, about 250 MiB of 4 KiB pages, under the 256 MiB `journal_size_limit` the
/// log is cut back to afterwards.
pub(super) const CAP: i32 = 4;

thread_local! {
    /// The pages in the log after the last commit on this thread's connection.
    static LOG_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// Called by SQLite after each commit of the writer connection, on the writer thread.
fn note(_: &mut Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The checkpointer thread, stopped (and waited for) on drop.
#[derive(Debug)]
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Held while a checkpoint runs: one at a time. The writer at the cap passes over a
    /// running one and tries again at its next commit; a quarter past the cap it waits for
    /// it to end rather than find the log busy.
    running: Arc<Mutex<()>>,
    /// The most new log pages between checkpoints ([`PAGES`] but in tests).
    pages: i32,
    /// The log's length when the checkpointer was last woken.
    woken_at: i32,
    /// When the checkpointer was last woken.
    woken_when: Instant,
}

impl Checkpointer {
    /// The checkpointer of a store opened with `opts` over `writer`; none if read-only.
    pub(super) fn open(
        writer: &mut Connection,
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
        writer: &mut Connection,
        conn: Connection,
        pages: i32,
    ) -> Result<Self, StoreError> {
        writer.wal_hook(Some(note)).map_err(StoreError::internal)?;
        let (wake, woken) = sync_channel(1);
        let running = Arc::new(Mutex::new(()));
        let held = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name("plinth-sqlite-ckpt".to_owned())
            .spawn(move || run(&conn, &woken, &held))
            .map_err(StoreError::internal)?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
            running,
            pages,
            woken_at: 0,
            woken_when: Instant::now(),
        })
    }

    /// After the writer's commits: wakes the checkpointer or copies the rest itself, as
    /// [`next`] says for the log's length; gives what it did.
    pub(super) fn after_commit(&mut self, writer: &Connection) -> After {
        let pages = log_pages();
        if pages < self.woken_at {
            self.woken_at = 0;
        }
        let after = next(pages, self.woken_at, self.pages, self.woken_when.elapsed());
        match after {
            After::Nothing => {}
            After::Wake => {
                self.woken_at = pages;
                self.woken_when = Instant::now();
                // Full: a wake-up is already pending, and its checkpoint will take these pages.
                if let Some(wake) = &self.wake {
                    let _ = wake.try_send(());
                }
            }
            // Not all copied: a reader still needs the rest; the next commit tries again.
            // None: the checkpointer is copying; the next commit tries again too.
            After::Copy { wait } => {
                if let Ok(Some((log, copied))) = passive(writer, &self.running, wait)
                    && log == copied
                {
                    LOG_PAGES.with(|p| p.set(0));
                    self.woken_at = 0;
                }
            }
        }
        after
    }

    /// The lock a checkpoint runs under, for a test to hold as a running checkpoint would.
    #[cfg(test)]
    pub(super) fn running(&self) -> Arc<Mutex<()>> {
        Arc::clone(&self.running)
    }
}

/// The pages in the log after the last commit on this thread's connection.
pub(super) fn log_pages() -> i32 {
    LOG_PAGES.with(Cell::get)
}

/// What the writer does after a commit.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum After {
    Nothing,
    /// Wake the checkpointer.
    Wake,
    /// Copy the rest on the writer's connection; if not `wait`, only when no checkpoint is
    /// running.
    Copy {
        wait: bool,
    },
}

/// What follows a commit that left `pages` pages in the log, the checkpointer last woken at
/// `woken_at` pages `since` ago, checkpoints at most every `interval` pages: a wake-up
/// every interval, or every sixteenth of it once [`GAP`] has passed, and in the last
/// interval before the cap after every commit (what the writer copies at the cap is then
/// only what came after the checkpointer's last copy began); at the cap, the writer's own
/// copy, which waits for a running checkpoint only once the log is a quarter past the cap
/// (the log grows on a little rather than the writes wait).
pub(super) fn next(pages: i32, woken_at: i32, interval: i32, since: Duration) -> After {
    let cap = interval.saturating_mul(CAP);
    let new = pages - woken_at;
    if pages >= cap {
        After::Copy {
            wait: pages >= cap.saturating_add(cap / 4),
        }
    } else if new >= interval
        || (new >= (interval / 16).max(1) && since >= GAP)
        || (pages >= cap - interval && pages > woken_at)
    {
        After::Wake
    } else {
        After::Nothing
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

/// Checkpoints at each wake-up, and once more [`GAP`] after the last one: a burst of writes
/// that stops leaves what came after its last wake-up (up to an interval) copied, and
/// synced, soon after, as a wake-up every 1,000 pages left at most that many behind.
fn run(conn: &Connection, woken: &Receiver<()>, running: &Mutex<()>) {
    let mut trailing = false;
    loop {
        let wake = if trailing {
            woken.recv_timeout(GAP)
        } else {
            woken.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match wake {
            Ok(()) => trailing = true,
            Err(RecvTimeoutError::Timeout) => trailing = false,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        match passive(conn, running, true) {
            Ok(Some((log, copied))) => tracing::debug!(log, copied, "checkpoint"),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "checkpoint not done; the next one retries"),
        }
    }
}

/// A passive checkpoint: copies what no reader still needs, waits for no one, blocks no
/// one but another checkpoint of this store, which it waits for if `wait` (else it gives
/// `None` at once). Gives the pages in the log and how many of them are copied; busy
/// (another process checkpoints) is an error.
fn passive(
    conn: &Connection,
    running: &Mutex<()>,
    wait: bool,
) -> Result<Option<(i64, i64)>, StoreError> {
    let _one = match running.try_lock() {
        Ok(one) => one,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) if wait => {
            running.lock().unwrap_or_else(PoisonError::into_inner)
        }
        Err(TryLockError::WouldBlock) => return Ok(None),
    };
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
    Ok(Some((log, copied)))
}

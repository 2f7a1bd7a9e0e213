//! The read connections: a fixed pool of read-only connections, each read bounded in time
//! and stopped when its caller goes away.
//!
//! A read that may scan runs on the blocking pool under a deadline (its time budget from
//! the moment it was asked for, waiting included). The connection's progress handler,
//! called every few hundred virtual-machine steps, interrupts the statement once the
//! deadline passes or once the caller's future is dropped (an HTTP client that hung up):
//! the blocking thread and the connection are free again within a step, instead of
//! finishing work nobody waits for. One step can be long (one `like` comparison of one
//! value), which is why pattern length is bounded before a query gets here. A short
//! record list is tried on the caller's thread first, stopped after a few thousand steps
//! or half a millisecond, and only then runs on the blocking pool (see [`fits_inline`]).

use crate::StoreError;
use crate::gate::{ListGate, ListPass};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Virtual-machine steps between two checks of a read's stop flag. A scan spends a handful
/// of steps per row, so this checks about once a row; the check is one atomic load.
const PROGRESS_STEPS: std::ffi::c_int = 8;

/// Checks a short record list may take on the caller's thread before it is stopped and
/// run again on the blocking pool: 2,048 steps. A page read through an index takes a
/// fraction of them (about 40 checks for 20 records of a model of two fields), and is
/// spared the hand-off to a blocking thread and back (two thread wake-ups, more than its
/// own work); one whose filter scans on is stopped early.
const INLINE_CHECKS: u32 = 256;

/// The longest a short list runs on the caller's thread before it is stopped and run again
/// on the blocking pool, whatever its steps: one step can read a long value's overflow
/// pages, so steps alone do not bound the time a worker thread is held.
const INLINE_TIME: Duration = Duration::from_micros(500);

/// Checks between two readings of the clock during an inline run.
const CLOCK_EVERY: u32 = 8;

/// The longest page tried on the caller's thread first; longer ones go to the blocking pool
/// at once, as counts and lists matching a pattern or searching do (one step of theirs,
/// a pattern matched against one value, can be long, and nothing interrupts it).
pub(super) const INLINE_ROWS: u32 = 50;

/// The steps a page of `rows` records of a model of `fields` fields is expected to take:
/// a page that would need more than three quarters of [`INLINE_CHECKS`] goes to the pool
/// at once rather than pay an inline run first.
pub(super) fn fits_inline(rows: u32, fields: usize) -> bool {
    let steps = (rows as usize + 1) * (fields + 12);
    rows <= INLINE_ROWS && steps <= INLINE_CHECKS as usize * PROGRESS_STEPS as usize * 3 / 4
}

/// The pool of read connections.
#[derive(Debug)]
pub(super) struct Readers {
    /// Idle read connections. Taken only after a `permits` permit, so one is always there
    /// for the taker; a [`Reader`] puts it back, even when its read panicked.
    idle: Arc<Mutex<Vec<Connection>>>,
    /// Bounds concurrent reads to the number of read connections.
    permits: Arc<Semaphore>,
    /// Bounds the record lists among them, so gets always find a connection.
    lists: ListGate,
    /// The time budget of a read that may scan.
    budget: Duration,
}

/// A read connection checked out of the pool; dropping it (after the read, or while a
/// panic unwinds) clears its progress handler and puts the connection back, then releases
/// its permit.
struct Reader {
    conn: Option<Connection>,
    pool: Arc<Mutex<Vec<Connection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Reader {
    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::internal("reader without a connection"))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A connection whose handler could not be cleared is closed, not pooled.
        if let Some(mut conn) = self.conn.take()
            && conn.progress_handler(0, None::<fn() -> bool>).is_ok()
            && let Ok(mut idle) = self.pool.lock()
        {
            idle.push(conn);
        }
    }
}

/// Runs `f` on `reader` on this thread, stopped after [`INLINE_CHECKS`] checks of its
/// progress or [`INLINE_TIME`]: its result, or `None` when it was stopped (nothing is kept
/// of that run: a read changes nothing).
fn inline<T>(
    reader: &mut Reader,
    f: &impl Fn(&Connection) -> Result<T, StoreError>,
) -> Option<Result<T, StoreError>> {
    let conn = match reader.conn() {
        Ok(conn) => conn,
        Err(e) => return Some(Err(e)),
    };
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&stopped);
    let started = std::time::Instant::now();
    let mut checks = 0u32;
    let watched = conn.progress_handler(
        PROGRESS_STEPS,
        Some(move || {
            checks += 1;
            let over = checks > INLINE_CHECKS
                || (checks.is_multiple_of(CLOCK_EVERY) && started.elapsed() > INLINE_TIME);
            if over {
                stop.store(true, Ordering::Relaxed);
            }
            over
        }),
    );
    if let Err(e) = watched {
        return Some(Err(StoreError::internal(e)));
    }
    // A panic answers an internal error, as on the blocking pool.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::internal("a read panicked")));
    (!stopped.load(Ordering::Relaxed)).then_some(result)
}

/// Set when the future waiting for a read is dropped: its statement should stop.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Readers {
    /// A pool over `conns`, each scanning read bounded by `budget`.
    pub(super) fn new(conns: Vec<Connection>, budget: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(conns.len())),
            lists: ListGate::new(conns.len()),
            idle: Arc::new(Mutex::new(conns)),
            budget,
        }
    }

    /// Takes a read connection, waiting while all are in use.
    async fn take(&self) -> Result<Reader, StoreError> {
        let closed = || StoreError::Unavailable("the database is closed".to_owned());
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let pool = Arc::clone(&self.idle);
        let conn = pool
            .lock()
            .map_err(|_| StoreError::internal("reader pool poisoned"))?
            .pop()
            .ok_or_else(closed)?;
        Ok(Reader {
            conn: Some(conn),
            pool,
            _permit: permit,
        })
    }

    /// Runs `f` on a read connection in the blocking pool, within the time budget.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let deadline = Instant::now() + self.budget;
        self.read_until(deadline, None, f).await
    }

    /// Runs a record list (`pattern`: it has a `like` filter) through the [`ListGate`], then
    /// as [`Self::read`] does; waiting at the gate counts against the budget. A `short` one
    /// (see [`fits_inline`]) is tried on this thread first, for at most [`INLINE_CHECKS`]
    /// or [`INLINE_TIME`], and runs again on the pool only if it was stopped there.
    pub(super) async fn list<T, F>(&self, pattern: bool, short: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + Sync + 'static,
    {
        let deadline = Instant::now() + self.budget;
        let pass = tokio::time::timeout_at(deadline, self.lists.enter(pattern))
            .await
            .map_err(|_| StoreError::Timeout(self.budget))??;
        let mut reader = self.take_until(deadline).await?;
        if short && let Some(done) = inline(&mut reader, &f) {
            return done;
        }
        self.on_pool(deadline, Some(pass), reader, f).await
    }

    /// Takes a read connection, waiting for one until `deadline`.
    async fn take_until(&self, deadline: Instant) -> Result<Reader, StoreError> {
        tokio::time::timeout_at(deadline, self.take())
            .await
            .map_err(|_| StoreError::Timeout(self.budget))?
    }

    async fn read_until<T, F>(
        &self,
        deadline: Instant,
        pass: Option<ListPass>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.take_until(deadline).await?;
        self.on_pool(deadline, pass, reader, f).await
    }

    /// Runs `f` on `reader` in the blocking pool until `deadline`.
    async fn on_pool<T, F>(
        &self,
        deadline: Instant,
        pass: Option<ListPass>,
        reader: Reader,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let stopped = Arc::clone(&stop.0);
        let mut task = tokio::task::spawn_blocking(move || {
            let _pass = pass;
            let mut reader = reader;
            let conn = reader.conn()?;
            conn.progress_handler(
                PROGRESS_STEPS,
                Some(move || stopped.load(Ordering::Relaxed)),
            )
            .map_err(StoreError::internal)?;
            f(conn)
        });
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(joined) => joined.map_err(StoreError::internal)?,
            Err(_) => {
                stop.0.store(true, Ordering::Relaxed);
                // The statement stops at its next check; wait for that, so the connection
                // is back in the pool when the caller hears of the timeout.
                match task.await {
                    Ok(Ok(done_meanwhile)) => Ok(done_meanwhile),
                    _ => Err(StoreError::Timeout(self.budget)),
                }
            }
        }
    }

    /// Runs a bounded read (a primary-key or unique-index lookup) on a read connection, on
    /// the calling thread. Such a lookup takes microseconds, less than handing it to the
    /// blocking pool would; anything that may scan goes through [`Self::read`] instead.
    pub(super) async fn read_point<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let mut reader = self.take().await?;
        f(reader.conn()?)
    }

    /// Stops new reads and closes the idle connections.
    pub(super) fn close(&self) {
        self.permits.close();
        self.lists.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

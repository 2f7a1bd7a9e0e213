//! The connection table: every open connection's state ([`Conn`], with its HTTP/2
//! [`Stream`]s) and the one budget of permits all listeners share ([`Connections`]), which
//! picks the connection to evict at the cap.

use super::{ConnLimits, Protocol, ROOM_RECHECK};
use crate::limits::BodyProgress;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// No head has started since the connection became idle.
pub(super) const NONE: u64 = u64::MAX;

/// One connection's state, shared by its socket (which notes arriving bytes), its service
/// (which counts requests) and its watcher (which closes it when a limit passes). Times are
/// microseconds since the server's epoch, so connections compare.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) in_flight: AtomicUsize,
    /// When the connection last became idle: opened, or its last answer was written out.
    pub(super) idle_since: AtomicU64,
    /// When the head of the request in flight had arrived.
    pub(super) busy_since: AtomicU64,
    /// The reading of the body of the request in flight (requests on one connection come
    /// one after another).
    pub(super) body: BodyProgress,
    /// The answer's body has ended: the request ends when the socket is next flushed.
    pub(super) flush_pending: AtomicBool,
    /// When the first byte of the next request head arrived, or [`NONE`].
    pub(super) head_started: AtomicU64,
    /// Chosen to be closed to make room for a new connection.
    pub(super) evicted: AtomicBool,
    /// Wakes the watcher: the connection was evicted.
    pub(super) wake: Notify,
    /// HTTP/2: requests run side by side, each with a body watch of its own.
    pub(super) http2: bool,
    /// HTTP/2: the requests in flight (at most [`MAX_H2_STREAMS`]).
    pub(super) streams: Mutex<Vec<Stream>>,
    /// HTTP/2: the id of the next request on the connection.
    pub(super) next_stream: AtomicU64,
}

/// An HTTP/2 request in flight: when its head arrived, and the reading of its body.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) id: u64,
    pub(super) began: u64,
    pub(super) body: BodyProgress,
}

/// Every open connection, and the permits of the cap: one budget for every listener of the
/// process (the main port and the redirect port), so together they hold at most
/// `max_connections`, the number the file-descriptor fit allowed for.
#[derive(Debug)]
pub(crate) struct Connections {
    pub(super) epoch: Instant,
    pub(super) next_id: AtomicU64,
    pub(super) open: Mutex<HashMap<u64, Arc<Conn>>>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) limits: ConnLimits,
}

impl Connections {
    /// A budget of `limits.max_connections` connections, none open.
    pub(crate) fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
        })
    }

    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(NONE - 1)
    }

    pub(super) fn register(&self, protocol: Protocol) -> (u64, Arc<Conn>) {
        let now = self.now();
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            busy_since: AtomicU64::new(now),
            body: BodyProgress::default(),
            flush_pending: AtomicBool::new(false),
            // A new connection's first head is timed from the connection itself.
            head_started: AtomicU64::new(now),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
            http2: protocol == Protocol::Http2,
            streams: Mutex::new(Vec::new()),
            next_stream: AtomicU64::new(0),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&conn));
        (id, conn)
    }

    pub(super) fn unregister(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Asks a connection to close, to make room: the one idle the longest or, with none
    /// idle, the one whose request has waited on its body the longest, if longer than the
    /// header-read timeout (over HTTP/2, one whose every request waits on its body, timed
    /// from the oldest). False when there is none.
    ///
    /// A scan of every connection under the lock: it runs only at the cap (or out of file
    /// descriptors), over at most `max_connections` entries.
    pub(super) fn evict_one(&self) -> bool {
        let now = self.now();
        let patience = as_micros(self.limits.header_read_timeout);
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let victim = open
            .iter()
            .filter(|(_, c)| !c.evicted.load(Ordering::Acquire))
            .filter_map(|(id, c)| {
                if c.in_flight.load(Ordering::Acquire) == 0 {
                    return Some(((0, c.idle_since.load(Ordering::Acquire), *id), c));
                }
                c.waiting_since()
                    .filter(|&since| now.saturating_sub(since) >= patience)
                    .map(|since| ((1, since, *id), c))
            })
            // Idle ones first; the longest idle or waiting; on a tie, the older connection.
            .min_by_key(|(key, _)| *key);
        match victim {
            Some((_, conn)) => {
                conn.evicted.store(true, Ordering::Release);
                conn.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// A permit for one more connection: at once below the cap; at the cap, after an idle
    /// connection was closed to make room or a busy one ended. `None` when `stop` fires first.
    pub(super) async fn room(
        &self,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        let mut warned = false;
        loop {
            if !self.evict_one() && !warned {
                warned = true;
                tracing::warn!(
                    max_connections = self.limits.max_connections,
                    "connection cap reached with every connection busy; new connections wait"
                );
            }
            tokio::select! {
                permit = Arc::clone(&self.permits).acquire_owned() => return permit.ok(),
                () = tokio::time::sleep(ROOM_RECHECK) => {}
                () = stop.as_mut() => return None,
            }
        }
    }

    /// Returns when `conn` must close: its head took too long, it idled too long, or it was
    /// evicted while idle or waiting on a request body.
    pub(super) async fn watch(&self, conn: &Conn) {
        let header = as_micros(self.limits.header_read_timeout);
        let idle = as_micros(self.limits.keep_alive_timeout);
        loop {
            let busy = conn.in_flight.load(Ordering::Acquire) > 0;
            if conn.evicted.swap(false, Ordering::AcqRel)
                && (!busy || conn.waiting_since().is_some())
            {
                return;
            }
            let now = self.now();
            let wait = if busy {
                // A request's own time is bounded by the request timeout; look again later.
                header.min(idle)
            } else {
                let deadline = match conn.head_started.load(Ordering::Acquire) {
                    NONE => conn.idle_since.load(Ordering::Acquire).saturating_add(idle),
                    started => started.saturating_add(header),
                };
                if deadline <= now {
                    return;
                }
                // Not woken by the traffic itself: a head that starts while this sleeps is
                // seen within `header`, an idle spell that starts within `idle`, each by its
                // own deadline at the latest.
                (deadline - now).min(header).min(idle)
            };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_micros(wait)) => {}
                () = conn.wake.notified() => {}
            }
        }
    }
}

pub(super) fn as_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(NONE - 1).max(1)
}

impl Conn {
    /// When the head of the request waiting on its body arrived, if the connection waits
    /// only on the client: over HTTP/1.1, its request's body is awaited; over HTTP/2, every
    /// request in flight waits on its body (then the oldest one's head).
    pub(super) fn waiting_since(&self) -> Option<u64> {
        if !self.http2 {
            return self
                .body
                .waiting()
                .then(|| self.busy_since.load(Ordering::Acquire));
        }
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if streams.is_empty() || !streams.iter().all(|s| s.body.waiting()) {
            return None;
        }
        streams.iter().map(|s| s.began).min()
    }

    /// A request ends: with none left in flight, the connection is idle from now.
    pub(super) fn finish(&self, shared: &Connections) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.head_started.store(NONE, Ordering::Release);
            self.idle_since.store(shared.now(), Ordering::Release);
        }
    }
}

//! One stream: a task that replays the log from where the client stood, then relays the
//! hub's changes, and the response body it writes into.
//!
//! The task writes frames into a channel of [`QUEUE`] frames that the body drains as the
//! connection takes them, so a stream holds at most that many frames besides the hub's
//! shared buffer. While the task waits for room, it watches the hub: once more than
//! `realtime.buffer` changes wait for it, it ends the stream (`slow_consumer`). The closing
//! `end` frame skips the queue, so a stalled client reads it as soon as it reads again.

use super::Feed;
use super::frame::{self, EndReason, ResetReason};
use super::hub::Tap;
use super::registry::Admission;
use crate::auth::Standing;
use crate::metrics::RealtimeMetrics;
use axum::body::Bytes;
use hyper::body::{Frame, SizeHint};
use plinth_store::{ChangeWindow, ChangesPage, Store};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

/// Frames a stream holds for its connection.
const QUEUE: usize = 8;
/// Changes read per call while replaying.
const PAGE: u32 = 256;
/// The first pause after a failed replay read; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two failed replay reads.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Replays a stream runs before it goes live: each one after the first catches up with
/// changes that overflowed its tap while it replayed; past this, the stream is cut.
const MAX_ROUNDS: u32 = 4;

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    /// Replay changes after this `seq`.
    pub(crate) from: i64,
    /// ... up to this one (the log's head when the stream opened); live from there.
    pub(crate) head: i64,
    /// The resume asked for could not be served.
    pub(crate) reset: Option<ResetReason>,
}

impl Start {
    /// Where a stream resuming after `after` (`None`: a fresh one) starts, given where the
    /// log stands.
    pub(crate) fn decide(after: Option<i64>, window: plinth_store::ChangeWindow) -> Self {
        let head = window.head;
        let (from, reset) = match after {
            None => (head, None),
            Some(a) if a < window.pruned_through => (head, Some(ResetReason::Expired)),
            Some(a) if a > head => (head, Some(ResetReason::Unknown)),
            Some(a) => (a, None),
        };
        Self { from, head, reset }
    }
}

/// The task's end of a stream.
#[derive(Debug)]
pub(crate) struct Outlet {
    tx: mpsc::Sender<Bytes>,
    end: Arc<Mutex<Option<Bytes>>>,
}

/// The response body of a stream.
#[derive(Debug)]
pub(crate) struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    end: Arc<Mutex<Option<Bytes>>>,
    finished: bool,
}

/// A stream's two ends.
pub(crate) fn channel() -> (Outlet, EventBody) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let end = Arc::new(Mutex::new(None));
    let outlet = Outlet {
        tx,
        end: Arc::clone(&end),
    };
    let body = EventBody {
        rx,
        end,
        finished: false,
    };
    (outlet, body)
}

impl EventBody {
    fn take_end(&mut self) -> Option<Bytes> {
        self.end
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if let Some(end) = self.take_end() {
            self.finished = true;
            return Poll::Ready(Some(Ok(Frame::data(end))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(None) => {
                // The task is done; it set the end frame, if any, before letting go.
                self.finished = true;
                Poll::Ready(self.take_end().map(|end| Ok(Frame::data(end))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What woke a live stream.
enum Next {
    Live(Result<Arc<super::Live>, RecvError>),
    Beat,
}

/// Why a stream stops.
enum Stop {
    /// The server ends it, saying why.
    End(EndReason),
    /// The client went away.
    Gone,
}

/// One stream's task.
pub(crate) struct Session {
    pub(crate) feed: Feed,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) outlet: Outlet,
    pub(crate) tap: Tap,
    /// How many changes may wait for this stream before it is ended.
    pub(crate) buffer: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) metrics: RealtimeMetrics,
    /// Counts the stream as open while the task runs.
    pub(crate) admission: Admission,
    /// Resolves when the credential the stream was opened with ends.
    pub(crate) credential: Pin<Box<dyn Future<Output = Standing> + Send>>,
    /// The `seq` through which every matching change was delivered, once the stream sent
    /// `ready` or a change: the `id` of its `end`.
    pub(crate) reached: Option<i64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("buffer", &self.buffer)
            .field("heartbeat", &self.heartbeat)
            .field("reached", &self.reached)
            .finish_non_exhaustive()
    }
}

/// Waits until the server shuts down (or the hub is gone).
async fn shut(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Session {
    /// Runs the stream from `start` until the client leaves or the server ends it.
    pub(crate) async fn run(mut self, start: Start) {
        let mut credential =
            std::mem::replace(&mut self.credential, Box::pin(std::future::pending()));
        let stop = tokio::select! {
            stop = self.stream(start) => stop,
            standing = &mut credential => Stop::End(match standing {
                Standing::Expired => EndReason::CredentialExpired,
                Standing::Revoked | Standing::Valid => EndReason::CredentialRevoked,
            }),
        };
        if let Stop::End(reason) = stop {
            self.metrics.cut(reason);
            tracing::debug!(reason = reason.as_str(), "change-feed stream ended");
            *self
                .outlet
                .end
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(frame::end(reason, self.reached));
        }
        drop(self.admission);
    }

    async fn stream(&mut self, start: Start) -> Stop {
        if let Some(reason) = start.reset
            && let Err(stop) = self.send(frame::reset(reason, start.head), false).await
        {
            return stop;
        }
        let mut position = start.from;
        let mut target = start.head;
        let mut rounds = 1;
        loop {
            position = match self.replay(position, target).await {
                Ok(reached) => reached,
                Err(stop) => return stop,
            };
            // Lag is not judged while replaying; if the tap overflowed meanwhile, take a
            // fresh one and replay again up to where the log stands now.
            if self.tap.live.len() <= self.buffer {
                break;
            }
            if rounds >= MAX_ROUNDS {
                return Stop::End(EndReason::SlowConsumer);
            }
            rounds += 1;
            self.tap.live = self.tap.live.resubscribe();
            target = match self.read_window().await {
                Ok(window) => window.head.max(*self.tap.position.borrow()),
                Err(stop) => return stop,
            };
        }
        if let Err(stop) = self.send(frame::ready(position), false).await {
            return stop;
        }
        self.reached = Some(position);
        let period = self.heartbeat;
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                biased;
                () = shut(&mut self.tap.shutdown) => return Stop::End(EndReason::Shutdown),
                () = self.outlet.tx.closed() => return Stop::Gone,
                received = self.tap.live.recv() => Next::Live(received),
                _ = beat.tick() => Next::Beat,
            };
            let frame = match next {
                Next::Beat => {
                    let beat = Bytes::from_static(frame::HEARTBEAT);
                    if let Err(stop) = self.send(beat, true).await {
                        return stop;
                    }
                    continue;
                }
                Next::Live(Ok(live)) if live.change.seq <= position => continue,
                Next::Live(Ok(live)) => {
                    position = live.change.seq;
                    match self.feed.frame(&live.change, Some(&live)) {
                        Some(frame) => frame,
                        None => {
                            self.reached = Some(position);
                            continue;
                        }
                    }
                }
                Next::Live(Err(RecvError::Lagged(_))) => {
                    return Stop::End(EndReason::SlowConsumer);
                }
                Next::Live(Err(RecvError::Closed)) => return Stop::End(EndReason::Shutdown),
            };
            if let Err(stop) = self.send(frame, true).await {
                return stop;
            }
            self.reached = Some(position);
            self.metrics.events_sent.inc();
            beat.reset();
        }
    }

    /// Replays the log's changes after `position` through `target`; returns the position
    /// reached (at least `target`). When the log was pruned past the position a page was
    /// read from, the page may have missed changes: the stream is told `reset` `expired`
    /// and goes on from the log's head.
    async fn replay(&mut self, mut position: i64, target: i64) -> Result<i64, Stop> {
        while position < target {
            let page = self.read_after(position).await?;
            let window = self.read_window().await?;
            if window.pruned_through > position {
                let head = window.head.max(target);
                self.send(frame::reset(ResetReason::Expired, head), false)
                    .await?;
                self.reached = None;
                return Ok(head);
            }
            for change in page.changes {
                if change.seq <= position {
                    continue;
                }
                position = change.seq;
                if let Some(frame) = self.feed.frame(&change, None) {
                    self.send(frame, false).await?;
                    self.metrics.events_sent.inc();
                    self.reached = Some(position);
                } else if self.reached.is_some() {
                    self.reached = Some(position);
                }
            }
            position = position.max(page.through);
            if !page.full {
                break;
            }
        }
        // Everything up to the target (a head read earlier) is in the log: the stream
        // stands there.
        Ok(position.max(target))
    }

    /// Queues `frame`, waiting for room; when `judge`, ends the stream once it is more than
    /// `buffer` changes behind the hub (a replay is not judged: it catches up after); ends
    /// it at shutdown.
    async fn send(&mut self, frame: Bytes, judge: bool) -> Result<(), Stop> {
        loop {
            if judge && self.tap.live.len() > self.buffer {
                return Err(Stop::End(EndReason::SlowConsumer));
            }
            tokio::select! {
                biased;
                () = shut(&mut self.tap.shutdown) => return Err(Stop::End(EndReason::Shutdown)),
                permit = self.outlet.tx.reserve() => {
                    return match permit {
                        Ok(permit) => {
                            permit.send(frame);
                            Ok(())
                        }
                        Err(_) => Err(Stop::Gone),
                    };
                }
                changed = self.tap.position.changed() => {
                    if changed.is_err() {
                        return Err(Stop::End(EndReason::Shutdown));
                    }
                }
            }
        }
    }

    /// A page of the log after `after`, read again after a pause while reading fails.
    async fn read_after(&mut self, after: i64) -> Result<ChangesPage, Stop> {
        let store = Arc::clone(&self.store);
        self.retry(move || {
            let store = Arc::clone(&store);
            async move { store.changes_after(after, PAGE).await }
        })
        .await
    }

    /// Where the log stands, read again after a pause while reading fails.
    async fn read_window(&mut self) -> Result<ChangeWindow, Stop> {
        let store = Arc::clone(&self.store);
        self.retry(move || {
            let store = Arc::clone(&store);
            async move { store.change_window().await }
        })
        .await
    }

    /// The answer of `read`, called again after a growing pause while it fails.
    async fn retry<T, F>(&mut self, read: impl Fn() -> F) -> Result<T, Stop>
    where
        F: Future<Output = Result<T, plinth_store::StoreError>>,
    {
        let mut backoff = MIN_BACKOFF;
        loop {
            match read().await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::warn!(error = %e, "a change-feed stream cannot read the change log; retrying");
                }
            }
            tokio::select! {
                biased;
                () = shut(&mut self.tap.shutdown) => return Err(Stop::End(EndReason::Shutdown)),
                () = self.outlet.tx.closed() => return Err(Stop::Gone),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

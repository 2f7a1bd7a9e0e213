//! The hub: one task per instance that follows the change log and hands each change, in
//! `seq` order, to every open stream of the instance.
//!
//! It reads `Store::changes_after` from where it stands (the log's head when it starts),
//! whenever `Store::change_signal` is bumped and at least every `realtime.poll_ms`, so a
//! missed signal delays a change but never loses it. A failed read is retried after a
//! growing pause, from the same position: nothing is skipped. Changes go out through a
//! broadcast channel of `realtime.buffer` entries, shared by all streams: the instance
//! keeps at most that many changes, whatever its streams' speeds; a stream that falls
//! further behind is ended (`slow_consumer`) by its own task.

use super::Live;
use plinth_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Changes read per call.
const PAGE: u32 = 256;
/// The first pause after a failed read; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two failed reads.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The hub's channels; the task itself is started by [`Hub::spawn`].
#[derive(Debug)]
pub(crate) struct Hub {
    /// Every change read, in order, to every stream.
    changes: broadcast::Sender<Arc<Live>>,
    /// The `seq` the hub has read the log through: streams waiting to write look at it to
    /// notice they fell behind.
    position: watch::Sender<i64>,
    /// Set once, when the server stops serving: streams end with `shutdown`.
    shutdown: watch::Sender<bool>,
    /// Where the hub started (the log's head it read first); `None` until then. Streams
    /// open only once it is known, and replay at least up to it: a change at or before it
    /// is never broadcast.
    start: watch::Sender<Option<i64>>,
}

/// A stream's view of the hub, taken before it reads where the log stands.
#[derive(Debug)]
pub(crate) struct Tap {
    pub(crate) live: broadcast::Receiver<Arc<Live>>,
    pub(crate) position: watch::Receiver<i64>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Hub {
    /// A hub keeping at most `buffer` changes (at least one).
    pub(crate) fn new(buffer: usize) -> Self {
        let (changes, _) = broadcast::channel(buffer.max(1) + 1);
        Self {
            changes,
            position: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            start: watch::Sender::new(None),
        }
    }

    /// Where the hub started following the log, waiting at most `within` for it to start;
    /// `None` when it did not.
    pub(crate) async fn started(&self, within: Duration) -> Option<i64> {
        let mut start = self.start.subscribe();
        let started = tokio::time::timeout(within, start.wait_for(Option::is_some)).await;
        match started {
            Ok(Ok(at)) => *at,
            _ => None,
        }
    }

    /// Taps the feed: every change the hub hands out from now on reaches the tap.
    pub(crate) fn tap(&self) -> Tap {
        Tap {
            live: self.changes.subscribe(),
            position: self.position.subscribe(),
            shutdown: self.shutdown.subscribe(),
        }
    }

    /// Tells every stream to end (`shutdown`); new streams are refused.
    pub(crate) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether [`Self::shut_down`] was called.
    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Starts following the log of `store`, reading it at least every `poll`.
    pub(crate) fn spawn(self: &Arc<Self>, store: Arc<dyn Store>, poll: Duration) -> JoinHandle<()> {
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            hub.follow(store.as_ref(), poll).await;
            tracing::debug!("the change-feed hub stopped");
        })
    }

    async fn follow(&self, store: &dyn Store, poll: Duration) {
        let mut stop = self.shutdown.subscribe();
        let mut signal = store.change_signal();
        // The default signal of a store without one has no sender: `changed` fails at once,
        // and the hub falls back to polling rather than spinning.
        let mut signalled = true;
        let mut backoff = MIN_BACKOFF;
        let mut at = loop {
            match store.change_window().await {
                Ok(window) => break window.head,
                Err(e) => {
                    tracing::warn!(error = %e, "the change feed cannot read where the change log stands; retrying");
                    if pause(&mut stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.position.send_replace(at);
        self.start.send_replace(Some(at));
        loop {
            // Read everything there is, page by page.
            match store.changes_after(at, PAGE).await {
                Ok(page) => {
                    backoff = MIN_BACKOFF;
                    let before = at;
                    for change in page.changes {
                        if change.seq <= at {
                            continue;
                        }
                        at = change.seq;
                        // No stream open: nobody to hand it to, which is fine.
                        let _ = self.changes.send(Arc::new(Live::new(change)));
                    }
                    // Rows of models no longer declared are skipped but passed.
                    at = at.max(page.through);
                    if at != before {
                        self.position.send_replace(at);
                    }
                    if page.full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, after = at, "the change feed cannot read the change log; retrying");
                    if pause(&mut stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                changed = signal.changed(), if signalled => {
                    if changed.is_err() {
                        signalled = false;
                    }
                }
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Waits `pause`; `true` when the hub is to stop instead.
async fn pause(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => true,
        () = tokio::time::sleep(pause) => false,
    }
}

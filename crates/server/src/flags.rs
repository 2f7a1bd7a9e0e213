//! Feature flags as this instance holds them: every flag, loaded from the store at start
//! (or when first needed) and loaded again after any change, here (by the handler that
//! made it, before it answers) or on another instance (on the store's
//! [`plinth_store::Invalidation::Flags`] notice, see `app`), and every
//! `flags.reload_seconds` by [`spawn_reloader`] in case a notice was missed.
//!
//! Deciding a flag reads only memory: the store is asked once per change, not per request.
//! The decision itself is `plinth_core::flags` (the same on every instance, no seed).
//! A load that fails keeps the flags last loaded (an operator's kill switch stays off) and
//! is tried again, with backoff, by the reloader.
//!
//! `plinth.*` flags steer Plinth itself: [`REPLICA_READS`] is the first; [`PLINTH_FLAGS`]
//! lists them all.

use crate::state::AppState;
use plinth_core::Timestamp;
use plinth_core::flags::{Flag, Subject};
use plinth_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// `plinth.replica_reads`: whether a caller's gets and lists may go to the read replica.
/// Absent, they may (as before flags); present, only for the callers it is on for. Before
/// the flags have loaded once, they may not (the safe choice: the primary). An operator
/// turns it off when the replica misbehaves, or rolls replica reads out by percentage,
/// without a restart.
pub(crate) const REPLICA_READS: &str = "plinth.replica_reads";

/// Every `plinth.*` flag Plinth knows; a flag of another `plinth.*` key is refused, so a
/// misspelt kill switch cannot look set while doing nothing.
pub(crate) const PLINTH_FLAGS: &[&str] = &[REPLICA_READS];

/// How long the first retry of a failed load waits; each next one waits twice as long, up
/// to the reload interval.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Every flag by key, as last loaded.
pub(crate) type FlagSet = BTreeMap<String, Flag>;

/// This instance's copy of the flags.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    /// The flags held and which load put them there. Short critical sections, never
    /// across an await.
    held: Mutex<Held>,
    /// Held by the one caller loading the flags when none are held; the others wait for
    /// its result instead of loading them too.
    first: tokio::sync::Mutex<()>,
    /// Wakes the reloader: a notice arrived, or a load failed and is to be retried.
    reload: Notify,
}

/// Loads are numbered as they start; a load's result is held only if no later-started
/// load's was. Every change is followed by a load started after its commit (here by the
/// handler that made it, elsewhere on its notice), so once that load is done what is held
/// is at least as new as the change, and an older load finishing late cannot undo it.
#[derive(Debug, Default)]
struct Held {
    /// The number of the last load started.
    started: u64,
    /// The number of the load whose result is held.
    held: u64,
    /// The flags; none before the first load that succeeded.
    set: Option<Arc<FlagSet>>,
}

impl Flags {
    /// The flags, loaded from `store` first if none are held (once for every caller
    /// waiting at that moment).
    pub(crate) async fn current(&self, store: &dyn Store) -> Result<Arc<FlagSet>, StoreError> {
        if let Some(set) = self.peek() {
            return Ok(set);
        }
        let _first = self.first.lock().await;
        match self.peek() {
            Some(set) => Ok(set),
            None => self.load(store).await,
        }
    }

    /// The flags held, without loading them.
    pub(crate) fn peek(&self) -> Option<Arc<FlagSet>> {
        self.held.lock().ok().and_then(|h| h.set.clone())
    }

    /// Loads the flags from `store` and holds them, unless a load started later was held
    /// first. A failure keeps what is held.
    pub(crate) async fn load(&self, store: &dyn Store) -> Result<Arc<FlagSet>, StoreError> {
        let number = match self.held.lock() {
            Ok(mut h) => {
                h.started += 1;
                h.started
            }
            Err(_) => 0,
        };
        let loaded = store.list_flags().await.map(|flags| {
            Arc::new(
                flags
                    .into_iter()
                    .map(|f| (f.key.as_str().to_owned(), f))
                    .collect::<FlagSet>(),
            )
        });
        if let Ok(set) = &loaded
            && let Ok(mut h) = self.held.lock()
            && number > h.held
        {
            h.held = number;
            h.set = Some(Arc::clone(set));
        }
        loaded
    }

    /// After a change made here: loads the flags again; if that fails, keeps those held
    /// and leaves the load to the reloader.
    pub(crate) async fn changed(&self, store: &dyn Store) {
        if let Err(e) = self.load(store).await {
            tracing::warn!(error = %e, "could not load the feature flags again; keeping those held and retrying");
            self.reload.notify_one();
        }
    }

    /// After another instance's notice: has the reloader load the flags again (the notice
    /// loop does not wait for it).
    pub(crate) fn announced(&self) {
        self.reload.notify_one();
    }

    /// Whether the Plinth flag `key` is on for `subject` at `now`: `absent` when it does
    /// not exist, `unloaded` when no flags have loaded yet.
    pub(crate) fn plinth_flag(
        &self,
        key: &str,
        subject: &Subject,
        now: Timestamp,
        absent: bool,
        unloaded: bool,
    ) -> bool {
        match self.peek() {
            None => unloaded,
            Some(set) => set
                .get(key)
                .map_or(absent, |f| f.rule.decide(&f.key, subject, now)),
        }
    }
}

/// Loads the flags again every `every`, when woken by [`Flags::announced`], and after a
/// failed load (first after [`FIRST_RETRY`], then twice as long each time, at most
/// `every`), until aborted.
pub(crate) fn spawn_reloader(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let flags = Arc::clone(state.flags());
        let mut retry: Option<Duration> = None;
        loop {
            let wait = retry.map_or(every, |r| r.min(every));
            tokio::select! {
                () = flags.reload.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            match flags.load(state.store().as_ref()).await {
                Ok(_) => retry = None,
                Err(e) => {
                    let next = retry.map_or(FIRST_RETRY, |r| r.saturating_mul(2));
                    tracing::warn!(
                        error = %e,
                        retry_ms = next.min(every).as_millis() as u64,
                        "could not load the feature flags; keeping those held"
                    );
                    retry = Some(next);
                }
            }
        }
    })
}

/// The evaluation a client sees: the flags, other than Plinth's own, that are on for
/// `subject`, each `true`. A flag that is off is left out, for every caller, so nobody
/// learns the names of flags disabled, scheduled or targeted at others (a client treats a
/// missing flag as off).
pub(crate) fn evaluate(set: &FlagSet, subject: &Subject, now: Timestamp) -> BTreeMap<String, bool> {
    set.values()
        .filter(|f| !f.key.is_reserved() && f.rule.decide(&f.key, subject, now))
        .map(|f| (f.key.as_str().to_owned(), true))
        .collect()
}

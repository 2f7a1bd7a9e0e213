//! Feature flags as this instance holds them: every flag, loaded from the store at start
//! (or when first needed) and loaded again after any change, here (by the handler that
//! made it, before it answers) or on another instance (on the store's
//! [`plinth_store::Invalidation::Flags`] notice, see `app`).
//!
//! Deciding a flag reads only memory: the store is asked once per change, not per request.
//! The decision itself is `plinth_core::flags` (the same on every instance, no seed).
//!
//! `plinth.*` flags steer Plinth itself: [`REPLICA_READS`] is the first.

use plinth_core::Timestamp;
use plinth_core::flags::{Flag, Subject};
use plinth_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// `plinth.replica_reads`: whether a caller's gets and lists may go to the read replica.
/// Absent, they may (as before flags); present, only for the callers it is on for. An
/// operator turns it off when the replica misbehaves, or rolls replica reads out by
/// percentage, without a restart.
pub(crate) const REPLICA_READS: &str = "plinth.replica_reads";

/// Every flag by key, as last loaded.
pub(crate) type FlagSet = BTreeMap<String, Flag>;

/// This instance's copy of the flags.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    /// The flags held and which load put them there. Short critical sections, never
    /// across an await.
    held: Mutex<Held>,
}

/// Loads are numbered as they start; a load's result is held only if no later-started
/// load's was. Every change is followed by a load started after its commit (here by the
/// handler that made it, elsewhere on its notice), so once that load is done what is held
/// is at least as new as the change, and an older load finishing late cannot undo it.
#[derive(Debug, Default)]
struct Held {
    /// The number of the last load started.
    started: u64,
    /// The number of the load whose result is held (or that failed last).
    held: u64,
    /// The flags; none before the first load, or after the latest load failed.
    set: Option<Arc<FlagSet>>,
}

impl Flags {
    /// The flags, loaded from `store` first if none are held.
    pub(crate) async fn current(&self, store: &dyn Store) -> Result<Arc<FlagSet>, StoreError> {
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
    /// first. A failure drops what is held (it may be older than a change), so the next
    /// evaluation loads again.
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
        if let Ok(mut h) = self.held.lock()
            && number > h.held
        {
            h.held = number;
            h.set = loaded.as_ref().ok().cloned();
        }
        loaded
    }

    /// After a change (made here, or announced by another instance): loads the flags again.
    pub(crate) async fn changed(&self, store: &dyn Store) {
        if let Err(e) = self.load(store).await {
            tracing::warn!(error = %e, "could not load the feature flags again");
        }
    }

    /// Whether the Plinth flag `key` is on for `subject` at `now`; `default` when it does
    /// not exist or no flags are held yet.
    pub(crate) fn plinth_flag(
        &self,
        key: &str,
        subject: &Subject,
        now: Timestamp,
        default: bool,
    ) -> bool {
        self.peek()
            .and_then(|set| set.get(key).map(|f| f.rule.decide(&f.key, subject, now)))
            .unwrap_or(default)
    }
}

/// The evaluation a client sees: every flag that is not Plinth's own, on or off for
/// `subject`; for a guest only those that are on (a guest cannot learn the names of flags
/// being rolled out).
pub(crate) fn evaluate(set: &FlagSet, subject: &Subject, now: Timestamp) -> BTreeMap<String, bool> {
    set.values()
        .filter(|f| !f.key.is_reserved())
        .map(|f| {
            (
                f.key.as_str().to_owned(),
                f.rule.decide(&f.key, subject, now),
            )
        })
        .filter(|(_, on)| *on || !subject.is_guest())
        .collect()
}

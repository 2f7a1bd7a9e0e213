//! The change log's methods of the store (see `crate::changes`): read from the primary
//! (never the replica, which lags), pruned in a transaction of its own, and the signal
//! bumped once a write that logged a change has committed; other instances' changes bump
//! it through `connect::listen`.

use super::{PRIMARY, PgStore, connect};
use crate::sql::changes;
use crate::{ChangeWindow, ChangesPage, StoreError};
use plinth_core::Timestamp;
use std::sync::atomic::Ordering;

impl PgStore {
    /// Tells the change feed a change committed: called with the answer of the write's
    /// transaction, after its commit. While the LISTEN connection is up, the write's own
    /// notice tells it instead, as it tells the other instances.
    pub(super) fn changed<T>(&self, written: Result<T, StoreError>) -> Result<T, StoreError> {
        if written.is_ok() && !self.inner.listening.load(Ordering::Acquire) {
            connect::bump(&self.inner.signal);
        }
        written
    }

    /// `Store::changes_after`.
    pub(super) async fn changes_after_now(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<ChangesPage, StoreError> {
        let schema = self.schema();
        self.call(PRIMARY, async |c| {
            changes::after(c, &self.inner.keys, &schema, after, limit).await
        })
        .await
    }

    /// `Store::change_window`.
    pub(super) async fn change_window_now(&self) -> Result<ChangeWindow, StoreError> {
        self.call(PRIMARY, async |c| changes::window(c).await).await
    }

    /// `Store::prune_changes`.
    pub(super) async fn prune_changes_now(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.in_tx(async |tx| changes::prune(tx, before, limit).await)
            .await
    }

    /// `Store::change_signal`.
    pub(super) fn change_signal_now(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.signal.subscribe()
    }
}

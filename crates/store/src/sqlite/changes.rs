//! The change log's methods of the store (see `crate::changes`): read from a read
//! connection (SQLite has no replica: every connection reads the primary), pruned by the
//! writer, and the signal bumped once a write that logged a change has committed.

use super::SqliteStore;
use crate::sql::{changes, ready};
use crate::{ChangeWindow, ChangesPage, StoreError};
use plinth_core::Timestamp;

impl SqliteStore {
    /// Tells the change feed a change committed: called after the write's answer, which
    /// arrives only once its group commit is durable.
    pub(super) fn changed<T>(&self, written: Result<T, StoreError>) -> Result<T, StoreError> {
        if written.is_ok() {
            self.inner.signal.send_modify(|n| *n = n.wrapping_add(1));
        }
        written
    }

    /// `Store::changes_after`: from the tail the writer keeps, when it holds everything
    /// after `after` (the feed's reads at the head of the log); from the log otherwise.
    pub(super) async fn changes_after_now(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<ChangesPage, StoreError> {
        let schema = self.schema();
        if let Some(mut page) = self.inner.recent.after(after, limit) {
            // Changes of models no longer declared are skipped. A record written with a
            // model older than the schema (a write that raced its replacement) has another
            // shape: the log reads it against the models as they are.
            let mut shaped = true;
            page.changes.retain(|c| {
                let model = schema.model(&c.model);
                shaped &= model.is_none_or(|m| m.fields().len() == c.record.fields.len());
                model.is_some()
            });
            if shaped {
                return Ok(page);
            }
        }
        let keys = self.inner.keys.clone();
        self.read(move |c| ready(changes::after(c, &keys, &schema, after, limit)))
            .await
    }

    /// `Store::change_window`.
    pub(super) async fn change_window_now(&self) -> Result<ChangeWindow, StoreError> {
        self.read(|c| ready(changes::window(c))).await
    }

    /// `Store::prune_changes`.
    pub(super) async fn prune_changes_now(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |w| {
            let removed = ready(changes::prune(&w.conn, before, limit))?;
            if removed > 0 {
                // The tail may hold what went: it starts again after the commit.
                w.recent.forget();
            }
            Ok(removed)
        })
        .await
    }

    /// `Store::change_signal`.
    pub(super) fn change_signal_now(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.signal.subscribe()
    }
}

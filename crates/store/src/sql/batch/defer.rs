//! [`Deferring`]: a connection whose audit entries wait for the end of the batch.

use crate::StoreError;
use crate::sql::audit::{self, AuditBatch};
use crate::sql::{Dialect, Exec, Query};

/// Runs statements on `inner`, and collects the audit entries of the writes: in `inner`'s
/// own collection when it has one (the SQLite writer, whose group commit appends them), or
/// here until [`Deferring::flush`] appends them (PostgreSQL), so a batch of a thousand
/// writes takes the chain's lock and reads its head once instead of a thousand times.
pub(super) struct Deferring<'e, E> {
    inner: &'e E,
    own: AuditBatch,
}

impl<'e, E: Exec> Deferring<'e, E> {
    pub(super) fn new(inner: &'e E) -> Self {
        let own = AuditBatch::default();
        own.open();
        Self { inner, own }
    }

    /// Appends the entries collected here (none when `inner` collects them), in order.
    pub(super) async fn flush(self) -> Result<(), StoreError> {
        let entries = self.own.close();
        if entries.is_empty() {
            return Ok(());
        }
        audit::append_all(self.inner, entries).await.map(drop)
    }
}

impl<E: Exec> Exec for Deferring<'_, E> {
    const DIALECT: Dialect = E::DIALECT;
    type Row<'r> = E::Row<'r>;
    type Prepared = E::Prepared;

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        self.inner.rows(q, f).await
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        self.inner.row(q, f).await
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        self.inner.execute(q).await
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.inner.batch(sql).await
    }

    async fn prepare(&self, q: &Query<'_>) -> Result<E::Prepared, StoreError> {
        self.inner.prepare(q).await
    }

    async fn execute_prepared(&self, p: &E::Prepared, q: &Query<'_>) -> Result<u64, StoreError> {
        self.inner.execute_prepared(p, q).await
    }

    async fn row_prepared<T>(
        &self,
        p: &E::Prepared,
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        self.inner.row_prepared(p, q, f).await
    }

    fn audit_batch(&self) -> Option<&AuditBatch> {
        self.inner.audit_batch().or(Some(&self.own))
    }

    fn keeps_changes(&self) -> bool {
        self.inner.keeps_changes()
    }
}

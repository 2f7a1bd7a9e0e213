//! Record lists (their totals, and the records an expansion names): lists admitted by the [`ListGate`](crate::gate::ListGate) of the pool they run
//! on (primary or replica, each sized to its own connections), bounded by the
//! query budget, and cancelled on the server when nobody waits for them any more.
//!
//! The budget is kept here, not by a per-statement `statement_timeout`, so a list costs one
//! round trip as before. When the budget runs out, or the caller's future is dropped (an
//! HTTP client that hung up), the [`Cancelling`] guard sends PostgreSQL a cancel request
//! for the running statement, so its backend stops instead of finishing work nobody reads.
//! The connection is then taken out of the pool and closed rather than reused: a cancel
//! request that arrived late would otherwise cancel whatever the next user ran on it.

use super::exec::Pg;
use super::tls::PgTls;
use super::{PgStore, errors};
use crate::ReadFrom;
use crate::sql::{list, shape};
use crate::{Page, StoreError};
use deadpool_postgres::Object;
use plinth_core::{ListQuery, ListScope, ModelDef, Record, RecordId};
use std::time::Duration;
use tokio::time::Instant;

/// How long a cancel request may take before the connection is simply closed.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// A pooled client running a statement that must be cancelled if it is abandoned (over TLS
/// as its pool's connections are).
struct Cancelling(Option<Object>, PgTls);

impl Cancelling {
    fn client(&self) -> Result<&Object, StoreError> {
        self.0
            .as_ref()
            .ok_or_else(|| StoreError::internal("a cancelling guard without a client"))
    }

    /// The statement finished: the client goes back to the pool.
    fn finish(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else {
            return;
        };
        let client = Object::take(object);
        let token = client.cancel_token();
        let tls = self.1.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match tokio::time::timeout(CANCEL_WAIT, token.cancel_query(tls)).await {
                    Ok(Ok(())) => tracing::debug!("cancelled an abandoned list"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot cancel an abandoned list"),
                    Err(_) => tracing::warn!("cancelling an abandoned list timed out"),
                }
                drop(client);
            });
        }
    }
}

impl PgStore {
    /// One page, within the query budget (waiting at the gate and for a connection
    /// included); see the module documentation.
    pub(super) async fn list_within(
        &self,
        model: &ModelDef,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<Page, StoreError> {
        let keys = &self.inner.keys;
        self.gated(query.has_pattern(), from, async |c| {
            list::list(c, keys, model, query, scope).await
        })
        .await
    }

    /// `Store::explain_list`, on the primary, admitted and bounded as a list is.
    pub(super) async fn explain_within(
        &self,
        model: &ModelDef,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError> {
        let keys = &self.inner.keys;
        self.gated(query.has_pattern(), ReadFrom::Primary, async |c| {
            list::explain(c, keys, model, query, scope).await
        })
        .await
    }

    /// The total of a list, admitted and bounded as the list is (it costs as much).
    pub(super) async fn count_within(
        &self,
        model: &ModelDef,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<u64, StoreError> {
        let keys = &self.inner.keys;
        self.gated(query.has_pattern(), from, async |c| {
            shape::count(c, keys, model, query, scope).await
        })
        .await
    }

    /// `Store::get_many`: a point read by primary key, ungated, as a get is.
    pub(super) async fn get_many_from(
        &self,
        model: &ModelDef,
        ids: &[RecordId],
        from: ReadFrom,
    ) -> Result<Vec<Record>, StoreError> {
        let keys = &self.inner.keys;
        self.call(from, async |c| shape::get_many(c, keys, model, ids).await)
            .await
    }

    /// Runs `op` past the gate of the pool `from` picks (`pattern`: a `like` list), on a
    /// client cancelled if abandoned, within the query budget.
    async fn gated<T>(
        &self,
        pattern: bool,
        from: ReadFrom,
        op: impl AsyncFnOnce(&Pg<'_, Object>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let budget = self.inner.query_timeout;
        let run = async {
            // Each pool has a gate of its own, sized to its connections.
            let (gate, pool, tls) = match (&self.inner.replica, from) {
                (Some((replica, tls)), ReadFrom::Replica) => {
                    (&self.inner.replica_lists, replica, tls)
                }
                _ => (&self.inner.lists, &self.inner.pool, &self.inner.tls),
            };
            let _pass = gate.enter(pattern).await?;
            let client = pool.get().await.map_err(errors::pool)?;
            let guard = Cancelling(Some(client), tls.clone());
            let out = op(&Pg(guard.client()?)).await;
            guard.finish();
            out
        };
        tokio::time::timeout_at(Instant::now() + budget, run)
            .await
            .map_err(|_| StoreError::Timeout(budget))?
    }
}

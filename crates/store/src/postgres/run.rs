//! How the store's calls run: bounded in time, on a pooled client or in a transaction
//! retried when it loses a race.

use super::exec::Pg;
use super::{PgStore, WRITE_ATTEMPTS, errors};
use crate::{ReadFrom, StoreError};
use deadpool_postgres::{Object, Transaction};
use std::time::Duration;

impl PgStore {
    /// Bounds a store call: a database that stops answering (a frozen server, a partition)
    /// must not hang requests, whose answer is then a prompt 503.
    pub(super) async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.op_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time".to_owned(),
            )),
        }
    }

    /// Runs `op` on a pooled client (the replica's when there is one and `from` allows
    /// it), bounded in time. Each statement commits on its own.
    pub(super) async fn call<T>(
        &self,
        from: ReadFrom,
        op: impl AsyncFnOnce(&Pg<'_, Object>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.bounded(async {
            let client = match (&self.inner.replica, from) {
                (Some((replica, _)), ReadFrom::Replica) => replica.get().await,
                _ => self.inner.pool.get().await,
            }
            .map_err(errors::pool)?;
            op(&Pg(&client)).await
        })
        .await
    }

    /// Runs `op` in a transaction, committing on `Ok`, bounded in time; the whole
    /// transaction is retried (a few times, after a growing pause) when it loses a race.
    /// (`op` is cloned per attempt: an `AsyncFnMut` here would make the futures of callers
    /// not provably `Send`.)
    pub(super) async fn in_tx<T>(
        &self,
        op: impl AsyncFnOnce(&Pg<'_, Transaction<'_>>) -> Result<T, StoreError> + Clone,
    ) -> Result<T, StoreError> {
        self.bounded(async {
            let mut attempt = 1;
            loop {
                let mut client = self.inner.pool.get().await.map_err(errors::pool)?;
                let tx = client.transaction().await.map_err(errors::map)?;
                let outcome = match op.clone()(&Pg(&tx)).await {
                    Ok(v) => tx.commit().await.map_err(errors::map).map(|()| v),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                };
                match outcome {
                    Err(StoreError::Contention(why)) if attempt < WRITE_ATTEMPTS => {
                        tracing::debug!(attempt, why = %why, "retrying a write that lost a race");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                    }
                    other => break other,
                }
            }
        })
        .await
    }
}

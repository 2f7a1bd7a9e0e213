//! Claims on a PostgreSQL database, held on a dedicated connection for the process's life:
//! every server instance holds a shared session-level advisory lock on [`CLAIM_LOCK`], and
//! a migration or import (`Claim::Maintain`) needs it exclusively, so it refuses while any
//! instance runs, and an instance waits (boundedly) while a migration runs.
//!
//! A session's own shared lock does not conflict with its exclusive request, so a server
//! starting alone can take the exclusive lock for a destructive start migration and drop
//! it after; beside other instances that request fails, and the destructive steps are
//! refused (see `PgStore::migrate`).

use super::errors::map;
use crate::{Claim, StoreError};
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// The advisory lock key of claims ("plinthsv" in ASCII); not the migration transaction's
/// key, which a pooled connection takes while this one is held.
const CLAIM_LOCK: i64 = 0x706c_696e_7468_7376;

/// A claim: the connection holding the lock, and the task driving it.
pub(super) struct Held {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Ending the session releases its advisory locks.
        self.task.abort();
    }
}

impl Held {
    /// Connects and takes the lock for `claim`; a server waits up to `wait` for a running
    /// migration to end.
    pub(super) async fn take(url: &str, claim: Claim, wait: Duration) -> Result<Self, StoreError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(map)?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        let held = Self { client, task };
        match claim {
            Claim::Serve => {
                let lock = held
                    .client
                    .execute("SELECT pg_advisory_lock_shared($1)", &[&CLAIM_LOCK]);
                match tokio::time::timeout(wait, lock).await {
                    Ok(done) => {
                        done.map_err(map)?;
                    }
                    Err(_) => {
                        return Err(StoreError::InUse(
                            "a migration (plinth migrate or import) is running on this database; \
                             start the server after it ends"
                                .to_owned(),
                        ));
                    }
                }
            }
            Claim::Maintain => {
                if !held.try_exclusive().await? {
                    return Err(StoreError::InUse(
                        "a plinth server (or another plinth migrate or import) is using this \
                         database; stop every instance first, then run this again"
                            .to_owned(),
                    ));
                }
            }
        }
        Ok(held)
    }

    /// Takes the lock exclusively unless another session holds it in any mode.
    pub(super) async fn try_exclusive(&self) -> Result<bool, StoreError> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(map)?;
        Ok(row.get(0))
    }

    /// Gives up one exclusive hold taken by [`Self::try_exclusive`].
    pub(super) async fn release_exclusive(&self) -> Result<(), StoreError> {
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(map)
            .map(|_| ())
    }
}

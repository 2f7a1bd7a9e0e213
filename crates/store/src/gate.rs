//! Fair use of an engine's read connections by record lists.
//!
//! A list's cost depends on what the client asked for (a `like` pattern is matched against
//! every candidate value), a get by id's does not. Without a bound, a few slow lists hold
//! every connection and a get waits behind them for as long as they run. So lists pass a
//! [`ListGate`] before taking a connection: at most all connections but one may run lists
//! (a point read always finds one), and at most half of them pattern lists (lists without
//! a pattern keep running beside them). Both semaphores are fair (first come, first
//! served), and a caller waits only within its time budget.

use crate::StoreError;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits record lists to an engine's connections (see the module documentation).
#[derive(Debug)]
pub(crate) struct ListGate {
    /// Lists running at once: all connections but one.
    lists: Arc<Semaphore>,
    /// Lists with a `like` filter running at once: half the connections.
    patterns: Arc<Semaphore>,
}

/// Leave to run one list; dropping it lets the next one in.
#[derive(Debug)]
pub(crate) struct ListPass {
    _list: OwnedSemaphorePermit,
    _pattern: Option<OwnedSemaphorePermit>,
}

impl ListGate {
    /// A gate for an engine with `connections` read connections (at least one list and one
    /// pattern list may always run, so with a single connection nothing is reserved).
    pub(crate) fn new(connections: usize) -> Self {
        Self {
            lists: Arc::new(Semaphore::new(connections.saturating_sub(1).max(1))),
            patterns: Arc::new(Semaphore::new((connections / 2).max(1))),
        }
    }

    /// Waits for leave to run a list (with a pattern when `pattern`). A pattern list takes
    /// its pattern permit first, so pattern lists queueing hold no list permit.
    pub(crate) async fn enter(&self, pattern: bool) -> Result<ListPass, StoreError> {
        let closed = |_| StoreError::Unavailable("the database is closed".to_owned());
        let pattern = if pattern {
            let permit = Arc::clone(&self.patterns).acquire_owned().await;
            Some(permit.map_err(closed)?)
        } else {
            None
        };
        let list = Arc::clone(&self.lists)
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok(ListPass {
            _list: list,
            _pattern: pattern,
        })
    }

    /// Refuses lists from now on (the store is closing).
    pub(crate) fn close(&self) {
        self.lists.close();
        self.patterns.close();
    }
}

#[cfg(test)]
mod tests {
    use super::ListGate;

    #[tokio::test]
    async fn lists_leave_one_connection_and_patterns_half() {
        let gate = ListGate::new(4);
        let a = gate.enter(true).await.expect("first pattern list");
        let _b = gate.enter(true).await.expect("second pattern list");
        assert_eq!(gate.patterns.available_permits(), 0);
        // A plain list still runs beside two pattern lists; a third would wait.
        let _c = gate.enter(false).await.expect("a plain list");
        assert_eq!(gate.lists.available_permits(), 0);
        drop(a);
        assert_eq!(gate.lists.available_permits(), 1);
        assert_eq!(gate.patterns.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_single_connection_still_admits_a_list() {
        let gate = ListGate::new(1);
        let _pass = gate.enter(true).await.expect("one list");
        gate.close();
        assert!(gate.enter(false).await.is_err(), "closed gate admits");
    }
}

//! The sweeper: a background task of a running server that deletes what can no longer be
//! used, so Plinth's own tables do not grow forever: refresh tokens of dead families (every
//! token spent, revoked or expired, or the session past its absolute lifetime) and
//! idempotency keys older than the idempotency window.
//!
//! Every `interval` it deletes in batches of [`BATCH`] rows, one short statement each, with
//! a pause between batches, so a sweep never holds the SQLite writer for long. Each instance
//! sweeps; on PostgreSQL they take different rows (`SKIP LOCKED`), so sweeping at once is
//! safe. A failed batch is logged and the sweep tried again at the next interval.

use crate::state::AppState;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Rows deleted per statement.
pub(crate) const BATCH: u32 = 1000;
/// The pause between two batches of one sweep.
const PAUSE: Duration = Duration::from_millis(50);

/// Starts sweeping every `interval` (the first sweep one interval after the start);
/// `None` when `interval` is zero (sweeping off).
pub(crate) fn spawn(
    state: AppState,
    interval: Duration,
    idempotency_window: Duration,
) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            sweep_once(&state, idempotency_window).await;
        }
    }))
}

/// One sweep of both tables.
async fn sweep_once(state: &AppState, idempotency_window: Duration) {
    let store = state.store();
    let auth = state.auth();
    let refresh_tokens = batches("refresh tokens", || {
        store.sweep_refresh(auth.session_cutoff(), BATCH)
    })
    .await;
    let idempotency_keys = batches("idempotency keys", || {
        store.sweep_idempotency(auth.ago(idempotency_window), BATCH)
    })
    .await;
    if refresh_tokens + idempotency_keys > 0 {
        tracing::info!(
            refresh_tokens,
            idempotency_keys,
            "swept dead credentials and keys"
        );
    }
}

/// Runs `batch` until it deletes fewer than [`BATCH`] rows or fails; the rows deleted.
async fn batches<F, Fut>(what: &str, mut batch: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, plinth_store::StoreError>>,
{
    let mut total = 0;
    loop {
        match batch().await {
            Ok(n) => {
                total += n;
                if n < u64::from(BATCH) {
                    return total;
                }
                tokio::time::sleep(PAUSE).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, what, "sweeping failed; trying again at the next interval");
                return total;
            }
        }
    }
}

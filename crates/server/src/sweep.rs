//! The sweeper: a background task of a running server that deletes what can no longer be
//! used, so Plinth's own tables do not grow forever: refresh tokens of dead families (every
//! token spent, revoked or expired, or the session past its absolute lifetime), expired
//! mailed account tokens (verification, reset, email change),
//! idempotency keys older than the idempotency window and, when a retention is set, audit
//! entries older than it (each batch behind a sealed checkpoint, under the chain's lock),
//! changes older than the change feed's retention (raising the log's window), and file
//! contents no record holds any more (past the orphan grace: `files::Files::sweep`).
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

/// How long what is swept is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    /// Idempotency keys.
    pub(crate) idempotency: Duration,
    /// Audit entries; `None`: forever.
    pub(crate) audit: Option<Duration>,
    /// The change feed's log (`ServerConfig::change_retention`).
    pub(crate) changes: Duration,
}

/// Starts sweeping every `interval` (the first sweep one interval after the start);
/// `None` when `interval` is zero (sweeping off).
pub(crate) fn spawn(state: AppState, interval: Duration, keep: Keep) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            sweep_once(&state, keep).await;
        }
    }))
}

/// One sweep of every table.
async fn sweep_once(state: &AppState, keep: Keep) {
    let store = state.store();
    let auth = state.auth();
    let refresh_tokens = batches("refresh tokens", || {
        store.sweep_refresh(auth.session_cutoff(), BATCH)
    })
    .await;
    let account_tokens = batches("account tokens", || {
        store.sweep_account_tokens(auth.now(), BATCH)
    })
    .await;
    let idempotency_keys = batches("idempotency keys", || {
        store.sweep_idempotency(auth.ago(keep.idempotency), BATCH)
    })
    .await;
    let audit_entries = match keep.audit {
        Some(retention) => {
            batches("audit entries", || {
                store.audit_prune(auth.ago(retention), BATCH)
            })
            .await
        }
        None => 0,
    };
    let changes = batches("changes", || {
        store.prune_changes(auth.ago(keep.changes), BATCH)
    })
    .await;
    let files = match state.files() {
        Some(files) => files.sweep(store.as_ref()).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, what = "files", "sweeping failed; trying again at the next interval");
            0
        }),
        None => 0,
    };
    if refresh_tokens + account_tokens + idempotency_keys + audit_entries + changes + files > 0 {
        tracing::info!(
            refresh_tokens,
            account_tokens,
            idempotency_keys,
            audit_entries,
            changes,
            files,
            "swept dead credentials, keys, old audit entries, old changes and unused files"
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

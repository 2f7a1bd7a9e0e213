//! Sweeping: deleting what can no longer be used, in bounded batches, so Plinth's own tables
//! do not grow forever. Each call deletes at most `limit` rows in one statement (a short
//! write: on SQLite the writer is free again at once) and says how many it deleted; the
//! caller loops, pausing between batches. On PostgreSQL the rows are picked with
//! `SKIP LOCKED`, so instances sweeping at once take different rows and never wait on, or
//! deadlock with, each other.

use super::{Dialect, Exec, Query};
use crate::StoreError;
use plinth_core::Timestamp;

/// Deletes up to `limit` refresh tokens whose whole family is dead: no token of the family
/// is still usable (unspent, unrevoked and unexpired at `now`), or the family started at or
/// before `session_cutoff` (past the session's absolute lifetime). A live family keeps
/// every row, its spent tokens included, so presenting one still counts as reuse.
///
/// The candidate families come from indexes first (`expires_at`, the revoked rows,
/// `family_started_at`), never from a scan of the table: a family is dead only when each of
/// its rows is expired, revoked or too old, or spent, and rotation spends a token in the
/// transaction that adds its successor, so a dead family has an expired, revoked or too old
/// row (or has one once its tokens expire). Each candidate is then checked for a usable
/// token through the `family` index.
pub(crate) async fn sweep_refresh<E: Exec>(
    e: &E,
    now: Timestamp,
    session_cutoff: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    e.execute(&refresh_sweep(E::DIALECT, now, session_cutoff, limit))
        .await
}

/// The statement of [`sweep_refresh`].
pub(crate) fn refresh_sweep(
    d: Dialect,
    now: Timestamp,
    session_cutoff: Timestamp,
    limit: u32,
) -> Query<'static> {
    let mut q = Query::new(d);
    q.push(
        "DELETE FROM _plinth_refresh_tokens WHERE token_hash IN (\
         SELECT t.token_hash FROM _plinth_refresh_tokens t WHERE t.family IN (\
         SELECT c.family FROM _plinth_refresh_tokens c WHERE c.expires_at <= ",
    )
    .bind(now)
    .push(
        " UNION ALL SELECT c.family FROM _plinth_refresh_tokens c WHERE c.revoked_at IS NOT NULL \
         UNION ALL SELECT c.family FROM _plinth_refresh_tokens c WHERE c.family_started_at <= ",
    )
    .bind(session_cutoff)
    .push(
        ") AND NOT EXISTS (\
         SELECT 1 FROM _plinth_refresh_tokens l WHERE l.family = t.family \
         AND l.spent_at IS NULL AND l.revoked_at IS NULL AND l.expires_at > ",
    )
    .bind(now)
    .push(" AND COALESCE(l.family_started_at, l.created_at) > ")
    .bind(session_cutoff)
    .push(")")
    .limit(i64::from(limit))
    .push(d.skip_locked())
    .push(")");
    q
}

/// Deletes up to `limit` idempotency keys created before `before` (older than the
/// idempotency window), single creates' first, then batches': a retry with such a key
/// writes anew.
pub(crate) async fn sweep_idempotency<E: Exec>(
    e: &E,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let creates = e
        .execute(&key_sweep(E::DIALECT, "_plinth_idempotency", before, limit))
        .await?;
    let left = u64::from(limit).saturating_sub(creates);
    if left == 0 {
        return Ok(creates);
    }
    let left = u32::try_from(left).unwrap_or(limit);
    let batches = e
        .execute(&key_sweep(E::DIALECT, "_plinth_batch_keys", before, left))
        .await?;
    Ok(creates + batches)
}

/// Deletes up to `limit` rows of the key table `table` created before `before`.
fn key_sweep(d: Dialect, table: &str, before: Timestamp, limit: u32) -> Query<'static> {
    let mut q = Query::new(d);
    q.push("DELETE FROM ")
        .push(table)
        .push(" WHERE (model, scope, key) IN (SELECT model, scope, key FROM ")
        .push(table)
        .push(" WHERE created_at < ")
        .bind(before)
        .limit(i64::from(limit))
        .push(d.skip_locked())
        .push(")");
    q
}

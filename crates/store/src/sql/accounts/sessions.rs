//! Sessions (refresh-token families) as their user sees them: listed from their newest
//! tokens, ended one by one or all at once. Each ending revokes the family's tokens, tells
//! other instances (`announce`) and appends its audit event, in one transaction.

use super::{FAMILY_STARTED, announce, query};
use crate::audit::Event;
use crate::sessions::SESSIONS_LISTED_MAX;
use crate::sql::audit::append_event;
use crate::sql::records::By;
use crate::sql::{Exec, SqlRow};
use crate::{Session, StoreError};
use plinth_core::schema::ValueKind;
use plinth_core::{Timestamp, Value};
use serde_json::json;
use uuid::Uuid;

/// Nullable text.
fn opt_text(r: &impl SqlRow, i: usize) -> Result<Option<String>, StoreError> {
    match r.value(i, ValueKind::Text)? {
        Value::Text(s) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// The live sessions of a user, newest first. A live family has exactly one usable token
/// (rotation spends the old one in the transaction that adds the new), its newest: that row
/// says when, from where and with what the session was last used.
pub(crate) async fn list_sessions<E: Exec>(
    e: &E,
    now: Timestamp,
    user_id: Uuid,
    session_cutoff: Timestamp,
) -> Result<Vec<Session>, StoreError> {
    let mut q = query::<E>("SELECT family, ");
    q.push(FAMILY_STARTED)
        .push(", created_at, client_addr, user_agent FROM _plinth_refresh_tokens WHERE user_id = ")
        .bind(user_id)
        .push(" AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > ")
        .bind(now)
        .push(" AND ")
        .push(FAMILY_STARTED)
        .push(" > ")
        .bind(session_cutoff)
        .push(" ORDER BY ")
        .push(FAMILY_STARTED)
        .push(" DESC, family DESC, created_at DESC")
        .limit(i64::from(SESSIONS_LISTED_MAX));
    let rows = e
        .rows(&q, |r| {
            Ok(Session {
                id: r.uuid(0)?,
                created_at: r.time(1)?,
                last_used_at: r.time(2)?,
                client_addr: opt_text(r, 3)?,
                user_agent: opt_text(r, 4)?,
            })
        })
        .await?;
    // Two usable tokens in one family cannot be stored; should one be, the family is still
    // one session (its newest token, first in the order above).
    let mut sessions: Vec<Session> = Vec::with_capacity(rows.len());
    for s in rows {
        if !sessions.iter().any(|k| k.id == s.id) {
            sessions.push(s);
        }
    }
    Ok(sessions)
}

/// Locks the unrevoked tokens of the sessions about to be ended (`column` = `id`, and with
/// `user_id` and `except` to narrow it), in order, in a statement of its own, and returns
/// their families (each once). Called before the `UPDATE` that revokes them: a refresh of
/// one of these sessions committing meanwhile is waited for, and that `UPDATE`, a new
/// statement, sees (and revokes) the token the refresh added, which a statement already
/// running would not on PostgreSQL.
pub(super) async fn lock_unrevoked<E: Exec>(
    e: &E,
    column: &str,
    id: Uuid,
    user_id: Option<Uuid>,
    except: Option<Uuid>,
) -> Result<Vec<Uuid>, StoreError> {
    // No DISTINCT with FOR UPDATE on PostgreSQL: families are made unique below.
    let mut q = query::<E>("SELECT family FROM _plinth_refresh_tokens WHERE ");
    q.push(column).push(" = ").bind(id);
    if let Some(user) = user_id {
        q.push(" AND user_id = ").bind(user);
    }
    q.push(" AND revoked_at IS NULL");
    if let Some(keep) = except {
        q.push(" AND family <> ").bind(keep);
    }
    q.push(" ORDER BY token_hash").push(E::DIALECT.for_update());
    let mut families = e.rows(&q, |r| r.uuid(0)).await?;
    families.sort_unstable();
    families.dedup();
    Ok(families)
}

/// Revokes the unrevoked tokens of `family` if it is `user_id`'s: whether any was.
pub(crate) async fn revoke_session<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    family: Uuid,
) -> Result<bool, StoreError> {
    if lock_unrevoked(e, "family", family, Some(user_id), None)
        .await?
        .is_empty()
    {
        return Ok(false);
    }
    let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET revoked_at = ");
    q.bind(by.now)
        .push(" WHERE family = ")
        .bind(family)
        .push(" AND user_id = ")
        .bind(user_id)
        .push(" AND revoked_at IS NULL");
    e.execute(&q).await?;
    // The session's access tokens (and stream tickets) end on every instance.
    announce(e).await?;
    let changes = json!({ "session": family });
    append_event(e, by, Event::SessionRevoked, Some(user_id), &changes).await?;
    Ok(true)
}

/// Revokes every session of `user_id` but `except`: how many sessions were still on.
pub(crate) async fn revoke_sessions<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    except: Option<Uuid>,
) -> Result<u64, StoreError> {
    let families = lock_unrevoked(e, "user_id", user_id, None, except).await?;
    if families.is_empty() {
        return Ok(0);
    }
    let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET revoked_at = ");
    q.bind(by.now)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND revoked_at IS NULL");
    if let Some(keep) = except {
        q.push(" AND family <> ").bind(keep);
    }
    e.execute(&q).await?;
    announce(e).await?;
    let count = families.len() as u64;
    let changes = match except {
        Some(keep) => json!({ "count": count, "except": keep }),
        None => json!({ "count": count }),
    };
    append_event(e, by, Event::SessionsRevoked, Some(user_id), &changes).await?;
    Ok(count)
}

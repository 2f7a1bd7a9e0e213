//! API keys: made (the owner's role caps theirs), found by digest, listed, revoked and
//! touched. Making and revoking one appends its audit event in the same transaction.

use super::{announce, get_user, query, role_at};
use crate::audit::Event;
use crate::sql::audit::append_event;
use crate::sql::records::By;
use crate::sql::{Exec, SqlRow};
use crate::{ApiKey, Keys, NewApiKey, StoreError, User};
use plinth_core::Timestamp;
use plinth_core::auth::role_name;
use serde_json::json;
use uuid::Uuid;

const KEY_COLS: &str =
    "id, user_id, name, prefix, role, expires_at, last_used_at, revoked_at, created_at";

fn key_row(row: &impl SqlRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.uuid(0)?,
        user_id: row.uuid(1)?,
        name: row.text(2)?,
        prefix: row.text(3)?,
        role: role_at(row, 4)?,
        expires_at: row.opt_time(5)?,
        last_used_at: row.opt_time(6)?,
        revoked_at: row.opt_time(7)?,
        created_at: row.time(8)?,
    })
}

pub(crate) async fn create_api_key<E: Exec>(
    e: &E,
    by: By<'_>,
    key: NewApiKey,
) -> Result<ApiKey, StoreError> {
    let now = by.now;
    let id = Uuid::now_v7();
    let mut q = query::<E>("INSERT INTO _plinth_api_keys (");
    q.push(KEY_COLS)
        .push(", key_hash) VALUES (")
        .bind_all([
            id.into(),
            key.user_id.into(),
            (&key.name).into(),
            (&key.prefix).into(),
            role_name(key.role).into(),
            key.expires_at.into(),
        ])
        .push(", NULL, NULL, ")
        .bind_all([now.into(), (&key.key_hash).into()])
        .push(")");
    e.execute(&q).await?;
    drop(q);
    let changes = json!({
        "user_id": { "to": key.user_id },
        "name": { "to": key.name },
        "prefix": { "to": key.prefix },
        "role": { "to": role_name(key.role) },
        "expires_at": { "to": key.expires_at.map(|t| t.to_string()) },
    });
    append_event(e, by, Event::ApiKeyCreate, Some(id), &changes).await?;
    Ok(ApiKey {
        id,
        user_id: key.user_id,
        name: key.name,
        prefix: key.prefix,
        role: key.role,
        expires_at: key.expires_at,
        last_used_at: None,
        revoked_at: None,
        created_at: now,
    })
}

pub(crate) async fn find_api_key<E: Exec>(
    e: &E,
    keys: &Keys,
    key_hash: &str,
) -> Result<Option<(ApiKey, User)>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(KEY_COLS)
        .push(" FROM _plinth_api_keys WHERE key_hash = ")
        .bind(key_hash)
        .push(" AND revoked_at IS NULL")
        .cached();
    let Some(key) = e.row(&q, |r| key_row(r)).await? else {
        return Ok(None);
    };
    Ok(get_user(e, keys, key.user_id)
        .await?
        .map(|user| (key, user)))
}

pub(crate) async fn list_api_keys<E: Exec>(
    e: &E,
    user_id: Option<Uuid>,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(KEY_COLS).push(" FROM _plinth_api_keys");
    if let Some(user_id) = user_id {
        q.push(" WHERE user_id = ").bind(user_id);
    }
    q.push(" ORDER BY id");
    e.rows(&q, |r| key_row(r)).await
}

pub(crate) async fn revoke_api_key<E: Exec>(
    e: &E,
    by: By<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<ApiKey, StoreError> {
    let now = by.now;
    let mut q = query::<E>("SELECT ");
    q.push(KEY_COLS)
        .push(" FROM _plinth_api_keys WHERE id = ")
        .bind(id)
        .push(E::DIALECT.for_update());
    let key = e
        .row(&q, |r| key_row(r))
        .await?
        .filter(|k| owner.is_none_or(|o| o == k.user_id))
        .ok_or(StoreError::NotFound)?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    announce(e).await?;
    let mut q = query::<E>("UPDATE _plinth_api_keys SET revoked_at = ");
    q.bind(now).push(" WHERE id = ").bind(id);
    e.execute(&q).await?;
    let changes = json!({ "status": { "from": "active", "to": "revoked" } });
    append_event(e, by, Event::ApiKeyRevoke, Some(id), &changes).await?;
    Ok(ApiKey {
        revoked_at: Some(now),
        ..key
    })
}

pub(crate) async fn touch_api_key<E: Exec>(
    e: &E,
    id: Uuid,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut q = query::<E>("UPDATE _plinth_api_keys SET last_used_at = ");
    q.bind(now).push(" WHERE id = ").bind(id);
    e.execute(&q).await?;
    Ok(())
}

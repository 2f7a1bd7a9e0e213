//! Users, refresh tokens and API keys in PostgreSQL.

use super::errors::map;
use super::values::{Param, from_ts, refs, ts};
use crate::shared::email_conflict;
use crate::{ApiKey, NewApiKey, NewUser, Refresh, StoreError, User, UserChanges};
use deadpool_postgres::GenericClient;
use plinth_core::auth::{Email, parse_role, role_name};
use plinth_core::{Role, Timestamp};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

const USER_COLS: &str = "id, email, role, password_hash, created_at, updated_at, version";
const KEY_COLS: &str =
    "id, user_id, name, prefix, role, expires_at, last_used_at, revoked_at, created_at";

fn bad(what: &str) -> StoreError {
    StoreError::internal(format!("unreadable {what} in an account table"))
}

fn time_at(row: &Row, i: usize) -> Result<Timestamp, StoreError> {
    from_ts(row.try_get(i).map_err(map)?).ok_or_else(|| bad("timestamp"))
}

fn opt_time_at(row: &Row, i: usize) -> Result<Option<Timestamp>, StoreError> {
    row.try_get::<_, Option<OffsetDateTime>>(i)
        .map_err(map)?
        .map(|t| from_ts(t).ok_or_else(|| bad("timestamp")))
        .transpose()
}

fn role_at(row: &Row, i: usize) -> Result<Role, StoreError> {
    parse_role(&row.try_get::<_, String>(i).map_err(map)?).map_err(|_| bad("role"))
}

fn user_row(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get(0).map_err(map)?,
        email: row.try_get(1).map_err(map)?,
        role: role_at(row, 2)?,
        password_hash: row.try_get(3).map_err(map)?,
        created_at: time_at(row, 4)?,
        updated_at: time_at(row, 5)?,
        version: row.try_get(6).map_err(map)?,
    })
}

fn key_row(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get(0).map_err(map)?,
        user_id: row.try_get(1).map_err(map)?,
        name: row.try_get(2).map_err(map)?,
        prefix: row.try_get(3).map_err(map)?,
        role: role_at(row, 4)?,
        expires_at: opt_time_at(row, 5)?,
        last_used_at: opt_time_at(row, 6)?,
        revoked_at: opt_time_at(row, 7)?,
        created_at: time_at(row, 8)?,
    })
}

pub(super) async fn create_user<C: GenericClient>(
    c: &C,
    user: NewUser,
    now: Timestamp,
) -> Result<User, StoreError> {
    let id = Uuid::now_v7();
    c.execute(
        "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
        &[&id, &user.email.as_str(), &user.email.normalized(), &role_name(user.role), &user.password_hash, &ts(now)],
    )
    .await
    .map_err(|e| email_conflict(map(e)))?;
    Ok(User {
        id,
        email: user.email.as_str().to_owned(),
        role: user.role,
        password_hash: user.password_hash,
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

pub(super) async fn import_user<C: GenericClient>(c: &C, user: &User) -> Result<(), StoreError> {
    let email = Email::parse(&user.email).map_err(StoreError::internal)?;
    c.execute(
        "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &user.id,
            &user.email,
            &email.normalized(),
            &role_name(user.role),
            &user.password_hash,
            &ts(user.created_at),
            &ts(user.updated_at),
            &user.version,
        ],
    )
    .await
    .map_err(|e| email_conflict(map(e)))?;
    Ok(())
}

pub(super) async fn get_user<C: GenericClient>(
    c: &C,
    id: Uuid,
) -> Result<Option<User>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {USER_COLS} FROM _plinth_users WHERE id = $1"
        ))
        .await
        .map_err(map)?;
    c.query_opt(&stmt, &[&id])
        .await
        .map_err(map)?
        .map(|r| user_row(&r))
        .transpose()
}

pub(super) async fn find_user_by_email<C: GenericClient>(
    c: &C,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {USER_COLS} FROM _plinth_users WHERE email_norm = $1"
        ))
        .await
        .map_err(map)?;
    c.query_opt(&stmt, &[&email.normalized()])
        .await
        .map_err(map)?
        .map(|r| user_row(&r))
        .transpose()
}

pub(super) async fn list_users<C: GenericClient>(
    c: &C,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<User>, StoreError> {
    let rows = c
        .query(
            &format!("SELECT {USER_COLS} FROM _plinth_users WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"),
            &[&after, &i64::from(limit)],
        )
        .await
        .map_err(map)?;
    rows.iter().map(user_row).collect()
}

/// Tells every instance (on commit) to drop its cached credentials.
async fn announce<C: GenericClient>(c: &C) -> Result<(), StoreError> {
    c.execute(
        "SELECT pg_notify($1, 'credentials')",
        &[&super::connect::INVALIDATE_CHANNEL],
    )
    .await
    .map_err(map)?;
    Ok(())
}

async fn keep_an_admin<C: GenericClient>(c: &C, id: Uuid) -> Result<(), StoreError> {
    // Lock the admins' rows so two transactions removing each other serialise.
    let admins = c
        .query(
            "SELECT id FROM _plinth_users WHERE role = 'admin' FOR UPDATE",
            &[],
        )
        .await
        .map_err(map)?;
    let is_admin = admins.iter().any(|r| r.get::<_, Uuid>(0) == id);
    if is_admin && admins.len() <= 1 {
        return Err(StoreError::Conflict {
            field: None,
            reason: "the last admin cannot be removed or demoted".to_owned(),
        });
    }
    Ok(())
}

pub(super) async fn update_user<C: GenericClient>(
    c: &C,
    id: Uuid,
    changes: &UserChanges,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<User, StoreError> {
    if changes.role.is_some_and(|r| r != Role::Admin) {
        keep_an_admin(c, id).await?;
    }
    announce(c).await?;
    let mut sets = vec![
        "updated_at = $1".to_owned(),
        "version = version + 1".to_owned(),
    ];
    let mut params: Vec<Param> = vec![Box::new(ts(now))];
    let mut push = |col: &str, p: Param, params: &mut Vec<Param>| {
        params.push(p);
        sets.push(format!("{col} = ${}", params.len()));
    };
    if let Some(email) = &changes.email {
        push("email", Box::new(email.as_str().to_owned()), &mut params);
        push(
            "email_norm",
            Box::new(email.normalized().to_owned()),
            &mut params,
        );
    }
    if let Some(hash) = &changes.password_hash {
        push("password_hash", Box::new(hash.clone()), &mut params);
    }
    if let Some(role) = changes.role {
        push("role", Box::new(role_name(role).to_owned()), &mut params);
    }
    params.push(Box::new(id));
    let mut sql = format!(
        "UPDATE _plinth_users SET {} WHERE id = ${}",
        sets.join(", "),
        params.len()
    );
    if let Some(v) = expected {
        params.push(Box::new(v));
        sql.push_str(&format!(" AND version = ${}", params.len()));
    }
    sql.push_str(&format!(" RETURNING {USER_COLS}"));
    let row = c
        .query_opt(&sql, &refs(&params))
        .await
        .map_err(|e| email_conflict(map(e)))?;
    match (row, expected) {
        (Some(row), _) => {
            if changes.password_hash.is_some() || changes.role.is_some() {
                c.execute(
                    "UPDATE _plinth_refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                    &[&ts(now), &id],
                )
                .await
                .map_err(map)?;
            }
            user_row(&row)
        }
        (None, Some(expected)) => match get_user(c, id).await? {
            Some(u) => Err(StoreError::Stale {
                expected,
                current: u.version,
            }),
            None => Err(StoreError::NotFound),
        },
        (None, None) => Err(StoreError::NotFound),
    }
}

pub(super) async fn delete_user<C: GenericClient>(c: &C, id: Uuid) -> Result<(), StoreError> {
    keep_an_admin(c, id).await?;
    announce(c).await?;
    if c.execute("DELETE FROM _plinth_users WHERE id = $1", &[&id])
        .await
        .map_err(map)?
        == 0
    {
        return Err(StoreError::NotFound);
    }
    c.execute(
        "DELETE FROM _plinth_refresh_tokens WHERE user_id = $1",
        &[&id],
    )
    .await
    .map_err(map)?;
    c.execute("DELETE FROM _plinth_api_keys WHERE user_id = $1", &[&id])
        .await
        .map_err(map)?;
    Ok(())
}

pub(super) async fn count_admins<C: GenericClient>(c: &C) -> Result<u64, StoreError> {
    let row = c
        .query_one(
            "SELECT count(*) FROM _plinth_users WHERE role = 'admin'",
            &[],
        )
        .await
        .map_err(map)?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

pub(super) async fn insert_refresh<C: GenericClient>(
    c: &C,
    user_id: Uuid,
    family: Uuid,
    token_hash: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO _plinth_refresh_tokens (token_hash, family, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&token_hash, &family, &user_id, &ts(expires_at), &ts(now)],
    )
    .await
    .map_err(map)?;
    Ok(())
}

pub(super) async fn rotate_refresh<C: GenericClient>(
    c: &C,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: Timestamp,
    now: Timestamp,
) -> Result<Refresh, StoreError> {
    // FOR UPDATE: two instances presenting the same token at once see it spent in turn.
    let row = c
        .query_opt(
            "SELECT family, user_id, expires_at, spent_at, revoked_at FROM _plinth_refresh_tokens
             WHERE token_hash = $1 FOR UPDATE",
            &[&old_hash],
        )
        .await
        .map_err(map)?;
    let Some(row) = row else {
        return Ok(Refresh::Invalid);
    };
    let (family, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
    let expires_at: OffsetDateTime = row.get(2);
    let spent: Option<OffsetDateTime> = row.get(3);
    let revoked: Option<OffsetDateTime> = row.get(4);
    // A token revoked but never spent (logout, or the family revoked earlier) is just
    // invalid; only presenting a spent token again is reuse, worth an alarm.
    if spent.is_none() && revoked.is_some() {
        return Ok(Refresh::Invalid);
    }
    if spent.is_some() {
        c.execute(
            "UPDATE _plinth_refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
            &[&ts(now), &family],
        )
        .await
        .map_err(map)?;
        return Ok(Refresh::Reused { user_id, family });
    }
    if expires_at <= ts(now) {
        return Ok(Refresh::Invalid);
    }
    c.execute(
        "UPDATE _plinth_refresh_tokens SET spent_at = $1 WHERE token_hash = $2",
        &[&ts(now), &old_hash],
    )
    .await
    .map_err(map)?;
    insert_refresh(c, user_id, family, new_hash, new_expires_at, now).await?;
    Ok(Refresh::Rotated { user_id })
}

pub(super) async fn revoke_refresh_family<C: GenericClient>(
    c: &C,
    token_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "UPDATE _plinth_refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family =
             (SELECT family FROM _plinth_refresh_tokens WHERE token_hash = $2)",
            &[&ts(now), &token_hash],
        )
        .await
        .map_err(map)?;
    if n > 0 {
        return Ok(true);
    }
    Ok(c.query_opt(
        "SELECT 1 FROM _plinth_refresh_tokens WHERE token_hash = $1",
        &[&token_hash],
    )
    .await
    .map_err(map)?
    .is_some())
}

pub(super) async fn create_api_key<C: GenericClient>(
    c: &C,
    key: NewApiKey,
    now: Timestamp,
) -> Result<ApiKey, StoreError> {
    let id = Uuid::now_v7();
    c.execute(
        &format!("INSERT INTO _plinth_api_keys ({KEY_COLS}, key_hash) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8)"),
        &[&id, &key.user_id, &key.name, &key.prefix, &role_name(key.role), &key.expires_at.map(ts), &ts(now), &key.key_hash],
    )
    .await
    .map_err(map)?;
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

pub(super) async fn find_api_key<C: GenericClient>(
    c: &C,
    key_hash: &str,
) -> Result<Option<(ApiKey, User)>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM _plinth_api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .await
        .map_err(map)?;
    let Some(row) = c.query_opt(&stmt, &[&key_hash]).await.map_err(map)? else {
        return Ok(None);
    };
    let key = key_row(&row)?;
    Ok(get_user(c, key.user_id).await?.map(|user| (key, user)))
}

pub(super) async fn list_api_keys<C: GenericClient>(
    c: &C,
    user_id: Option<Uuid>,
) -> Result<Vec<ApiKey>, StoreError> {
    let rows = c
        .query(&format!("SELECT {KEY_COLS} FROM _plinth_api_keys WHERE $1::uuid IS NULL OR user_id = $1 ORDER BY id"), &[&user_id])
        .await
        .map_err(map)?;
    rows.iter().map(key_row).collect()
}

pub(super) async fn revoke_api_key<C: GenericClient>(
    c: &C,
    id: Uuid,
    owner: Option<Uuid>,
    now: Timestamp,
) -> Result<ApiKey, StoreError> {
    let row = c
        .query_opt(
            &format!("SELECT {KEY_COLS} FROM _plinth_api_keys WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await
        .map_err(map)?;
    let key = row
        .map(|r| key_row(&r))
        .transpose()?
        .filter(|k| owner.is_none_or(|o| o == k.user_id))
        .ok_or(StoreError::NotFound)?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    announce(c).await?;
    c.execute(
        "UPDATE _plinth_api_keys SET revoked_at = $1 WHERE id = $2",
        &[&ts(now), &id],
    )
    .await
    .map_err(map)?;
    Ok(ApiKey {
        revoked_at: Some(now),
        ..key
    })
}

pub(super) async fn touch_api_key<C: GenericClient>(
    c: &C,
    id: Uuid,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE _plinth_api_keys SET last_used_at = $1 WHERE id = $2",
        &[&ts(now), &id],
    )
    .await
    .map_err(map)?;
    Ok(())
}

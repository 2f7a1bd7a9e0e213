//! Users, refresh tokens and API keys in SQLite: blocking functions run by the reader pool
//! or inside the writer's group commit.

use super::errors::map;
use crate::shared::email_conflict;
use crate::{ApiKey, NewApiKey, NewUser, Refresh, StoreError, User, UserChanges};
use plinth_core::auth::{Email, parse_role, role_name};
use plinth_core::{Role, Timestamp};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

const USER_COLS: &str = "id, email, role, password_hash, created_at, updated_at, version";
const KEY_COLS: &str =
    "id, user_id, name, prefix, role, expires_at, last_used_at, revoked_at, created_at";

fn bad(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Null)
}

fn uuid_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(i)?;
    Uuid::try_parse(&s).map_err(|_| bad("uuid"))
}

fn ts_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Timestamp> {
    Timestamp::from_micros(row.get(i)?).ok_or_else(|| bad("timestamp"))
}

fn opt_ts_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<i64>>(i)?
        .map(|m| Timestamp::from_micros(m).ok_or_else(|| bad("timestamp")))
        .transpose()
}

fn role_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let s: String = row.get(i)?;
    parse_role(&s).map_err(|_| bad("role"))
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_at(row, 0)?,
        email: row.get(1)?,
        role: role_at(row, 2)?,
        password_hash: row.get(3)?,
        created_at: ts_at(row, 4)?,
        updated_at: ts_at(row, 5)?,
        version: row.get(6)?,
    })
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: uuid_at(row, 0)?,
        user_id: uuid_at(row, 1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        role: role_at(row, 4)?,
        expires_at: opt_ts_at(row, 5)?,
        last_used_at: opt_ts_at(row, 6)?,
        revoked_at: opt_ts_at(row, 7)?,
        created_at: ts_at(row, 8)?,
    })
}

pub(super) fn create_user(
    conn: &Connection,
    user: NewUser,
    now: Timestamp,
) -> Result<User, StoreError> {
    let id = Uuid::now_v7();
    conn.prepare_cached(
        "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.to_string(),
            user.email.as_str(),
            user.email.normalized(),
            role_name(user.role),
            user.password_hash,
            now.as_micros()
        ])
    })
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

pub(super) fn import_user(conn: &Connection, user: &User) -> Result<(), StoreError> {
    let email = Email::parse(&user.email).map_err(StoreError::internal)?;
    conn.execute(
        "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user.id.to_string(),
            user.email,
            email.normalized(),
            role_name(user.role),
            user.password_hash,
            user.created_at.as_micros(),
            user.updated_at.as_micros(),
            user.version
        ],
    )
    .map_err(|e| email_conflict(map(e)))?;
    Ok(())
}

pub(super) fn get_user(conn: &Connection, id: Uuid) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM _plinth_users WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.to_string()], user_row).optional())
    .map_err(map)
}

pub(super) fn find_user_by_email(
    conn: &Connection,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM _plinth_users WHERE email_norm = ?1"
    ))
    .and_then(|mut s| s.query_row([email.normalized()], user_row).optional())
    .map_err(map)
}

pub(super) fn list_users(
    conn: &Connection,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<User>, StoreError> {
    let after = after.map_or_else(String::new, |u| u.to_string());
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLS} FROM _plinth_users WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(map)?;
    let rows = stmt
        .query_map(params![after, i64::from(limit)], user_row)
        .map_err(map)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map)
}

/// Refuses to remove or demote the last admin. Runs in the same transaction as the change,
/// so two admins removing each other at once cannot both succeed.
fn keep_an_admin(conn: &Connection, id: Uuid) -> Result<(), StoreError> {
    let others: i64 = conn
        .query_row(
            "SELECT count(*) FROM _plinth_users WHERE role = 'admin' AND id <> ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .map_err(map)?;
    let is_admin = get_user(conn, id)?.is_some_and(|u| u.role == Role::Admin);
    if is_admin && others == 0 {
        return Err(StoreError::Conflict {
            field: None,
            reason: "the last admin cannot be removed or demoted".to_owned(),
        });
    }
    Ok(())
}

pub(super) fn update_user(
    conn: &Connection,
    id: Uuid,
    changes: &UserChanges,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<User, StoreError> {
    if changes.role.is_some_and(|r| r != Role::Admin) {
        keep_an_admin(conn, id)?;
    }
    let mut sets = vec![
        "updated_at = ?1".to_owned(),
        "version = version + 1".to_owned(),
    ];
    let mut values = vec![Sql::Integer(now.as_micros())];
    let mut push = |col: &str, v: Sql, values: &mut Vec<Sql>| {
        values.push(v);
        sets.push(format!("{col} = ?{}", values.len()));
    };
    if let Some(email) = &changes.email {
        push("email", Sql::Text(email.as_str().to_owned()), &mut values);
        push(
            "email_norm",
            Sql::Text(email.normalized().to_owned()),
            &mut values,
        );
    }
    if let Some(hash) = &changes.password_hash {
        push("password_hash", Sql::Text(hash.clone()), &mut values);
    }
    if let Some(role) = changes.role {
        push("role", Sql::Text(role_name(role).to_owned()), &mut values);
    }
    values.push(Sql::Text(id.to_string()));
    let mut sql = format!(
        "UPDATE _plinth_users SET {} WHERE id = ?{}",
        sets.join(", "),
        values.len()
    );
    if let Some(v) = expected {
        values.push(Sql::Integer(v));
        sql.push_str(&format!(" AND version = ?{}", values.len()));
    }
    sql.push_str(&format!(" RETURNING {USER_COLS}"));
    let updated = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params_from_iter(values), user_row).optional())
        .map_err(|e| email_conflict(map(e)))?;
    match (updated, expected) {
        (Some(user), _) => {
            if changes.password_hash.is_some() || changes.role.is_some() {
                // A new password or role ends every session made with the old one.
                revoke_sessions(conn, id, now)?;
            }
            Ok(user)
        }
        (None, Some(expected)) => match get_user(conn, id)? {
            Some(u) => Err(StoreError::Stale {
                expected,
                current: u.version,
            }),
            None => Err(StoreError::NotFound),
        },
        (None, None) => Err(StoreError::NotFound),
    }
}

fn revoke_sessions(conn: &Connection, user_id: Uuid, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE _plinth_refresh_tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![now.as_micros(), user_id.to_string()]))
        .map(|_| ())
        .map_err(map)
}

pub(super) fn delete_user(conn: &Connection, id: Uuid) -> Result<(), StoreError> {
    keep_an_admin(conn, id)?;
    let n = conn
        .execute("DELETE FROM _plinth_users WHERE id = ?1", [id.to_string()])
        .map_err(map)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    conn.execute(
        "DELETE FROM _plinth_refresh_tokens WHERE user_id = ?1",
        [id.to_string()],
    )
    .map_err(map)?;
    conn.execute(
        "DELETE FROM _plinth_api_keys WHERE user_id = ?1",
        [id.to_string()],
    )
    .map_err(map)?;
    Ok(())
}

pub(super) fn count_admins(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM _plinth_users WHERE role = 'admin'",
            [],
            |r| r.get(0),
        )
        .map_err(map)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn insert_refresh(
    conn: &Connection,
    user_id: Uuid,
    family: Uuid,
    token_hash: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO _plinth_refresh_tokens (token_hash, family, user_id, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            token_hash,
            family.to_string(),
            user_id.to_string(),
            expires_at.as_micros(),
            now.as_micros()
        ])
    })
    .map(|_| ())
    .map_err(map)
}

pub(super) fn rotate_refresh(
    conn: &Connection,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: Timestamp,
    now: Timestamp,
) -> Result<Refresh, StoreError> {
    type Row_ = (String, String, i64, Option<i64>, Option<i64>);
    let row: Option<Row_> = conn
        .prepare_cached(
            "SELECT family, user_id, expires_at, spent_at, revoked_at FROM _plinth_refresh_tokens WHERE token_hash = ?1",
        )
        .and_then(|mut s| s.query_row([old_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
        .map_err(map)?;
    let Some((family, user_id, expires_at, spent_at, revoked_at)) = row else {
        return Ok(Refresh::Invalid);
    };
    let family_id = Uuid::try_parse(&family).map_err(StoreError::internal)?;
    let user_id = Uuid::try_parse(&user_id).map_err(StoreError::internal)?;
    // A token revoked but never spent (logout, or the family revoked earlier) is just
    // invalid; only presenting a spent token again is reuse, worth an alarm.
    if spent_at.is_none() && revoked_at.is_some() {
        return Ok(Refresh::Invalid);
    }
    if spent_at.is_some() {
        conn.execute(
            "UPDATE _plinth_refresh_tokens SET revoked_at = ?1 WHERE family = ?2 AND revoked_at IS NULL",
            params![now.as_micros(), family],
        )
        .map_err(map)?;
        return Ok(Refresh::Reused {
            user_id,
            family: family_id,
        });
    }
    if expires_at <= now.as_micros() {
        return Ok(Refresh::Invalid);
    }
    conn.execute(
        "UPDATE _plinth_refresh_tokens SET spent_at = ?1 WHERE token_hash = ?2",
        params![now.as_micros(), old_hash],
    )
    .map_err(map)?;
    insert_refresh(conn, user_id, family_id, new_hash, new_expires_at, now)?;
    Ok(Refresh::Rotated { user_id })
}

pub(super) fn revoke_refresh_family(
    conn: &Connection,
    token_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let family: Option<String> = conn
        .query_row(
            "SELECT family FROM _plinth_refresh_tokens WHERE token_hash = ?1",
            [token_hash],
            |r| r.get(0),
        )
        .optional()
        .map_err(map)?;
    let Some(family) = family else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE _plinth_refresh_tokens SET revoked_at = ?1 WHERE family = ?2 AND revoked_at IS NULL",
        params![now.as_micros(), family],
    )
    .map_err(map)?;
    Ok(true)
}

pub(super) fn create_api_key(
    conn: &Connection,
    key: NewApiKey,
    now: Timestamp,
) -> Result<ApiKey, StoreError> {
    let id = Uuid::now_v7();
    conn.prepare_cached(&format!(
        "INSERT INTO _plinth_api_keys ({KEY_COLS}, key_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?8)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id.to_string(),
            key.user_id.to_string(),
            key.name,
            key.prefix,
            role_name(key.role),
            key.expires_at.map(Timestamp::as_micros),
            now.as_micros(),
            key.key_hash
        ])
    })
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

pub(super) fn find_api_key(
    conn: &Connection,
    key_hash: &str,
) -> Result<Option<(ApiKey, User)>, StoreError> {
    let key = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM _plinth_api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
        ))
        .and_then(|mut s| s.query_row([key_hash], key_row).optional())
        .map_err(map)?;
    let Some(key) = key else { return Ok(None) };
    Ok(get_user(conn, key.user_id)?.map(|user| (key, user)))
}

pub(super) fn list_api_keys(
    conn: &Connection,
    user_id: Option<Uuid>,
) -> Result<Vec<ApiKey>, StoreError> {
    let (sql, arg) = match user_id {
        Some(u) => (
            format!("SELECT {KEY_COLS} FROM _plinth_api_keys WHERE user_id = ?1 ORDER BY id"),
            u.to_string(),
        ),
        None => (
            format!("SELECT {KEY_COLS} FROM _plinth_api_keys WHERE ?1 = '' ORDER BY id"),
            String::new(),
        ),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt.query_map([arg], key_row).map_err(map)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map)
}

pub(super) fn revoke_api_key(
    conn: &Connection,
    id: Uuid,
    owner: Option<Uuid>,
    now: Timestamp,
) -> Result<ApiKey, StoreError> {
    let key = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM _plinth_api_keys WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([id.to_string()], key_row).optional())
        .map_err(map)?
        .filter(|k| owner.is_none_or(|o| o == k.user_id))
        .ok_or(StoreError::NotFound)?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    conn.execute(
        "UPDATE _plinth_api_keys SET revoked_at = ?1 WHERE id = ?2",
        params![now.as_micros(), id.to_string()],
    )
    .map_err(map)?;
    Ok(ApiKey {
        revoked_at: Some(now),
        ..key
    })
}

pub(super) fn touch_api_key(conn: &Connection, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE _plinth_api_keys SET last_used_at = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![now.as_micros(), id.to_string()]))
        .map(|_| ())
        .map_err(map)
}

//! Users, refresh tokens and API keys (`accounts/keys.rs`). Each change to an account, a session or a key
//! appends its audit event (`audit::append_event`) as its transaction's last step.

mod keys;
pub(crate) mod mfa;
pub(crate) mod oidc;
mod sessions;
mod tables;
pub(crate) mod tokens;

pub(crate) use tables::ACCOUNTS_V8;

pub(crate) use keys::{create_api_key, find_api_key, list_api_keys, revoke_api_key, touch_api_key};
pub(crate) use sessions::{list_sessions, revoke_session, revoke_sessions};

use super::audit::append_event;
use super::records::By;
use super::{Exec, INVALIDATE_CHANNEL, Param, Query, SqlRow, unreadable};
use crate::audit::{Event, REDACTED};
use crate::shared::email_conflict;
use crate::{Keys, NewUser, Refresh, StoreError, User, UserChanges, WriteCtx};
use plinth_core::auth::{Email, parse_role, role_name};
use plinth_core::{Principal, Role, Timestamp};
use serde_json::json;
use uuid::Uuid;

const USER_COLS: &str =
    "id, email, role, password_hash, created_at, updated_at, version, email_verified_at";

fn role_at(row: &impl SqlRow, i: usize) -> Result<Role, StoreError> {
    parse_role(&row.text(i)?).map_err(|_| unreadable("role"))
}

/// The table and column an account's email is sealed in (the associated data, with the
/// user id), and the label of its blind index (`email_norm`).
pub(crate) const EMAIL_TABLE: &str = "_plinth_users";
pub(crate) const EMAIL_COLUMN: &str = "email";
const EMAIL_LABEL: &str = "_plinth_users.email";

/// The blind index of an email: of its normalized form, so lookups and uniqueness ignore
/// case as before.
fn email_index(keys: &Keys, email: &Email) -> Result<String, StoreError> {
    keys.blind(EMAIL_LABEL, email.normalized())
}

fn user_row(row: &impl SqlRow, keys: &Keys) -> Result<User, StoreError> {
    let id = row.uuid(0)?;
    Ok(User {
        id,
        email: keys.open(EMAIL_TABLE, EMAIL_COLUMN, &id, &row.text(1)?)?,
        role: role_at(row, 2)?,
        password_hash: row.text(3)?,
        created_at: row.time(4)?,
        updated_at: row.time(5)?,
        version: row.int(6)?,
        email_verified_at: row.opt_time(7)?,
    })
}

/// A statement starting with `sql`.
fn query<'a, E: Exec>(sql: &str) -> Query<'a> {
    let mut q = Query::new(E::DIALECT);
    q.push(sql);
    q
}

/// Tells every instance (on commit) to drop its cached credentials, where other instances
/// can share the database.
async fn announce<E: Exec>(e: &E) -> Result<(), StoreError> {
    if E::DIALECT.announces() {
        let mut q = query::<E>("SELECT pg_notify(");
        q.bind(INVALIDATE_CHANNEL).push(", 'credentials')");
        e.execute(&q).await?;
    }
    Ok(())
}

pub(crate) async fn create_user<E: Exec>(
    e: &E,
    by: By<'_>,
    user: NewUser,
) -> Result<User, StoreError> {
    let now = by.now;
    let user = User {
        id: Uuid::now_v7(),
        email: user.email.as_str().to_owned(),
        role: user.role,
        password_hash: user.password_hash,
        email_verified_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    import_user(e, by.keys, &user).await?;
    let changes = json!({
        "email": { "to": REDACTED },
        "role": { "to": role_name(user.role) },
    });
    append_event(e, by, Event::AccountCreate, Some(user.id), &changes).await?;
    Ok(user)
}

pub(crate) async fn import_user<E: Exec>(
    e: &E,
    keys: &Keys,
    user: &User,
) -> Result<(), StoreError> {
    let email = Email::parse(&user.email).map_err(StoreError::internal)?;
    let sealed = keys.seal(EMAIL_TABLE, EMAIL_COLUMN, &user.id, &user.email)?;
    let index = email_index(keys, &email)?;
    let mut q = query::<E>(
        "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version, email_verified_at) VALUES (",
    );
    q.bind_all([
        user.id.into(),
        (&sealed).into(),
        (&index).into(),
        role_name(user.role).into(),
        (&user.password_hash).into(),
        user.created_at.into(),
        user.updated_at.into(),
        user.version.into(),
        user.email_verified_at.into(),
    ])
    .push(")");
    e.execute(&q).await.map_err(email_conflict)?;
    Ok(())
}

pub(crate) async fn get_user<E: Exec>(
    e: &E,
    keys: &Keys,
    id: Uuid,
) -> Result<Option<User>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(USER_COLS)
        .push(" FROM _plinth_users WHERE id = ")
        .bind(id)
        .cached();
    e.row(&q, |r| user_row(r, keys)).await
}

pub(crate) async fn find_user_by_email<E: Exec>(
    e: &E,
    keys: &Keys,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    let index = email_index(keys, email)?;
    let mut q = query::<E>("SELECT ");
    q.push(USER_COLS)
        .push(" FROM _plinth_users WHERE email_norm = ")
        .bind(&index)
        .cached();
    e.row(&q, |r| user_row(r, keys)).await
}

pub(crate) async fn list_users<E: Exec>(
    e: &E,
    keys: &Keys,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<User>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(USER_COLS).push(" FROM _plinth_users");
    if let Some(after) = after {
        q.push(" WHERE id > ").bind(after);
    }
    q.push(" ORDER BY id").limit(limit);
    q.rows_hint = limit as usize;
    e.rows(&q, |r| user_row(r, keys)).await
}

/// Refuses to remove or demote the last admin. Runs in the same transaction as the change,
/// with the admins' rows locked, so two admins removing each other at once cannot both
/// succeed.
async fn keep_an_admin<E: Exec>(e: &E, id: Uuid) -> Result<(), StoreError> {
    let mut q = query::<E>("SELECT id FROM _plinth_users WHERE role = 'admin'");
    q.push(E::DIALECT.for_update());
    let admins = e.rows(&q, |r| r.uuid(0)).await?;
    if admins.contains(&id) && admins.len() <= 1 {
        return Err(StoreError::Conflict {
            field: None,
            reason: "the last admin cannot be removed or demoted".to_owned(),
        });
    }
    Ok(())
}

/// A user's row, locked until the transaction ends.
async fn lock_user<E: Exec>(e: &E, keys: &Keys, id: Uuid) -> Result<Option<User>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(USER_COLS)
        .push(" FROM _plinth_users WHERE id = ")
        .bind(id)
        .push(E::DIALECT.for_update());
    e.row(&q, |r| user_row(r, keys)).await
}

pub(crate) async fn update_user<E: Exec>(
    e: &E,
    by: By<'_>,
    id: Uuid,
    changes: &UserChanges,
    expected: Option<i64>,
) -> Result<User, StoreError> {
    let keys = by.keys;
    let now = by.now;
    if changes.role.is_some_and(|r| r != Role::Admin) {
        keep_an_admin(e, id).await?;
    }
    // Read (and locked) first: the audit events say what changed from what, and only
    // values that really change are written (and end sessions).
    let Some(before) = lock_user(e, keys, id).await? else {
        return Err(StoreError::NotFound);
    };
    if let Some(expected) = expected
        && expected != before.version
    {
        return Err(StoreError::Stale {
            expected,
            current: before.version,
        });
    }
    let email = changes
        .email
        .as_ref()
        .filter(|m| m.as_str() != before.email);
    let role = changes.role.filter(|r| *r != before.role);
    let password = changes.password_hash.as_ref();
    // The address one signs in with: another spelling of it (case) is no new address.
    let new_address = email.is_some_and(|m| {
        Email::parse(&before.email).map_or(true, |b| b.normalized() != m.normalized())
    });
    // A new address is unverified unless the change itself proves it.
    let verified = match changes.email_verified {
        Some(true) if before.email_verified_at.is_none() || new_address => Some(Some(now)),
        Some(false) if before.email_verified_at.is_some() => Some(None),
        None if new_address && before.email_verified_at.is_some() => Some(None),
        _ => None,
    };
    if email.is_none() && role.is_none() && password.is_none() && verified.is_none() {
        return Ok(before);
    }
    announce(e).await?;
    let mut q = query::<E>("UPDATE _plinth_users SET updated_at = ");
    q.bind(now).push(", version = version + 1");
    if let Some(email) = email {
        let sealed = keys.seal(EMAIL_TABLE, EMAIL_COLUMN, &id, email.as_str())?;
        q.push(", email = ").bind(Param::Text(sealed.into()));
        q.push(", email_norm = ")
            .bind(Param::Text(email_index(keys, email)?.into()));
    }
    if let Some(hash) = password {
        q.push(", password_hash = ").bind(hash);
    }
    if let Some(role) = role {
        q.push(", role = ").bind(role_name(role));
    }
    if let Some(at) = verified {
        q.push(", email_verified_at = ").bind(at);
    }
    q.push(" WHERE id = ").bind(id);
    if let Some(v) = expected {
        q.push(" AND version = ").bind(v);
    }
    q.push(" RETURNING ").push(USER_COLS);
    let updated = e
        .row(&q, |r| user_row(r, keys))
        .await
        .map_err(email_conflict)?;
    match (updated, expected) {
        (Some(user), _) => {
            if password.is_some() || role.is_some() || new_address {
                // A new password, role or address ends every session made before it,
                sessions::lock_unrevoked(e, "user_id", id, None, None).await?;
                let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET revoked_at = ");
                q.bind(now)
                    .push(" WHERE user_id = ")
                    .bind(id)
                    .push(" AND revoked_at IS NULL");
                e.execute(&q).await?;
                // And every live one-time token: a sign-in waiting for its second step
                // proved what no longer holds, and a reset, verification or email change
                // asked for before (by whoever knew the old password, or at the old
                // address) must not outlive the change.
                let mut q = query::<E>("UPDATE _plinth_account_tokens SET used_at = ");
                q.bind(now)
                    .push(" WHERE user_id = ")
                    .bind(id)
                    .push(" AND used_at IS NULL");
                e.execute(&q).await?;
            }
            audit_user_changes(e, by, &before, &user, password.is_some()).await?;
            Ok(user)
        }
        (None, Some(expected)) => match get_user(e, keys, id).await? {
            Some(u) => Err(StoreError::Stale {
                expected,
                current: u.version,
            }),
            None => Err(StoreError::NotFound),
        },
        (None, None) => Err(StoreError::NotFound),
    }
}

/// The events of an account change: one per aspect that changed (the password whenever a
/// new one was set); emails redacted, hashes never shown.
async fn audit_user_changes<E: Exec>(
    e: &E,
    by: By<'_>,
    before: &User,
    after: &User,
    new_password: bool,
) -> Result<(), StoreError> {
    let id = Some(after.id);
    if new_password {
        append_event(e, by, Event::PasswordChange, id, &json!({})).await?;
    }
    if before.email != after.email {
        let changes = json!({ "email": { "from": REDACTED, "to": REDACTED } });
        append_event(e, by, Event::EmailChange, id, &changes).await?;
    }
    if before.role != after.role {
        let changes = json!({
            "role": { "from": role_name(before.role), "to": role_name(after.role) }
        });
        append_event(e, by, Event::RoleChange, id, &changes).await?;
    }
    let (was, is) = (
        before.email_verified_at.is_some(),
        after.email_verified_at.is_some(),
    );
    if was != is {
        let changes = json!({ "email_verified": { "from": was, "to": is } });
        append_event(e, by, Event::EmailVerification, id, &changes).await?;
    }
    Ok(())
}

pub(crate) async fn delete_user<E: Exec>(e: &E, by: By<'_>, id: Uuid) -> Result<(), StoreError> {
    keep_an_admin(e, id).await?;
    let Some(before) = lock_user(e, by.keys, id).await? else {
        return Err(StoreError::NotFound);
    };
    announce(e).await?;
    for (table, col) in [
        ("_plinth_users", "id"),
        ("_plinth_refresh_tokens", "user_id"),
        ("_plinth_api_keys", "user_id"),
        ("_plinth_account_tokens", "user_id"),
        ("_plinth_totp", "user_id"),
        ("_plinth_recovery_codes", "user_id"),
        ("_plinth_oidc_identities", "user_id"),
    ] {
        let mut q = query::<E>("DELETE FROM ");
        q.push(table).push(" WHERE ").push(col).push(" = ").bind(id);
        if e.execute(&q).await? == 0 && table == "_plinth_users" {
            return Err(StoreError::NotFound);
        }
    }
    let changes = json!({
        "email": { "from": REDACTED },
        "role": { "from": role_name(before.role) },
    });
    append_event(e, by, Event::AccountDelete, Some(id), &changes).await
}

pub(crate) async fn count_admins<E: Exec>(e: &E) -> Result<u64, StoreError> {
    let q = query::<E>("SELECT count(*) FROM _plinth_users WHERE role = 'admin'");
    let n = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Starts a session (the first token of a new family) and audits the login.
pub(crate) async fn insert_refresh<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    family: Uuid,
    token_hash: &str,
    expires_at: Timestamp,
    started_at: Timestamp,
) -> Result<(), StoreError> {
    let token = NewToken {
        user_id,
        family,
        token_hash,
        expires_at,
        family_started_at: started_at,
    };
    insert_token(e, &token, by).await?;
    append_event(e, by, Event::Login, Some(user_id), &json!({})).await
}

/// One row of `_plinth_refresh_tokens`.
struct NewToken<'a> {
    user_id: Uuid,
    family: Uuid,
    token_hash: &'a str,
    expires_at: Timestamp,
    /// When the family's login happened: carried through every rotation, for the session's
    /// absolute lifetime.
    family_started_at: Timestamp,
}

/// Nullable text as a parameter.
fn opt_text(v: &Option<String>) -> Param<'_> {
    v.as_ref().map_or(Param::Null, Param::from)
}

/// Stores a token with the client's address and user agent from `by` (what the session
/// list shows of the session's last use).
async fn insert_token<E: Exec>(e: &E, t: &NewToken<'_>, by: By<'_>) -> Result<(), StoreError> {
    let mut q = query::<E>(
        "INSERT INTO _plinth_refresh_tokens (token_hash, family, user_id, expires_at, created_at, family_started_at, client_addr, user_agent) VALUES (",
    );
    q.bind_all([
        t.token_hash.into(),
        t.family.into(),
        t.user_id.into(),
        t.expires_at.into(),
        by.now.into(),
        t.family_started_at.into(),
        opt_text(&by.ctx.client_addr),
        opt_text(&by.ctx.user_agent),
    ])
    .push(")");
    e.execute(&q).await?;
    Ok(())
}

/// When a token's family started: the column, or for rows older than it (before the
/// upgrade backfilled them) the token's own creation.
const FAMILY_STARTED: &str = "COALESCE(family_started_at, created_at)";

pub(crate) async fn rotate_refresh<E: Exec>(
    e: &E,
    by: By<'_>,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: Timestamp,
    session_cutoff: Timestamp,
) -> Result<Refresh, StoreError> {
    let now = by.now;
    // Locked: two instances presenting the same token at once see it spent in turn.
    let mut q = query::<E>("SELECT family, user_id, expires_at, spent_at, revoked_at, ");
    q.push(FAMILY_STARTED)
        .push(" FROM _plinth_refresh_tokens WHERE token_hash = ")
        .bind(old_hash)
        .push(E::DIALECT.for_update());
    let row = e
        .row(&q, |r| {
            Ok((
                r.uuid(0)?,
                r.uuid(1)?,
                r.time(2)?,
                r.opt_time(3)?,
                r.opt_time(4)?,
                r.time(5)?,
            ))
        })
        .await?;
    let Some((family, user_id, expires_at, spent, revoked, started)) = row else {
        return Ok(Refresh::Invalid);
    };
    // A token revoked but never spent (logout, or the family revoked earlier) is just
    // invalid; only presenting a spent token again is reuse, worth an alarm.
    if spent.is_none() && revoked.is_some() {
        return Ok(Refresh::Invalid);
    }
    if spent.is_some() {
        sessions::lock_unrevoked(e, "family", family, None, None).await?;
        let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET revoked_at = ");
        q.bind(now)
            .push(" WHERE family = ")
            .bind(family)
            .push(" AND revoked_at IS NULL");
        e.execute(&q).await?;
        // Streams opened with a ticket from this session end, on every instance.
        announce(e).await?;
        let changes = json!({ "family": family });
        append_event(e, by, Event::RefreshReuse, Some(user_id), &changes).await?;
        return Ok(Refresh::Reused { user_id, family });
    }
    // Expired: not refreshed within the idle lifetime, or the session (the login) is older
    // than its absolute lifetime, however often it was refreshed.
    if expires_at <= now || started <= session_cutoff {
        return Ok(Refresh::Invalid);
    }
    let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET spent_at = ");
    q.bind(now).push(" WHERE token_hash = ").bind(old_hash);
    e.execute(&q).await?;
    let token = NewToken {
        user_id,
        family,
        token_hash: new_hash,
        expires_at: new_expires_at,
        family_started_at: started,
    };
    insert_token(e, &token, by).await?;
    Ok(Refresh::Rotated { user_id })
}

/// Ends the session of a refresh token (logout): false if the token is unknown. A session
/// ended now is audited as its user's `auth.logout` (the token speaks for its user); one
/// already over is not.
pub(crate) async fn revoke_refresh_family<E: Exec>(
    e: &E,
    by: By<'_>,
    token_hash: &str,
) -> Result<bool, StoreError> {
    let mut q =
        query::<E>("SELECT family, user_id FROM _plinth_refresh_tokens WHERE token_hash = ");
    q.bind(token_hash);
    let Some((family, user_id)) = e.row(&q, |r| Ok((r.uuid(0)?, r.uuid(1)?))).await? else {
        return Ok(false);
    };
    sessions::lock_unrevoked(e, "family", family, None, None).await?;
    let mut q = query::<E>("UPDATE _plinth_refresh_tokens SET revoked_at = ");
    q.bind(by.now)
        .push(" WHERE revoked_at IS NULL AND family = ")
        .bind(family);
    if e.execute(&q).await? > 0 {
        // Streams opened with a ticket from this session end, on every instance.
        announce(e).await?;
        let holder = get_user(e, by.keys, user_id).await?.map(|u| WriteCtx {
            actor: Principal::user(u.id, u.role),
            ..by.ctx.clone()
        });
        let by = By {
            ctx: holder.as_ref().unwrap_or(by.ctx),
            now: by.now,
            keys: by.keys,
        };
        append_event(e, by, Event::Logout, Some(user_id), &json!({})).await?;
    }
    Ok(true)
}

/// The session (refresh-token family) of a refresh token, whatever its state.
pub(crate) async fn refresh_family_of<E: Exec>(
    e: &E,
    token_hash: &str,
) -> Result<Option<Uuid>, StoreError> {
    let mut q = query::<E>("SELECT family FROM _plinth_refresh_tokens WHERE token_hash = ");
    q.bind(token_hash);
    e.row(&q, |r| r.uuid(0)).await
}

/// Whether a session is still on: some token of its family is stored and not revoked
/// (logout and reuse revoke them all; deleting the account or the sweeper removes them).
pub(crate) async fn refresh_family_live<E: Exec>(e: &E, family: Uuid) -> Result<bool, StoreError> {
    let mut q = query::<E>("SELECT family FROM _plinth_refresh_tokens WHERE family = ");
    q.bind(family).push(" AND revoked_at IS NULL LIMIT 1");
    Ok(e.row(&q, |r| r.uuid(0)).await?.is_some())
}

/// Seals the emails of accounts stored before emails were sealed, and replaces their
/// `email_norm` with its blind index; nothing to do once done (each engine runs it at open,
/// under its migration lock, when keys are configured). Returns how many were sealed.
pub(crate) async fn seal_plain_emails<E: Exec>(e: &E, keys: &Keys) -> Result<u64, StoreError> {
    // An email cannot be told from a sealed value by how it starts (`v1:…@…` is an
    // address): the SQL narrows to the candidates (every email holds an `@`, no sealed
    // value does), the real check is `is_sealed`.
    let q = query::<E>(
        "SELECT id, email FROM _plinth_users WHERE email NOT LIKE 'v1:%' OR email LIKE '%@%'",
    );
    let rows = e.rows(&q, |r| Ok((r.uuid(0)?, r.text(1)?))).await?;
    let plain: Vec<_> = rows
        .into_iter()
        .filter(|(_, email)| !crate::seal::is_sealed(email))
        .collect();
    for (id, email) in &plain {
        let parsed = Email::parse(email).map_err(|_| unreadable("email"))?;
        let sealed = keys.seal(EMAIL_TABLE, EMAIL_COLUMN, id, email)?;
        let index = email_index(keys, &parsed)?;
        let mut q = query::<E>("UPDATE _plinth_users SET email = ");
        q.bind(&sealed)
            .push(", email_norm = ")
            .bind(&index)
            .push(" WHERE id = ")
            .bind(*id);
        e.execute(&q).await?;
    }
    Ok(plain.len() as u64)
}

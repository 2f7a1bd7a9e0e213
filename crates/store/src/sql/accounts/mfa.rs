//! Second factors, written once for both engines: the TOTP secret (sealed), recovery codes
//! and the tokens between a sign-in's two steps (digests). Every single-use thing is spent
//! by one conditional `UPDATE` whose changed-row count says who won, so two instances can
//! never both accept the same code or token.

use super::query;
use crate::audit::Event;
use crate::mfa::{RecoveryCode, TotpState};
use crate::sql::audit::append_event;
use crate::sql::records::By;
use crate::sql::{Exec, SqlRow};
use crate::{Keys, StoreError};
use plinth_core::Timestamp;
use serde_json::json;
use uuid::Uuid;

/// The table and column a TOTP secret is sealed in (associated data, with the user id).
pub(crate) const TOTP_TABLE: &str = "_plinth_totp";
pub(crate) const TOTP_COLUMN: &str = "secret";

/// The `purpose` of a sign-in's second-step token in `_plinth_account_tokens`.
const MFA_LOGIN: &str = "mfa_login";

pub(crate) async fn get_totp<E: Exec>(
    e: &E,
    keys: &Keys,
    user_id: Uuid,
) -> Result<Option<TotpState>, StoreError> {
    let mut q = query::<E>(
        "SELECT user_id, secret, confirmed_at, COALESCE(last_step, -1), created_at \
         FROM _plinth_totp WHERE user_id = ",
    );
    q.bind(user_id);
    e.row(&q, |r| {
        let user_id = r.uuid(0)?;
        let last = r.int(3)?;
        Ok(TotpState {
            user_id,
            secret: keys.open(TOTP_TABLE, TOTP_COLUMN, &user_id, &r.text(1)?)?,
            confirmed_at: r.opt_time(2)?,
            last_step: (last >= 0).then_some(last),
            created_at: r.time(4)?,
        })
    })
    .await
}

pub(crate) async fn begin_totp<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    secret: &str,
) -> Result<bool, StoreError> {
    let sealed = by.keys.seal(TOTP_TABLE, TOTP_COLUMN, &user_id, secret)?;
    // A pending secret is replaced; a confirmed one is left alone (0 rows).
    let mut q = query::<E>(
        "INSERT INTO _plinth_totp (user_id, secret, confirmed_at, last_step, created_at) VALUES (",
    );
    q.bind(user_id)
        .push(", ")
        .bind(&sealed)
        .push(", NULL, NULL, ")
        .bind(by.now)
        .push(
            ") ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
             last_step = NULL, created_at = excluded.created_at \
             WHERE _plinth_totp.confirmed_at IS NULL",
        );
    if e.execute(&q).await? == 0 {
        return Ok(false);
    }
    drop(q);
    append_event(e, by, Event::MfaEnrol, Some(user_id), &json!({})).await?;
    Ok(true)
}

pub(crate) async fn confirm_totp<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    step: i64,
    code_hashes: &[String],
) -> Result<bool, StoreError> {
    let mut q = query::<E>("UPDATE _plinth_totp SET confirmed_at = ");
    q.bind(by.now)
        .push(", last_step = ")
        .bind(step)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND confirmed_at IS NULL");
    if e.execute(&q).await? == 0 {
        return Ok(false);
    }
    drop(q);
    insert_codes(e, by.now, user_id, code_hashes).await?;
    let changes = json!({ "recovery_codes": { "to": code_hashes.len() } });
    append_event(e, by, Event::MfaEnabled, Some(user_id), &changes).await?;
    Ok(true)
}

/// Replaces the user's recovery codes with `code_hashes`.
async fn insert_codes<E: Exec>(
    e: &E,
    now: Timestamp,
    user_id: Uuid,
    code_hashes: &[String],
) -> Result<(), StoreError> {
    let mut q = query::<E>("DELETE FROM _plinth_recovery_codes WHERE user_id = ");
    q.bind(user_id);
    e.execute(&q).await?;
    drop(q);
    if code_hashes.is_empty() {
        return Ok(());
    }
    let mut q = query::<E>(
        "INSERT INTO _plinth_recovery_codes (user_id, code_hash, used_at, created_at) VALUES ",
    );
    for (i, hash) in code_hashes.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(user_id)
            .push(", ")
            .bind(hash)
            .push(", NULL, ")
            .bind(now)
            .push(")");
    }
    e.execute(&q).await?;
    Ok(())
}

pub(crate) async fn spend_totp_step<E: Exec>(
    e: &E,
    user_id: Uuid,
    step: i64,
) -> Result<bool, StoreError> {
    // The replay guard: one conditional update, so of two requests (on any instances)
    // presenting codes of the same step, exactly one changes the row.
    let mut q = query::<E>("UPDATE _plinth_totp SET last_step = ");
    q.bind(step)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < ")
        .bind(step)
        .push(")");
    Ok(e.execute(&q).await? == 1)
}

pub(crate) async fn spend_recovery_code<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    code_hash: &str,
) -> Result<bool, StoreError> {
    let mut q = query::<E>("UPDATE _plinth_recovery_codes SET used_at = ");
    q.bind(by.now)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND code_hash = ")
        .bind(code_hash)
        .push(" AND used_at IS NULL");
    if e.execute(&q).await? == 0 {
        return Ok(false);
    }
    drop(q);
    let left = recovery_codes_left(e, user_id).await?;
    let changes = json!({ "recovery_codes_left": { "to": left } });
    append_event(e, by, Event::RecoveryCodeUsed, Some(user_id), &changes).await?;
    Ok(true)
}

pub(crate) async fn replace_recovery_codes<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
    code_hashes: &[String],
) -> Result<bool, StoreError> {
    let mut q = query::<E>("SELECT user_id FROM _plinth_totp WHERE user_id = ");
    q.bind(user_id)
        .push(" AND confirmed_at IS NOT NULL")
        .push(E::DIALECT.for_update());
    if e.row(&q, |r| r.uuid(0)).await?.is_none() {
        return Ok(false);
    }
    drop(q);
    insert_codes(e, by.now, user_id, code_hashes).await?;
    let changes = json!({ "recovery_codes": { "to": code_hashes.len() } });
    append_event(e, by, Event::RecoveryCodesReplaced, Some(user_id), &changes).await?;
    Ok(true)
}

pub(crate) async fn recovery_codes_left<E: Exec>(e: &E, user_id: Uuid) -> Result<u64, StoreError> {
    let mut q = query::<E>(
        "SELECT COUNT(*) FROM _plinth_recovery_codes WHERE used_at IS NULL AND user_id = ",
    );
    q.bind(user_id);
    let n = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn disable_totp<E: Exec>(
    e: &E,
    by: By<'_>,
    user_id: Uuid,
) -> Result<bool, StoreError> {
    let mut q = query::<E>("DELETE FROM _plinth_totp WHERE user_id = ");
    q.bind(user_id).push(" AND confirmed_at IS NOT NULL");
    if e.execute(&q).await? == 0 {
        return Ok(false);
    }
    drop(q);
    let mut q = query::<E>("DELETE FROM _plinth_recovery_codes WHERE user_id = ");
    q.bind(user_id);
    e.execute(&q).await?;
    drop(q);
    let mut q = query::<E>("DELETE FROM _plinth_account_tokens WHERE purpose = ");
    q.bind(MFA_LOGIN).push(" AND user_id = ").bind(user_id);
    e.execute(&q).await?;
    drop(q);
    append_event(e, by, Event::MfaDisabled, Some(user_id), &json!({})).await?;
    Ok(true)
}

pub(crate) async fn insert_mfa_token<E: Exec>(
    e: &E,
    now: Timestamp,
    user_id: Uuid,
    token_hash: &str,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    let mut q = query::<E>(
        "INSERT INTO _plinth_account_tokens \
         (token_hash, purpose, user_id, email, expires_at, used_at, created_at) VALUES (",
    );
    q.bind(token_hash)
        .push(", ")
        .bind(MFA_LOGIN)
        .push(", ")
        .bind(user_id)
        .push(", NULL, ")
        .bind(expires_at)
        .push(", NULL, ")
        .bind(now)
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

pub(crate) async fn find_mfa_token<E: Exec>(
    e: &E,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<Uuid>, StoreError> {
    let mut q = query::<E>("SELECT user_id FROM _plinth_account_tokens WHERE token_hash = ");
    q.bind(token_hash)
        .push(" AND purpose = ")
        .bind(MFA_LOGIN)
        .push(" AND used_at IS NULL AND expires_at > ")
        .bind(now);
    e.row(&q, |r| r.uuid(0)).await
}

pub(crate) async fn spend_mfa_token<E: Exec>(
    e: &E,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<Uuid>, StoreError> {
    let Some(user_id) = find_mfa_token(e, token_hash, now).await? else {
        return Ok(None);
    };
    let mut q = query::<E>("UPDATE _plinth_account_tokens SET used_at = ");
    q.bind(now)
        .push(" WHERE token_hash = ")
        .bind(token_hash)
        .push(" AND purpose = ")
        .bind(MFA_LOGIN)
        .push(" AND used_at IS NULL AND expires_at > ")
        .bind(now);
    Ok((e.execute(&q).await? == 1).then_some(user_id))
}

pub(crate) async fn recovery_codes<E: Exec>(
    e: &E,
    user_id: Uuid,
) -> Result<Vec<RecoveryCode>, StoreError> {
    let mut q = query::<E>(
        "SELECT code_hash, used_at, created_at FROM _plinth_recovery_codes WHERE user_id = ",
    );
    q.bind(user_id).push(" ORDER BY created_at, code_hash");
    e.rows(&q, |r| {
        Ok(RecoveryCode {
            code_hash: r.text(0)?,
            used_at: r.opt_time(1)?,
            created_at: r.time(2)?,
        })
    })
    .await
}

/// `plinth import`: a user's TOTP row exactly as exported (`last_step`, `confirmed_at`
/// kept), its secret sealed under this store's keys; no audit entry.
pub(crate) async fn import_totp<E: Exec>(
    e: &E,
    keys: &Keys,
    totp: &TotpState,
) -> Result<(), StoreError> {
    let sealed = keys.seal(TOTP_TABLE, TOTP_COLUMN, &totp.user_id, &totp.secret)?;
    let mut q = query::<E>(
        "INSERT INTO _plinth_totp (user_id, secret, confirmed_at, last_step, created_at) VALUES (",
    );
    q.bind(totp.user_id)
        .push(", ")
        .bind(&sealed)
        .push(", ")
        .bind(totp.confirmed_at)
        .push(", ");
    match totp.last_step {
        Some(step) => q.bind(step),
        None => q.push("NULL"),
    };
    q.push(", ").bind(totp.created_at).push(")");
    e.execute(&q).await?;
    Ok(())
}

/// `plinth import`: one recovery code (its digest, spent or not) as exported; no audit entry.
pub(crate) async fn import_recovery_code<E: Exec>(
    e: &E,
    user_id: Uuid,
    code: &RecoveryCode,
) -> Result<(), StoreError> {
    let mut q = query::<E>(
        "INSERT INTO _plinth_recovery_codes (user_id, code_hash, used_at, created_at) VALUES (",
    );
    q.bind(user_id)
        .push(", ")
        .bind(&code.code_hash)
        .push(", ")
        .bind(code.used_at)
        .push(", ")
        .bind(code.created_at)
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

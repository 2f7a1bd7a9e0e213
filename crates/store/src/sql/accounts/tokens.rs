//! One-time account tokens: stored by digest (the newest of a purpose voids the older
//! ones), spent in the transaction that applies them. Each request and use appends its
//! audit event in the same transaction; the token and any address are never in it.

use super::{create_user, query, update_user};
use crate::audit::{Event, REDACTED};
use crate::sql::audit::append_event;
use crate::sql::records::By;
use crate::sql::{Exec, SqlRow};
use crate::tokens::{NewAccountToken, TokenPurpose, TokenUse};
use crate::{NewUser, StoreError, User, UserChanges};
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use serde_json::json;

/// Where an email change's new address is sealed (with the user's id as associated data).
const TOKEN_TABLE: &str = "_plinth_account_tokens";
const TOKEN_EMAIL: &str = "email";

pub(crate) async fn sign_up<E: Exec>(
    e: &E,
    by: By<'_>,
    user: NewUser,
    token: Option<NewAccountToken>,
) -> Result<User, StoreError> {
    let user = create_user(e, by, user).await?;
    append_event(e, by, Event::Signup, Some(user.id), &json!({})).await?;
    if let Some(mut token) = token {
        token.user_id = user.id;
        insert(e, by, &token).await?;
    }
    Ok(user)
}

async fn insert<E: Exec>(e: &E, by: By<'_>, t: &NewAccountToken) -> Result<(), StoreError> {
    // The newest token of a purpose is the only live one.
    let mut q = query::<E>("UPDATE _plinth_account_tokens SET used_at = ");
    q.bind(by.now)
        .push(" WHERE user_id = ")
        .bind(t.user_id)
        .push(" AND purpose = ")
        .bind(t.purpose.as_str())
        .push(" AND used_at IS NULL");
    e.execute(&q).await?;
    let sealed = match &t.email {
        Some(m) => Some(
            by.keys
                .seal(TOKEN_TABLE, TOKEN_EMAIL, &t.user_id, m.as_str())?,
        ),
        None => None,
    };
    let mut q = query::<E>(
        "INSERT INTO _plinth_account_tokens (token_hash, purpose, user_id, email, expires_at, created_at) VALUES (",
    );
    q.bind_all([
        (&t.token_hash).into(),
        t.purpose.as_str().into(),
        t.user_id.into(),
    ]);
    match &sealed {
        Some(s) => q.push(", ").bind(s),
        None => q.push(", NULL"),
    };
    q.push(", ")
        .bind_all([t.expires_at.into(), by.now.into()])
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

pub(crate) async fn issue_account_token<E: Exec>(
    e: &E,
    by: By<'_>,
    token: &NewAccountToken,
) -> Result<(), StoreError> {
    insert(e, by, token).await?;
    let (event, changes) = match token.purpose {
        TokenPurpose::VerifyEmail => (Event::EmailVerifyRequested, json!({})),
        TokenPurpose::PasswordReset => (Event::PasswordResetRequested, json!({})),
        TokenPurpose::EmailChange => (
            Event::EmailChangeRequested,
            json!({ "email": { "to": REDACTED } }),
        ),
    };
    append_event(e, by, event, Some(token.user_id), &changes).await
}

pub(crate) async fn sweep_account_tokens<E: Exec>(
    e: &E,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut q = query::<E>(
        "DELETE FROM _plinth_account_tokens WHERE token_hash IN (SELECT token_hash FROM _plinth_account_tokens WHERE expires_at <= ",
    );
    q.bind(now)
        .limit(i64::from(limit))
        .push(E::DIALECT.skip_locked())
        .push(")");
    e.execute(&q).await
}

pub(crate) async fn redeem_account_token<E: Exec>(
    e: &E,
    by: By<'_>,
    token_hash: &str,
    now: Timestamp,
    apply: &TokenUse,
) -> Result<Option<User>, StoreError> {
    // Locked: two requests spending the same token at once see it spent in turn.
    let mut q = query::<E>(
        "SELECT user_id, purpose, COALESCE(email, ''), expires_at, used_at FROM _plinth_account_tokens WHERE token_hash = ",
    );
    q.bind(token_hash).push(E::DIALECT.for_update());
    let row = e
        .row(&q, |r| {
            Ok((
                r.uuid(0)?,
                r.text(1)?,
                r.text(2)?,
                r.time(3)?,
                r.opt_time(4)?,
            ))
        })
        .await?;
    let Some((user_id, purpose, sealed, expires_at, used_at)) = row else {
        return Ok(None);
    };
    if purpose != apply.purpose().as_str() || used_at.is_some() || expires_at <= now {
        return Ok(None);
    }
    let mut q = query::<E>("UPDATE _plinth_account_tokens SET used_at = ");
    q.bind(by.now)
        .push(" WHERE token_hash = ")
        .bind(token_hash)
        .push(" AND used_at IS NULL");
    if e.execute(&q).await? == 0 {
        return Ok(None);
    }
    let mut changes = UserChanges {
        email_verified: Some(true),
        ..UserChanges::default()
    };
    let event = match apply {
        TokenUse::VerifyEmail => None,
        TokenUse::ResetPassword { password_hash } => {
            changes.password_hash = Some(password_hash.clone());
            Some(Event::PasswordReset)
        }
        TokenUse::ChangeEmail => {
            if sealed.is_empty() {
                return Ok(None);
            }
            let address = by.keys.open(TOKEN_TABLE, TOKEN_EMAIL, &user_id, &sealed)?;
            changes.email = Some(Email::parse(&address).map_err(StoreError::internal)?);
            None
        }
    };
    let user = match update_user(e, by, user_id, &changes, None).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Ok(None),
        Err(err) => return Err(err),
    };
    if let Some(event) = event {
        append_event(e, by, event, Some(user_id), &json!({})).await?;
    }
    Ok(Some(user))
}

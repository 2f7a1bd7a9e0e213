//! OpenID Connect: pending logins (single use, sealed verifier) and the sign-in that finds,
//! links or creates an account, audited in its transaction.

use super::{find_user_by_email, get_user, import_user, query, update_user};
use crate::audit::{Event, REDACTED};
use crate::oidc::{OidcIdentity, OidcOutcome, OidcRefusal, OidcSignIn, PendingOidcLogin};
use crate::sql::audit::append_event;
use crate::sql::records::By;
use crate::sql::{Exec, SqlRow};
use crate::{Keys, StoreError, User, UserChanges};
use plinth_core::Role;
use plinth_core::Timestamp;
use plinth_core::auth::role_name;
use serde_json::json;
use uuid::Uuid;

const LOGINS: &str = "_plinth_oidc_logins";

/// The row id a verifier is sealed under: taken from its state digest, so a sealed value
/// cannot be moved to another login.
fn seal_id(state_hash: &str) -> Uuid {
    let mut bytes = [0u8; 16];
    for (b, s) in bytes.iter_mut().zip(state_hash.bytes()) {
        *b = s;
    }
    Uuid::from_bytes(bytes)
}

pub(crate) async fn put_login<E: Exec>(
    e: &E,
    keys: &Keys,
    now: Timestamp,
    login: &PendingOidcLogin,
) -> Result<(), StoreError> {
    let mut q = query::<E>("DELETE FROM _plinth_oidc_logins WHERE expires_at < ");
    q.bind(now);
    e.execute(&q).await?;
    let sealed = keys.seal(
        LOGINS,
        "verifier",
        &seal_id(&login.state_hash),
        &login.verifier,
    )?;
    let mut q = query::<E>(
        "INSERT INTO _plinth_oidc_logins (state_hash, provider, nonce, verifier, expires_at, created_at) VALUES (",
    );
    q.bind_all([
        (&login.state_hash).into(),
        (&login.provider).into(),
        (&login.nonce).into(),
        (&sealed).into(),
        login.expires_at.into(),
        now.into(),
    ])
    .push(")");
    e.execute(&q).await?;
    Ok(())
}

pub(crate) async fn take_login<E: Exec>(
    e: &E,
    keys: &Keys,
    now: Timestamp,
    state_hash: &str,
    provider: &str,
) -> Result<Option<PendingOidcLogin>, StoreError> {
    let mut q = query::<E>(
        "SELECT state_hash, provider, nonce, verifier, expires_at FROM _plinth_oidc_logins WHERE state_hash = ",
    );
    q.bind(state_hash).push(E::DIALECT.for_update());
    let row = e
        .row(&q, |r| {
            Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?, r.time(4)?))
        })
        .await?;
    let Some((hash, stored_provider, nonce, sealed, expires_at)) = row else {
        return Ok(None);
    };
    let mut q = query::<E>("DELETE FROM _plinth_oidc_logins WHERE state_hash = ");
    q.bind(state_hash);
    // Whoever deletes the row owns the login: a concurrent callback finds nothing.
    if e.execute(&q).await? != 1 || expires_at < now || stored_provider != provider {
        return Ok(None);
    }
    let verifier = keys.open(LOGINS, "verifier", &seal_id(&hash), &sealed)?;
    Ok(Some(PendingOidcLogin {
        state_hash: hash,
        provider: stored_provider,
        nonce,
        verifier,
        expires_at,
    }))
}

async fn identity_user<E: Exec>(
    e: &E,
    provider: &str,
    subject: &str,
) -> Result<Option<Uuid>, StoreError> {
    let mut q = query::<E>("SELECT user_id FROM _plinth_oidc_identities WHERE provider = ");
    q.bind(provider)
        .push(" AND subject = ")
        .bind(subject)
        .push(E::DIALECT.for_update());
    e.row(&q, |r| r.uuid(0)).await
}

async fn link<E: Exec>(e: &E, by: By<'_>, s: &OidcSignIn, user_id: Uuid) -> Result<(), StoreError> {
    let mut q = query::<E>(
        "INSERT INTO _plinth_oidc_identities (provider, subject, user_id, created_at) VALUES (",
    );
    q.bind_all([
        (&s.provider).into(),
        (&s.subject).into(),
        user_id.into(),
        by.now.into(),
    ])
    .push(")");
    e.execute(&q).await?;
    let changes = json!({ "provider": { "to": s.provider } });
    append_event(e, by, Event::OidcLink, Some(user_id), &changes).await
}

/// Links to an account whose address was never proved: whoever set its password may not
/// own the address (anyone can sign up with someone else's), while the provider has just
/// proved that the signer-in does. So the address becomes verified and everything the
/// password's holder could still use ends: the password (replaced by the unusable one),
/// every session, every API key and every live one-time token (a pending email change, a
/// reset, a second step). A second factor stays (removing one is never done silently).
async fn claim_unverified<E: Exec>(
    e: &E,
    by: By<'_>,
    s: &OidcSignIn,
    user_id: Uuid,
) -> Result<User, StoreError> {
    if s.password_hash.is_empty() {
        return Err(StoreError::internal(
            "a sign-in linking an unverified account needs the unusable password hash",
        ));
    }
    let changes = UserChanges {
        password_hash: Some(s.password_hash.clone()),
        email_verified: Some(true),
        ..UserChanges::default()
    };
    // Ends every session too (a new password does), audited in this transaction.
    let user = update_user(e, by, user_id, &changes, None).await?;
    let mut q = query::<E>("UPDATE _plinth_api_keys SET revoked_at = ");
    q.bind(by.now)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND revoked_at IS NULL");
    let keys = e.execute(&q).await?;
    let mut q = query::<E>("UPDATE _plinth_account_tokens SET used_at = ");
    q.bind(by.now)
        .push(" WHERE user_id = ")
        .bind(user_id)
        .push(" AND used_at IS NULL");
    e.execute(&q).await?;
    let changes = json!({ "api_keys_revoked": { "to": keys } });
    append_event(e, by, Event::OidcClaim, Some(user_id), &changes).await?;
    Ok(user)
}

pub(crate) async fn sign_in<E: Exec>(
    e: &E,
    by: By<'_>,
    s: &OidcSignIn,
) -> Result<OidcOutcome, StoreError> {
    let login = json!({ "provider": s.provider });
    if let Some(id) = identity_user(e, &s.provider, &s.subject).await? {
        let user = get_user(e, by.keys, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        append_event(e, by, Event::OidcLogin, Some(user.id), &login).await?;
        return Ok(OidcOutcome::Known(user));
    }
    let (Some(email), true) = (&s.email, s.email_verified) else {
        return Ok(OidcOutcome::Refused(OidcRefusal::UnverifiedEmail));
    };
    if let Some(user) = find_user_by_email(e, by.keys, email).await? {
        let user = if user.email_verified_at.is_none() {
            claim_unverified(e, by, s, user.id).await?
        } else {
            user
        };
        link(e, by, s, user.id).await?;
        append_event(e, by, Event::OidcLogin, Some(user.id), &login).await?;
        return Ok(OidcOutcome::Linked(user));
    }
    if !s.may_create {
        return Ok(OidcOutcome::Refused(OidcRefusal::SignupClosed));
    }
    let user = User {
        id: Uuid::now_v7(),
        email: email.as_str().to_owned(),
        role: Role::User,
        password_hash: s.password_hash.clone(),
        email_verified_at: Some(by.now),
        created_at: by.now,
        updated_at: by.now,
        version: 1,
    };
    import_user(e, by.keys, &user).await?;
    let changes = json!({
        "email": { "to": REDACTED },
        "role": { "to": role_name(user.role) },
        "via": { "to": "oidc" },
    });
    append_event(e, by, Event::AccountCreate, Some(user.id), &changes).await?;
    link(e, by, s, user.id).await?;
    append_event(e, by, Event::OidcLogin, Some(user.id), &login).await?;
    Ok(OidcOutcome::Created(user))
}

pub(crate) async fn identities<E: Exec>(
    e: &E,
    user_id: Uuid,
) -> Result<Vec<OidcIdentity>, StoreError> {
    let mut q = query::<E>(
        "SELECT provider, subject, user_id, created_at FROM _plinth_oidc_identities WHERE user_id = ",
    );
    q.bind(user_id)
        .push(" ORDER BY created_at, provider, subject");
    e.rows(&q, |r| {
        Ok(OidcIdentity {
            provider: r.text(0)?,
            subject: r.text(1)?,
            user_id: r.uuid(2)?,
            created_at: r.time(3)?,
        })
    })
    .await
}

/// `plinth import`: one identity exactly as exported; no audit entry.
pub(crate) async fn import_identity<E: Exec>(
    e: &E,
    identity: &OidcIdentity,
) -> Result<(), StoreError> {
    let mut q = query::<E>(
        "INSERT INTO _plinth_oidc_identities (provider, subject, user_id, created_at) VALUES (",
    );
    q.bind_all([
        (&identity.provider).into(),
        (&identity.subject).into(),
        identity.user_id.into(),
        identity.created_at.into(),
    ])
    .push(")");
    e.execute(&q).await?;
    Ok(())
}

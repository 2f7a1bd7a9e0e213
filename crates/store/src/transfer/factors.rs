//! The lines of a user's second factors and provider links in an export, each written
//! right after its user's line: `{"totp": {…}}` (the secret opened, base32: the file is a
//! secret, as its plaintext `pii` values are; sealed again under the target's keys on
//! import), one `{"recovery_code": {…}}` per code (its digest, spent or not) and one
//! `{"oidc_identity": {…}}` per linked provider subject. `confirmed_at`, `last_step` (the
//! replay guard) and `used_at` move exactly. A file without these lines (written before
//! they were exported) imports with none.

use super::{Counts, Item, TransferError};
use crate::{OidcIdentity, RecoveryCode, Store, TotpState};
use plinth_core::Timestamp;
use serde_json::{Value as Json, json};
use std::collections::HashSet;
use std::io::Write;
use uuid::Uuid;

/// Writes the lines of `user_id`'s TOTP, recovery codes and identities; counts a confirmed
/// TOTP and each identity.
pub(super) async fn export_user(
    store: &dyn Store,
    user_id: Uuid,
    out: &mut dyn Write,
    counts: &mut Counts,
) -> Result<(), TransferError> {
    if let Some(t) = store.get_totp(user_id).await? {
        if t.enabled() {
            counts.second_factors += 1;
        }
        writeln!(out, "{}", json!({ "totp": totp_json(&t) }))?;
    }
    for c in store.recovery_codes(user_id).await? {
        let line = json!({ "recovery_code": code_json(user_id, &c) });
        writeln!(out, "{line}")?;
    }
    for i in store.oidc_identities(user_id).await? {
        writeln!(out, "{}", json!({ "oidc_identity": identity_json(&i) }))?;
        counts.identities += 1;
    }
    Ok(())
}

/// The item of a second-factor or identity line, `None` when `v` is none of them. `users`:
/// the ids of the user lines read so far; a line naming another user is refused.
pub(super) fn parse_line(v: &Json, users: &HashSet<Uuid>) -> Option<Result<Item, String>> {
    let parsed = if let Some(t) = v.get("totp") {
        totp_from(t).map(|t| (t.user_id, Item::Totp(t)))
    } else if let Some(c) = v.get("recovery_code") {
        code_from(c).map(|(id, c)| (id, Item::RecoveryCode(id, c)))
    } else if let Some(i) = v.get("oidc_identity") {
        identity_from(i).map(|i| (i.user_id, Item::OidcIdentity(i)))
    } else {
        return None;
    };
    Some(parsed.and_then(|(user_id, item)| {
        if users.contains(&user_id) {
            Ok(item)
        } else {
            Err(format!(
                "names user {user_id}, which no user line before it holds"
            ))
        }
    }))
}

/// The counts of a parsed line of this kind.
pub(super) fn count(item: &Item, counts: &mut Counts) {
    match item {
        Item::Totp(t) if t.enabled() => counts.second_factors += 1,
        Item::OidcIdentity(_) => counts.identities += 1,
        _ => {}
    }
}

fn time(v: &Json, k: &str, what: &str) -> Result<Option<Timestamp>, String> {
    match &v[k] {
        Json::Null => Ok(None),
        t => t
            .as_str()
            .ok_or_else(|| format!("{what} {k} must be a time or null"))
            .and_then(|t| Timestamp::parse(t).map_err(|e| format!("{what} {k} {e}")))
            .map(Some),
    }
}

fn text<'a>(v: &'a Json, k: &str, what: &str) -> Result<&'a str, String> {
    match v[k].as_str() {
        Some(t) if !t.is_empty() && !t.contains('\0') => Ok(t),
        _ => Err(format!("{what} without {k}")),
    }
}

fn user_id(v: &Json, what: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text(v, "user_id", what)?).map_err(|_| format!("bad {what} user_id"))
}

pub(super) fn totp_json(t: &TotpState) -> Json {
    json!({
        "user_id": t.user_id, "secret": t.secret, "confirmed_at": t.confirmed_at.map(|t| t.to_string()),
        "last_step": t.last_step, "created_at": t.created_at.to_string(),
    })
}

pub(super) fn totp_from(v: &Json) -> Result<TotpState, String> {
    let last_step = match &v["last_step"] {
        Json::Null => None,
        s => Some(
            s.as_i64()
                .filter(|s| *s >= 0)
                .ok_or("totp last_step must be a whole number or null")?,
        ),
    };
    Ok(TotpState {
        user_id: user_id(v, "totp")?,
        secret: text(v, "secret", "totp")?.to_owned(),
        confirmed_at: time(v, "confirmed_at", "totp")?,
        last_step,
        created_at: time(v, "created_at", "totp")?.ok_or("totp without created_at")?,
    })
}

pub(super) fn code_json(user_id: Uuid, c: &RecoveryCode) -> Json {
    json!({
        "user_id": user_id, "code_hash": c.code_hash, "used_at": c.used_at.map(|t| t.to_string()),
        "created_at": c.created_at.to_string(),
    })
}

pub(super) fn code_from(v: &Json) -> Result<(Uuid, RecoveryCode), String> {
    let what = "recovery_code";
    Ok((
        user_id(v, what)?,
        RecoveryCode {
            code_hash: text(v, "code_hash", what)?.to_owned(),
            used_at: time(v, "used_at", what)?,
            created_at: time(v, "created_at", what)?.ok_or("recovery_code without created_at")?,
        },
    ))
}

pub(super) fn identity_json(i: &OidcIdentity) -> Json {
    json!({
        "provider": i.provider, "subject": i.subject, "user_id": i.user_id,
        "created_at": i.created_at.to_string(),
    })
}

pub(super) fn identity_from(v: &Json) -> Result<OidcIdentity, String> {
    let what = "oidc_identity";
    Ok(OidcIdentity {
        provider: text(v, "provider", what)?.to_owned(),
        subject: text(v, "subject", what)?.to_owned(),
        user_id: user_id(v, what)?,
        created_at: time(v, "created_at", what)?.ok_or("oidc_identity without created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).expect("time")
    }

    /// Each line comes back as it was written, and a line missing or mangling a part is
    /// refused naming it.
    #[test]
    fn lines_round_trip_and_bad_ones_are_named() {
        let user_id = Uuid::now_v7();
        let totp = TotpState {
            user_id,
            secret: "JBSWY3DPEHPK3PXP".to_owned(),
            confirmed_at: Some(t("2026-01-02T03:04:05.000006Z")),
            last_step: Some(59_000_000),
            created_at: t("2026-01-02T03:04:00Z"),
        };
        assert_eq!(totp_from(&totp_json(&totp)), Ok(totp.clone()));
        let pending = TotpState {
            confirmed_at: None,
            last_step: None,
            ..totp.clone()
        };
        assert_eq!(totp_from(&totp_json(&pending)), Ok(pending));
        let code = RecoveryCode {
            code_hash: "ab".repeat(32),
            used_at: Some(t("2026-02-02T00:00:00Z")),
            created_at: t("2026-01-02T03:04:00Z"),
        };
        assert_eq!(
            code_from(&code_json(user_id, &code)),
            Ok((user_id, code.clone()))
        );
        let identity = OidcIdentity {
            provider: "acme".to_owned(),
            subject: "248289761001".to_owned(),
            user_id,
            created_at: t("2026-01-02T03:04:00Z"),
        };
        assert_eq!(
            identity_from(&identity_json(&identity)),
            Ok(identity.clone())
        );

        let mut v = totp_json(&totp);
        v["last_step"] = json!(-1);
        assert!(totp_from(&v).is_err_and(|e| e.contains("last_step")));
        v["last_step"] = json!(1);
        v["secret"] = json!("");
        assert!(totp_from(&v).is_err_and(|e| e.contains("secret")));
        let mut v = code_json(user_id, &code);
        v["used_at"] = json!("yesterday");
        assert!(code_from(&v).is_err_and(|e| e.contains("used_at")));
        let mut v = identity_json(&identity);
        v["user_id"] = json!("nobody");
        assert!(identity_from(&v).is_err_and(|e| e.contains("user_id")));

        // Known kinds only, and only for users read before.
        let users = HashSet::from([user_id]);
        let line = json!({ "oidc_identity": identity_json(&identity) });
        assert!(matches!(
            parse_line(&line, &users),
            Some(Ok(Item::OidcIdentity(_)))
        ));
        assert!(parse_line(&line, &HashSet::new()).is_some_and(|r| r.is_err()));
        assert!(parse_line(&json!({"webauthn": {}}), &users).is_none());
    }
}

//! The audit trail: one entry per record write and per account or authentication event
//! ([`Event`]), written in the transaction of the write it goes with (an event without a
//! write in a transaction of its own), chained by hashes so that an edited, deleted,
//! inserted or reordered entry is found.
//!
//! `hash = hex(SHA-256(prev_hash ‖ canonical))`, where `canonical` is the entry without its
//! hash as compact JSON with its keys in alphabetical order, `at` in microseconds since the
//! epoch and `changes` as the exact stored text (a JSON string). The first entry's
//! `prev_hash` is empty. The statements are in `sql::audit`.

use plinth_core::{RecordId, Role, Timestamp};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// One audit entry, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in the one total order of entries: 1, 2, 3, … without gaps.
    pub seq: i64,
    /// When the write was made.
    pub at: Timestamp,
    /// `user`, `api_key`, `system` (the local administrator) or `guest`.
    pub actor_kind: String,
    /// The acting user (for an API key, its owner); none for `system` and `guest`.
    pub actor_id: Option<Uuid>,
    /// The actor's role: `admin`, `user`, `local admin` or `guest`.
    pub actor_label: String,
    /// What was done: `record.create`, `record.update`, `record.delete`, `record.restore`,
    /// `record.purge`, or an [`Event`]'s action (`auth.login`, `account.create`, …).
    pub action: String,
    /// The model of the record written; for an event, [`USERS`] or [`API_KEYS`].
    pub model: Option<String>,
    /// The record written, or the event's account or API key (by its id); none for an
    /// event that names no account (a failed login for an unknown email).
    pub record_id: Option<RecordId>,
    /// The request that made the write.
    pub request_id: String,
    /// The client's address, when known.
    pub client_addr: Option<String>,
    /// `{"field": {"from": …, "to": …}}`: only `to` for a create, only `from` for a purge.
    /// A pii field's values and an account's email are [`REDACTED`]; password hashes,
    /// tokens and key digests never appear. An event's details are in the same object.
    pub changes: serde_json::Value,
    /// The previous entry's hash (empty for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// What stands in `changes` for a value that must not be kept in the trail (a pii field's
/// value, an account's email): the entry still shows that it changed.
pub const REDACTED: &str = "[redacted]";

/// The `model` of an event about an account.
pub const USERS: &str = "_users";

/// The `model` of an event about an API key.
pub const API_KEYS: &str = "_api_keys";

/// The `model` of an event about the encryption keys.
pub const KEYS: &str = "_keys";

/// The `model` of an alert's state change.
pub const ALERTS: &str = "_alerts";

/// The `model` of an event about a feature flag.
pub const FLAGS: &str = "_flags";

/// An account or authentication event: what the audit trail records besides record writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `auth.login`: a password login succeeded (a session started).
    Login,
    /// `auth.login_failed`: a wrong password, or an unknown email (then no account named).
    LoginFailed,
    /// `auth.throttled`: a client went over a login limit (once per limit window and key).
    Throttled,
    /// `auth.refresh_reuse`: a spent refresh token was presented again; its family is
    /// revoked.
    RefreshReuse,
    /// `auth.logout`: a session (refresh-token family) was ended by its holder.
    Logout,
    /// `auth.mfa_enrol`: a user started a TOTP enrolment (a new, unconfirmed secret).
    MfaEnrol,
    /// `auth.mfa_enabled`: a first code confirmed the enrolment; TOTP is on.
    MfaEnabled,
    /// `auth.mfa_disabled`: TOTP was turned off (secret and recovery codes removed).
    MfaDisabled,
    /// `auth.mfa_failed`: a wrong, replayed or malformed second-factor code.
    MfaFailed,
    /// `auth.recovery_code_used`: a recovery code was spent.
    RecoveryCodeUsed,
    /// `auth.recovery_codes_replaced`: a new set of recovery codes voided the old ones.
    RecoveryCodesReplaced,
    /// `auth.oidc_login`: a sign-in through an OpenID Connect provider (changes: the
    /// provider's name).
    OidcLogin,
    /// `auth.oidc_link`: a provider identity was tied to an account (new or existing).
    OidcLink,
    /// `auth.oidc_claim`: a provider-verified sign-in linked an account whose address was
    /// never verified; its password, sessions, API keys and live one-time tokens were ended
    /// (changes: how many keys were revoked).
    OidcClaim,
    /// `auth.oidc_failed`: an OpenID Connect callback was refused (changes: the provider
    /// and the reason's class, never token content).
    OidcFailed,
    /// `auth.session_revoked`: one session was ended from the session list (changes: its
    /// `session` id).
    SessionRevoked,
    /// `auth.sessions_revoked`: every session of an account was ended at once ("log out
    /// everywhere"; changes: the `count` ended, and the one kept, `except`, if any).
    SessionsRevoked,
    /// `account.create`.
    AccountCreate,
    /// `account.password_change`.
    PasswordChange,
    /// `account.email_change`.
    EmailChange,
    /// `account.email_verified`: the address was proved (or, on a new address, no longer is).
    EmailVerification,
    /// `account.role_change`.
    RoleChange,
    /// `account.delete`.
    AccountDelete,
    /// `api_key.create`.
    ApiKeyCreate,
    /// `api_key.revoke`.
    ApiKeyRevoke,
    /// `keys.rotate`: `plinth keys rotate` added a sealing key and re-sealed stored values
    /// (changes: key ids and counts, never key material).
    KeysRotate,
    /// `keys.retire`: `plinth keys retire` checked that no value is sealed under a key.
    KeysRetire,
    /// `alert.fire`: one of Plinth's own alert rules started firing (changes: the alert's
    /// name, severity, value and threshold).
    AlertFire,
    /// `alert.resolve`: a firing alert rule stopped breaching.
    AlertResolve,
    /// `flag.create`: a feature flag was made (changes: every part, `to`).
    FlagCreate,
    /// `flag.update`: a feature flag changed (changes: the parts that changed, and its key).
    FlagUpdate,
    /// `flag.delete`: a feature flag was deleted (changes: every part, `from`).
    FlagDelete,
    /// `auth.signup`: someone created their own account (beside its `account.create`), or
    /// tried to with a taken address (then it names that account, changes `{"taken":true}`).
    Signup,
    /// `auth.email_verify_requested`: a verification token was mailed.
    EmailVerifyRequested,
    /// `auth.password_reset_requested`: a password-reset token was mailed.
    PasswordResetRequested,
    /// `auth.password_reset`: a password-reset token was spent (beside the account's
    /// `account.password_change`).
    PasswordReset,
    /// `auth.email_change_requested`: a token confirming a new address was mailed to it.
    EmailChangeRequested,
}

impl Event {
    /// The entry's `action`.
    pub fn action(self) -> &'static str {
        match self {
            Self::Login => "auth.login",
            Self::LoginFailed => "auth.login_failed",
            Self::Throttled => "auth.throttled",
            Self::RefreshReuse => "auth.refresh_reuse",
            Self::Logout => "auth.logout",
            Self::MfaEnrol => "auth.mfa_enrol",
            Self::MfaEnabled => "auth.mfa_enabled",
            Self::MfaDisabled => "auth.mfa_disabled",
            Self::MfaFailed => "auth.mfa_failed",
            Self::RecoveryCodeUsed => "auth.recovery_code_used",
            Self::RecoveryCodesReplaced => "auth.recovery_codes_replaced",
            Self::OidcLogin => "auth.oidc_login",
            Self::OidcLink => "auth.oidc_link",
            Self::OidcClaim => "auth.oidc_claim",
            Self::OidcFailed => "auth.oidc_failed",
            Self::SessionRevoked => "auth.session_revoked",
            Self::SessionsRevoked => "auth.sessions_revoked",
            Self::AccountCreate => "account.create",
            Self::PasswordChange => "account.password_change",
            Self::EmailChange => "account.email_change",
            Self::EmailVerification => "account.email_verified",
            Self::RoleChange => "account.role_change",
            Self::AccountDelete => "account.delete",
            Self::ApiKeyCreate => "api_key.create",
            Self::ApiKeyRevoke => "api_key.revoke",
            Self::KeysRotate => "keys.rotate",
            Self::KeysRetire => "keys.retire",
            Self::AlertFire => "alert.fire",
            Self::AlertResolve => "alert.resolve",
            Self::FlagCreate => "flag.create",
            Self::FlagUpdate => "flag.update",
            Self::FlagDelete => "flag.delete",
            Self::Signup => "auth.signup",
            Self::EmailVerifyRequested => "auth.email_verify_requested",
            Self::PasswordResetRequested => "auth.password_reset_requested",
            Self::PasswordReset => "auth.password_reset",
            Self::EmailChangeRequested => "auth.email_change_requested",
        }
    }

    /// The entry's `model`: what kind of thing the event is about.
    pub fn model(self) -> &'static str {
        match self {
            Self::ApiKeyCreate | Self::ApiKeyRevoke => API_KEYS,
            Self::KeysRotate | Self::KeysRetire => KEYS,
            Self::AlertFire | Self::AlertResolve => ALERTS,
            Self::FlagCreate | Self::FlagUpdate | Self::FlagDelete => FLAGS,
            _ => USERS,
        }
    }
}

/// An event as the caller hands it to `Store::audit_event` (events without a write of their
/// own: a failed or throttled login).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// What happened.
    pub event: Event,
    /// The account (or key) it is about, when there is one to name.
    pub target: Option<Uuid>,
    /// Details, in the form of `AuditEntry::changes`; never a secret or a raw email.
    pub changes: serde_json::Value,
}

/// How a walk of the audit chain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every entry is in place: sequence, links and hashes hold.
    Intact {
        /// Entries checked.
        entries: u64,
    },
    /// The first entry (in `seq` order) that breaks the chain.
    Broken {
        /// Its `seq`.
        seq: i64,
        /// What is wrong with it.
        reason: AuditBreak,
    },
}

/// What is wrong with an entry that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditBreak {
    /// Its `seq` is not the one after the previous entry's (an entry was deleted, or
    /// entries were reordered or renumbered).
    Sequence {
        /// The `seq` the chain needs here.
        expected: i64,
    },
    /// Its `prev_hash` is not the previous entry's hash.
    Link,
    /// Its hash is not the hash of its content: the entry was changed.
    Hash,
    /// The newest checkpoint (the `seq` and hash of the last entry pruned) is not the one
    /// the chain's `audit.checkpoint` entry sealed: the checkpoint was changed, or entries
    /// were removed behind a forged one. `Broken::seq` is then the checkpoint's `seq`.
    Checkpoint,
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sequence { expected } => write!(f, "sequence broken: expected seq {expected}"),
            Self::Link => f.write_str("link broken: prev_hash is not the previous entry's hash"),
            Self::Hash => f.write_str("hash mismatch: the entry was changed"),
            Self::Checkpoint => f.write_str(
                "checkpoint mismatch: the checkpoint is not the one its audit.checkpoint entry sealed",
            ),
        }
    }
}

/// The action of the entry a prune appends: it seals the `seq` and hash of the last entry
/// pruned, so the chain still verifies from there.
pub const CHECKPOINT_ACTION: &str = "audit.checkpoint";

/// Which entries `Store::audit_query` returns, in which order. Every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The acting user (or API key owner).
    pub actor_id: Option<Uuid>,
    /// `user`, `api_key`, `system` or `guest`.
    pub actor_kind: Option<String>,
    /// The action, exactly.
    pub action: Option<String>,
    /// The action's beginning (`record.` for `record.*`).
    pub action_prefix: Option<String>,
    /// The model written.
    pub model: Option<String>,
    /// The record written.
    pub record_id: Option<RecordId>,
    /// Entries at or after this time.
    pub since: Option<Timestamp>,
    /// Entries before this time.
    pub until: Option<Timestamp>,
    /// Only entries past this `seq` in the query's order (a page's last `seq`).
    pub after_seq: Option<i64>,
    /// Newest (highest `seq`) first; else oldest first.
    pub newest_first: bool,
    /// At most this many entries.
    pub limit: u32,
}

/// Who the audit trail names as the actor: `(kind, id, label)`.
pub(crate) fn actor(ctx: &crate::WriteCtx) -> (&'static str, Option<Uuid>, &'static str) {
    let role = ctx.actor.role();
    let label = match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Guest => "guest",
    };
    match ctx.actor.user_id() {
        Some(id) if ctx.via_api_key => ("api_key", Some(id), label),
        Some(id) => ("user", Some(id), label),
        None if role == Role::Admin => ("system", None, "local admin"),
        None => ("guest", None, "guest"),
    }
}

/// The entry without its hash, as hashed: fields in alphabetical order, so the compact JSON
/// of this struct is the canonical form (serialised straight, without building a map).
#[derive(serde::Serialize)]
struct Canonical<'a> {
    action: &'a str,
    actor_id: Option<Uuid>,
    actor_kind: &'a str,
    actor_label: &'a str,
    at: i64,
    changes: &'a str,
    client_addr: Option<&'a str>,
    model: Option<&'a str>,
    prev_hash: &'a str,
    record_id: Option<Uuid>,
    request_id: &'a str,
    seq: i64,
}

/// The hash of an entry whose `changes` are stored as `changes_text`.
pub(crate) fn hash(e: &AuditEntry, changes_text: &str) -> String {
    let canonical = Canonical {
        action: &e.action,
        actor_id: e.actor_id,
        actor_kind: &e.actor_kind,
        actor_label: &e.actor_label,
        at: e.at.as_micros(),
        changes: changes_text,
        client_addr: e.client_addr.as_deref(),
        model: e.model.as_deref(),
        prev_hash: &e.prev_hash,
        record_id: e.record_id.map(|r| *r.as_uuid()),
        request_id: &e.request_id,
        seq: e.seq,
    };
    // One buffer hashed in one call: feeding the digest each small piece the serialiser
    // writes costs more than the copy.
    let mut buf = Vec::with_capacity(512 + changes_text.len() + e.prev_hash.len());
    buf.extend_from_slice(e.prev_hash.as_bytes());
    // Serialising these types into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buf, &canonical);
    base16ct::lower::encode_string(&Sha256::digest(&buf))
}

#[cfg(test)]
mod tests {
    use super::{AuditEntry, hash};
    use plinth_core::Timestamp;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_hash_is_of_the_previous_hash_then_the_canonical_entry() {
        let entry = AuditEntry {
            seq: 2,
            at: Timestamp::from_micros(1_000_000).expect("a time"),
            actor_kind: "system".to_owned(),
            actor_id: None,
            actor_label: "local admin".to_owned(),
            action: "record.create".to_owned(),
            model: Some("m".to_owned()),
            record_id: None,
            request_id: "r".to_owned(),
            client_addr: Some("192.0.2.1".to_owned()),
            changes: serde_json::Value::Null,
            prev_hash: "ab".to_owned(),
            hash: String::new(),
        };
        let canonical = r#"{"action":"record.create","actor_id":null,"actor_kind":"system","actor_label":"local admin","at":1000000,"changes":"{\"name\":{\"to\":\"a\"}}","client_addr":"192.0.2.1","model":"m","prev_hash":"ab","record_id":null,"request_id":"r","seq":2}"#;
        let digest = Sha256::digest(format!("ab{canonical}").as_bytes());
        let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash(&entry, r#"{"name":{"to":"a"}}"#), expected);
    }
}

//! Second factors: a user's TOTP secret (`_plinth_totp`), their recovery codes
//! (`_plinth_recovery_codes`) and the one-time tokens between a sign-in's two steps
//! (`_plinth_account_tokens`, purpose `mfa_login`), as the [`MfaStore`] trait.
//!
//! The secret is sealed with the store's keys (associated data: table, column and user id);
//! recovery codes and login tokens arrive as SHA-256 digests. Each change that is an account
//! event (enrol, enable, disable, a recovery code spent, new codes) appends its audit entry in
//! the same transaction; the entries never hold a secret or a code.

use crate::{StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

/// A user's TOTP enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpState {
    /// Whose.
    pub user_id: Uuid,
    /// The shared secret, base32 (opened from its sealed form).
    pub secret: String,
    /// When a first code confirmed it; `None`: pending, not yet a second factor.
    pub confirmed_at: Option<Timestamp>,
    /// The newest time step accepted (RFC 6238 counter); a code of this step or an older one
    /// is never accepted again.
    pub last_step: Option<i64>,
    /// When this secret was made.
    pub created_at: Timestamp,
}

impl TotpState {
    /// Whether TOTP is on (the enrolment is confirmed).
    pub fn enabled(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// One of a user's recovery codes, as stored: its digest, and when it was spent.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode {
    /// SHA-256 (hex) of the code.
    pub code_hash: String,
    /// When it was spent; `None`: still usable.
    pub used_at: Option<Timestamp>,
    /// When it was made.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCode")
            .field("used_at", &self.used_at)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Storage of second factors.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's enrolment, pending or confirmed.
    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpState>, StoreError>;

    /// Starts an enrolment with `secret` (base32), replacing a pending one; audits
    /// `auth.mfa_enrol`. `false`, changing nothing, when TOTP is already on.
    async fn begin_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        secret: &str,
    ) -> Result<bool, StoreError>;

    /// Turns a pending enrolment on: records `step` (the confirming code's) as used and
    /// replaces the user's recovery codes with `code_hashes`; audits `auth.mfa_enabled`.
    /// `false`, changing nothing, when there is no pending enrolment.
    async fn confirm_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        step: i64,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError>;

    /// Records `step` as used if it is newer than every step accepted before, atomically
    /// (one conditional update): `false` for a replayed or older code, or no confirmed TOTP.
    /// Of two instances accepting the same code at once, exactly one gets `true`.
    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError>;

    /// Spends one of the user's unused recovery codes by digest, atomically; audits
    /// `auth.recovery_code_used`. `false` for an unknown or spent code.
    async fn spend_recovery_code(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces every recovery code of a user whose TOTP is on (the old ones are void);
    /// audits `auth.recovery_codes_replaced`. `false`, changing nothing, when TOTP is off.
    async fn replace_recovery_codes(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError>;

    /// Every recovery code of the user, spent ones too (for `plinth export`).
    async fn recovery_codes(&self, user_id: Uuid) -> Result<Vec<RecoveryCode>, StoreError>;

    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError>;

    /// Removes the user's TOTP secret, recovery codes and pending sign-in tokens; audits
    /// `auth.mfa_disabled`. `false` when there was no confirmed TOTP.
    async fn disable_totp(&self, ctx: &WriteCtx, user_id: Uuid) -> Result<bool, StoreError>;

    /// Stores the digest of a new token for a sign-in's second step, single use until
    /// `expires_at`.
    async fn insert_mfa_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Whose unused token this is, if it has not expired at `now`.
    async fn find_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Spends an unused, unexpired token atomically: whose it was, or `None` (unknown,
    /// expired, or spent already — by a concurrent request too).
    async fn spend_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError>;
}

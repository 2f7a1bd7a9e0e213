//! One-time account tokens (`_plinth_account_tokens`): the [`AccountTokenStore`] trait every
//! engine implements. A token is mailed to prove an address (`verify_email`), to reset a
//! password (`password_reset`) or to confirm a new address (`email_change`); only its
//! SHA-256 digest is stored, and it is spent (`used_at`) in the transaction that applies it.

use crate::{NewUser, StoreError, User, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use uuid::Uuid;

/// What a token is for (the `purpose` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the account's address.
    VerifyEmail,
    /// Sets a new password.
    PasswordReset,
    /// Moves the account to the (sealed) new address it was mailed to.
    EmailChange,
}

impl TokenPurpose {
    /// The `purpose` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
        }
    }
}

/// A token to store: its digest, never the token.
#[derive(Clone)]
pub struct NewAccountToken {
    /// What it is for.
    pub purpose: TokenPurpose,
    /// Whose it is.
    pub user_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The new address of an email change (stored sealed).
    pub email: Option<Email>,
    /// After this the token is refused.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewAccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccountToken")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// What spending a token does to its account (beside marking the address verified).
#[derive(Clone)]
pub enum TokenUse {
    /// `verify_email`: nothing more.
    VerifyEmail,
    /// `password_reset`: this new argon2id hash (every session ends).
    ResetPassword {
        /// The new hash.
        password_hash: String,
    },
    /// `email_change`: the address the token was mailed to (every session ends).
    ChangeEmail,
}

impl TokenUse {
    /// The purpose a token must have to be spent this way.
    pub fn purpose(&self) -> TokenPurpose {
        match self {
            Self::VerifyEmail => TokenPurpose::VerifyEmail,
            Self::ResetPassword { .. } => TokenPurpose::PasswordReset,
            Self::ChangeEmail => TokenPurpose::EmailChange,
        }
    }
}

impl std::fmt::Debug for TokenUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.purpose().as_str())
    }
}

/// Storage of one-time account tokens.
#[async_trait]
pub trait AccountTokenStore: Send + Sync {
    /// A self-service sign-up: creates the `user` account (audited `account.create` and
    /// `auth.signup`) and, when given, its first `verify_email` token, in one transaction.
    /// `Conflict` on `email` if the address is taken.
    async fn sign_up(
        &self,
        ctx: &WriteCtx,
        user: NewUser,
        token: Option<NewAccountToken>,
    ) -> Result<User, StoreError>;
    /// Stores a token, voiding the user's unspent tokens of the same purpose (the newest
    /// one counts), and audits its request (`auth.email_verify_requested`,
    /// `auth.password_reset_requested`, `auth.email_change_requested`), in one transaction.
    async fn issue_account_token(
        &self,
        ctx: &WriteCtx,
        token: NewAccountToken,
    ) -> Result<(), StoreError>;
    /// Spends the live token with this digest if its purpose is `apply`'s and it has not
    /// expired by `now`, and applies it to its account (the address verified; a new
    /// password or address ends every session), in one transaction; `None`: no such live
    /// token (unknown, spent, voided, expired, or of another purpose). A taken new address
    /// is a `Conflict` on `email` (the token stays unspent).
    async fn redeem_account_token(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
        now: Timestamp,
        apply: TokenUse,
    ) -> Result<Option<User>, StoreError>;
    /// Deletes up to `limit` one-time tokens of any purpose (second-step sign-in tokens
    /// too) that expired at or before `now`, spent or not; returns how many.
    async fn sweep_account_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

//! Accounts: users, refresh-token families and API keys, as the [`AccountStore`] trait every
//! engine implements beside the record operations.
//!
//! Every change to an account, a session or a key is audited in its own transaction (see
//! [`crate::audit::Event`]).
//!
//! Secrets never reach storage in the clear: passwords arrive as argon2id hashes, refresh
//! tokens and API keys as SHA-256 digests of high-entropy random strings.

use crate::{StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::auth::Email;
use plinth_core::{Role, Timestamp};
use uuid::Uuid;

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7.
    pub id: Uuid,
    /// The address as given.
    pub email: String,
    /// `admin` or `user`.
    pub role: Role,
    /// The argon2id PHC string. Never serialised into a response or a log.
    pub password_hash: String,
    /// When the account proved it receives mail at `email`; `None`: not (yet).
    pub email_verified_at: Option<Timestamp>,
    /// When the account was created.
    pub created_at: Timestamp,
    /// When the account last changed.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub version: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A new account.
#[derive(Clone)]
pub struct NewUser {
    /// Validated address.
    pub email: Email,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Changes to an account; `None` leaves a value as it is.
#[derive(Clone, Default)]
pub struct UserChanges {
    /// New address.
    pub email: Option<Email>,
    /// New argon2id hash.
    pub password_hash: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Marks the address verified (`Some(true)`, now) or not (`Some(false)`). A new address
    /// without `Some(true)` beside it is unverified.
    pub email_verified: Option<bool>,
}

impl std::fmt::Debug for UserChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChanges")
            .field("email", &self.email.is_some())
            .field("password", &self.password_hash.is_some())
            .field("role", &self.role)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The token was live: it is now spent and the new one stored in the same family.
    Rotated {
        /// The token's user.
        user_id: Uuid,
    },
    /// The token had already been spent: the whole family is now revoked. A stolen token
    /// was likely used.
    Reused {
        /// The token's user.
        user_id: Uuid,
        /// The revoked family.
        family: Uuid,
    },
    /// Unknown, expired, or revoked without having been spent (after a logout).
    Invalid,
}

/// A stored API key (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: Uuid,
    /// The user the key acts as.
    pub user_id: Uuid,
    /// A label for humans.
    pub name: String,
    /// The key's first characters, safe to show and log (`plk_ab12cd34`).
    pub prefix: String,
    /// The role the key acts with: at most its user's.
    pub role: Role,
    /// After this, the key is refused.
    pub expires_at: Option<Timestamp>,
    /// Last time the key authenticated a request (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// A new API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The user the key acts as.
    pub user_id: Uuid,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// Role (at most the user's).
    pub role: Role,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
}

/// Storage of accounts and credentials.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates a user; `Conflict` on `email` if the address (case-insensitively) is taken.
    async fn create_user(&self, ctx: &WriteCtx, user: NewUser) -> Result<User, StoreError>;
    /// A user by id.
    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    /// A user by normalised email.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Users ordered by id, after `after`, at most `limit`.
    async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<User>, StoreError>;
    /// Changes a user; with `expected_version`, only if it is current. Demoting the last
    /// admin is a `Conflict`.
    async fn update_user(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        changes: UserChanges,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError>;
    /// Deletes a user with its refresh tokens and API keys (records keep their `owner_id`).
    /// Deleting the last admin is a `Conflict`.
    async fn delete_user(&self, ctx: &WriteCtx, id: Uuid) -> Result<(), StoreError>;
    /// How many admins exist.
    async fn count_admins(&self) -> Result<u64, StoreError>;
    /// Stores a refresh token (its hash) as the first of a new family: a session that
    /// started at `started_at` (by the caller's clock, which also sets the cutoff of
    /// [`Self::rotate_refresh`]). Audited as `auth.login` by `ctx` (the user logging in).
    async fn insert_refresh(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
        started_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Spends `old_hash` and stores `new_hash` in the same family; detects reuse. A family
    /// started at or before `session_cutoff` (past the session's absolute lifetime) no
    /// longer rotates: `Invalid`. A reuse is audited (`auth.refresh_reuse`, by `ctx`) in the
    /// transaction that revokes the family.
    async fn rotate_refresh(
        &self,
        ctx: &WriteCtx,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        session_cutoff: Timestamp,
    ) -> Result<Refresh, StoreError>;
    /// Deletes up to `limit` refresh tokens whose whole family is dead (every token spent,
    /// revoked or expired, or the family started at or before `session_cutoff`); returns
    /// how many. Live families keep every row, so reuse is still detected.
    async fn sweep_refresh(&self, session_cutoff: Timestamp, limit: u32)
    -> Result<u64, StoreError>;
    /// Revokes the family of a refresh token (logout); false if the token is unknown. A
    /// family revoked now is audited as `auth.logout` by the token's user, with `ctx`'s
    /// request and address, and announced to other instances (as a credential change).
    async fn revoke_refresh_family(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
    ) -> Result<bool, StoreError>;
    /// The session (refresh-token family) a refresh token belongs to, if it is stored.
    async fn refresh_family_of(&self, token_hash: &str) -> Result<Option<Uuid>, StoreError>;
    /// Whether a session is still on: not logged out, not revoked for reuse, not swept,
    /// its account not deleted.
    async fn refresh_family_live(&self, family: Uuid) -> Result<bool, StoreError>;
    /// Stores an API key.
    async fn create_api_key(&self, ctx: &WriteCtx, key: NewApiKey) -> Result<ApiKey, StoreError>;
    /// The live (not revoked) key with this hash, and its user.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>, StoreError>;
    /// Keys of one user, or of everyone.
    async fn list_api_keys(&self, user_id: Option<Uuid>) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; `owner` restricts the revocation to that user's keys.
    async fn revoke_api_key(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<ApiKey, StoreError>;
    /// Records that a key was used now.
    async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError>;
    /// Inserts a user exactly as given (id, hash, times, version): for `plinth import`.
    async fn import_user(&self, user: User) -> Result<(), StoreError>;
}

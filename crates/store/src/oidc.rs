//! OpenID Connect sign-in: the [`OidcStore`] trait every engine implements. Pending logins
//! (`_plinth_oidc_logins`) are kept by the digest of their `state`, with the PKCE verifier
//! sealed, so a callback may reach any instance and is consumed exactly once. A completed
//! sign-in resolves its account (an identity, a verified email to link, or a new account)
//! and audits it in one transaction.

use crate::{StoreError, User, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use uuid::Uuid;

/// A started login, waiting for its callback.
#[derive(Clone)]
pub struct PendingOidcLogin {
    /// SHA-256 (hex) of the `state` sent to the provider, joined with the browser cookie's.
    pub state_hash: String,
    /// The provider's configured name.
    pub provider: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier (sealed at rest).
    pub verifier: String,
    /// When the login may no longer be completed.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for PendingOidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOidcLogin")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who a provider vouched for, and what the server allows for them.
#[derive(Debug, Clone)]
pub struct OidcSignIn {
    /// The provider's configured name.
    pub provider: String,
    /// The ID token's `sub`.
    pub subject: String,
    /// The ID token's `email`, when it has a usable one.
    pub email: Option<Email>,
    /// Whether the provider says the email is verified (`email_verified: true`).
    pub email_verified: bool,
    /// Whether a new account may be made (sign-up open, the domain allowed).
    pub may_create: bool,
    /// The unusable password hash a new account gets (a hash of a random password nobody
    /// knows), and an existing account whose address was never verified gets when it is
    /// linked (its old password is not trusted); needed whenever `email_verified`.
    pub password_hash: String,
}

/// How a sign-in resolved.
#[derive(Debug, Clone)]
pub enum OidcOutcome {
    /// The identity was known: its user.
    Known(User),
    /// An existing account with the same, verified email was linked to the identity.
    Linked(User),
    /// A new account was made for the identity.
    Created(User),
    /// Nothing was written, for this reason.
    Refused(OidcRefusal),
}

/// Why a sign-in made no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcRefusal {
    /// The token carries no email, or the provider does not say it is verified.
    UnverifiedEmail,
    /// No account matches and new accounts may not be made.
    SignupClosed,
}

/// A provider subject linked to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's `sub` for the account.
    pub subject: String,
    /// The account it signs in as.
    pub user_id: Uuid,
    /// When it was linked.
    pub created_at: Timestamp,
}

/// Storage of OpenID Connect logins and identities.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Stores a started login (sealing its verifier) and drops expired ones.
    async fn put_oidc_login(&self, login: PendingOidcLogin) -> Result<(), StoreError>;
    /// Deletes the login with `state_hash` for `provider` and returns it, if it existed and
    /// has not expired; a second call finds nothing.
    async fn take_oidc_login(
        &self,
        state_hash: &str,
        provider: &str,
    ) -> Result<Option<PendingOidcLogin>, StoreError>;
    /// The identities linked to the user (for `plinth export`).
    async fn oidc_identities(&self, user_id: Uuid) -> Result<Vec<OidcIdentity>, StoreError>;
    /// Resolves the account of a verified ID token, linking or creating it as allowed, and
    /// audits it (`auth.oidc_login`, `auth.oidc_link`, `account.create`) in one transaction.
    async fn oidc_sign_in(
        &self,
        ctx: &WriteCtx,
        sign_in: OidcSignIn,
    ) -> Result<OidcOutcome, StoreError>;
}

//! [`AuthConfig`]: every authentication setting the server takes, with its defaults, and
//! [`Signup`], who may create an account.

use super::{HashCost, SigningKey, TrustedProxies, oidc};
use std::time::Duration;

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 key for access tokens.
    pub signing_key: SigningKey,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token: a session not refreshed for this long ends.
    pub refresh_ttl: Duration,
    /// The longest a session (a login and every refresh after it) lasts.
    pub session_max: Duration,
    /// The longest an API key may live; `None`: until revoked.
    pub api_key_max_ttl: Option<Duration>,
    /// argon2id cost.
    pub hash_cost: HashCost,
    /// Login attempts per account and client address per window: the strict limit, which
    /// one address cannot use to lock the account out elsewhere.
    pub login_per_account_address: u32,
    /// Login attempts per account per window, from all addresses together: a ceiling well
    /// above the per-address one, so locking an account out takes many addresses. It does
    /// not apply from an address the account logged in from within `login_remember`.
    pub login_per_account: u32,
    /// How long a successful login exempts that account and address from the per-account
    /// ceiling; zero: never.
    pub login_remember: Duration,
    /// Login attempts per client address per window.
    pub login_per_address: u32,
    /// The login rate-limit window.
    pub login_window: Duration,
    /// Requests per principal (user id, or client address for guests) per minute; 0 = off.
    pub requests_per_minute: u32,
    /// The reverse proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// Whether anyone may create a `user` account for themselves; off by default.
    pub signup: Signup,
    /// With sign-up open, the email domains it is limited to (lowercase); empty: any.
    pub signup_domains: Vec<String>,
    /// The address clients reach Plinth at (`https://api.example.com`, no trailing slash),
    /// for links in messages and OpenID Connect redirects; `None`: not configured.
    pub public_url: Option<String>,
    /// Whether an admin must have TOTP on to act as one: without it, an admin's access
    /// tokens act as a `user` (API keys are not affected). Off by default.
    pub require_mfa_for_admins: bool,
    /// The OpenID Connect providers users may sign in with (`[[auth.oidc]]`).
    pub oidc: Vec<oidc::OidcProvider>,
    /// Whether a login needs a verified address (off by default; needs `mail`).
    pub require_verified_email: bool,
    /// The SMTP relay messages go through; `None`: no mail (the flows that need it answer
    /// 503, sign-up still works and leaves addresses unverified).
    pub mail: Option<crate::mail::MailConfig>,
    /// How long a verification (or email-change) token lives.
    pub verify_email_ttl: Duration,
    /// How long a password-reset token lives.
    pub password_reset_ttl: Duration,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signup {
    /// Only an admin (`POST /api/v1/users`, `plinth user create`).
    #[default]
    Off,
    /// Anyone, through `POST /api/v1/auth/signup`, as a `user`.
    Open,
}

impl AuthConfig {
    /// Defaults around a signing key: 15-minute access tokens, 30-day refresh tokens and
    /// sessions, OWASP
    /// argon2id cost, per minute 5 logins per account and address, 100 per account and 20
    /// per address, logins remembered 30 days, no request limit, no trusted proxies.
    pub fn new(signing_key: SigningKey) -> Self {
        Self {
            signing_key,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            session_max: Duration::from_secs(30 * 24 * 3600),
            api_key_max_ttl: None,
            hash_cost: HashCost::default(),
            login_per_account_address: 5,
            login_per_account: 100,
            login_remember: Duration::from_secs(30 * 24 * 3600),
            login_per_address: 20,
            login_window: Duration::from_secs(60),
            requests_per_minute: 0,
            trusted_proxies: TrustedProxies::default(),
            signup: Signup::Off,
            signup_domains: Vec::new(),
            public_url: None,
            require_mfa_for_admins: false,
            oidc: Vec::new(),
            require_verified_email: false,
            mail: None,
            verify_email_ttl: Duration::from_secs(24 * 3600),
            password_reset_ttl: Duration::from_secs(30 * 60),
        }
    }
}

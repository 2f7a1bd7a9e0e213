//! Authentication: who a request is, and the limits on trying.
//!
//! Layout, one concern per file:
//! - this file: the [`Auth`] service kept in `AppState`, which turns a credential into a
//!   principal (`authenticate`) and applies the rate limits;
//! - `config`: [`AuthConfig`], every setting it takes, and [`Signup`];
//! - `clock`: [`Clock`], the time everything here goes by, and the tests' [`ManualClock`];
//! - `password`: argon2id hashing on the blocking pool ([`HashCost`]);
//! - `token`: access tokens (HS256 JWTs, algorithm pinned);
//! - `cache`: the credential cache, keyed by API-key digest or by user, version and session;
//! - `secret`: [`SigningKey`], digests, and new refresh tokens and API keys;
//! - `limit`: the keyed fixed-window rate limiter, and the remembered logins;
//! - `mfa`: second factors: TOTP secrets and codes (`totp-rs`), recovery codes, and the
//!   token between a sign-in's two steps;
//! - `oidc`: the OpenID Connect client: providers, cached discovery and key sets, the code
//!   exchange with PKCE, and ID tokens checked against the provider's keys;
//! - `table`: the bounded table of expiring entries under both, keyed by digests;
//! - `client`: the client's address, with the [`TrustedProxies`] whose `X-Forwarded-For`
//!   is believed, and the bucket an address is limited by (an IPv6 address by its /64);
//! - `error`: [`AuthError`] and its one conversion into the error envelope;
//! - `counters`: [`AuthCounters`], cache hits and misses, refusals and rate limits for
//!   `/metrics`;
//! - `ticket`: stream tickets, the short-lived signed tokens a browser's `EventSource`
//!   opens a change feed with (never accepted as a Bearer credential);
//! - `stream`: what a change-feed stream was opened with ([`StreamAuth`]), checked again
//!   ([`Standing`]) whenever [`Auth::credential_changes`] says credentials may have changed.
//!
//! Turning a request into a principal is the `Caller` extractor (`crate::extract`), which
//! calls [`Auth::authenticate`].

mod cache;
mod client;
mod clock;
mod config;
mod counters;
mod error;
mod limit;
mod mfa;
pub mod oidc;
mod password;
mod secret;
mod stream;
mod table;
mod ticket;
mod token;

pub use client::TrustedProxies;
pub(crate) use client::{address_bucket, client_address};
pub use clock::{Clock, ManualClock};
pub use config::{AuthConfig, Signup};
pub use counters::AuthCounters;
use counters::{Failure, Limiter};
pub use error::AuthError;
pub(crate) use mfa::{
    Code, MFA_TOKEN_PREFIX, new_mfa_token, new_recovery_codes, new_secret, otpauth_url,
};
pub use password::HashCost;
pub use secret::SigningKey;
pub(crate) use secret::{Digest, REFRESH_PREFIX, new_api_key, new_refresh_token, random_b64};
pub use stream::{Standing, StreamAuth};
pub use ticket::TICKET_TTL;

use cache::{CredentialCache, CredentialKey, Vouched};
use limit::{RateLimiter, Refused, Remembered};
use password::Passwords;
use plinth_core::auth::Email;
use plinth_core::{Principal, Role, Timestamp};
use plinth_store::{AuditEvent, Event, Store, User, WriteCtx};
use secret::API_KEY_PREFIX;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use table::Key;
use ticket::Tickets;
use token::AccessTokens;
use tokio::sync::watch;
use uuid::Uuid;

/// How often an API key's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A freshly issued token pair.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenPair {
    /// The JWT.
    pub(crate) access_token: String,
    /// The refresh token (shown once).
    pub(crate) refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub(crate) token_type: &'static str,
    /// Seconds until the access token expires.
    pub(crate) expires_in: u64,
}

/// The authentication service.
#[derive(Debug)]
pub struct Auth {
    config: AuthConfig,
    clock: Clock,
    passwords: Passwords,
    tokens: AccessTokens,
    login_account_addresses: RateLimiter,
    login_accounts: RateLimiter,
    login_addresses: RateLimiter,
    /// (account, address) pairs that logged in recently: exempt from `login_accounts`.
    known_logins: Remembered,
    requests: RateLimiter,
    /// Wrong codes against each second-step sign-in token (by digest): the last one allowed
    /// voids the token. Per instance, like the login limiters; the void itself is stored.
    mfa_failures: RateLimiter,
    /// When each API key's `last_used_at` was last written; bounds those writes.
    touched: Mutex<HashMap<Uuid, Instant>>,
    vouched: CredentialCache,
    /// What `/metrics` shows of authentication.
    counters: AuthCounters,
    /// Signs and checks stream tickets.
    tickets: Tickets,
    /// Bumped after cached credentials are forgotten (any credential change, here or
    /// announced by another instance): open streams check their credential again.
    changes: watch::Sender<u64>,
    /// What streams' checks learned from the store since the last bump.
    rechecked: stream::Rechecked,
    /// The OpenID Connect client.
    oidc: oidc::Oidc,
}

impl Auth {
    /// Builds the service on the system clock; fails on unusable argon2 parameters.
    pub fn new(config: AuthConfig) -> Result<Self, String> {
        Self::with_clock(config, Clock::system())
    }

    /// As [`Self::new`], going by `clock` (tests pass a [`ManualClock`]'s).
    pub fn with_clock(config: AuthConfig, clock: Clock) -> Result<Self, String> {
        let window = config.login_window;
        Ok(Self {
            passwords: Passwords::new(config.hash_cost)?,
            tokens: AccessTokens::new(&config.signing_key, config.access_ttl)?,
            tickets: Tickets::new(&config.signing_key)?,
            changes: watch::Sender::new(0),
            rechecked: stream::Rechecked::default(),
            oidc: oidc::Oidc::new(config.oidc.clone()),
            login_account_addresses: RateLimiter::new(
                config.login_per_account_address,
                window,
                clock.clone(),
            ),
            login_accounts: RateLimiter::new(config.login_per_account, window, clock.clone()),
            login_addresses: RateLimiter::new(config.login_per_address, window, clock.clone()),
            known_logins: Remembered::new(config.login_remember, clock.clone()),
            requests: RateLimiter::new(
                config.requests_per_minute,
                Duration::from_secs(60),
                clock.clone(),
            ),
            mfa_failures: RateLimiter::new(
                mfa::MFA_TOKEN_TRIES - 1,
                mfa::MFA_TOKEN_TTL,
                clock.clone(),
            ),
            touched: Mutex::new(HashMap::new()),
            vouched: CredentialCache::default(),
            counters: AuthCounters::new(),
            clock,
            config,
        })
    }

    /// What authentication counted, for `/metrics`.
    pub(crate) fn counters(&self) -> &AuthCounters {
        &self.counters
    }

    /// The OpenID Connect client.
    pub(crate) fn oidc(&self) -> &oidc::Oidc {
        &self.oidc
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Hashes a password with argon2id, off the async threads.
    pub async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        self.passwords.hash(password).await
    }

    /// Checks a password against a stored hash, or against a dummy hash when there is no
    /// user, so both cases cost the same.
    pub(crate) async fn verify_password(&self, hash: Option<&str>, password: &str) -> bool {
        let ok = self.passwords.verify(hash, password).await;
        if !ok {
            self.counters.failed(Failure::Password);
        }
        ok
    }

    /// Issues an access token for `user` outside any session, and its lifetime in seconds.
    pub fn issue_access(&self, user: &User) -> Result<(String, u64), AuthError> {
        self.tokens.issue(user, None, &self.clock)
    }

    /// Issues an access token for `user` in `session` (its refresh-token family), and its
    /// lifetime in seconds: tickets made from it end with the session.
    pub(crate) fn issue_session_access(
        &self,
        user: &User,
        session: Uuid,
    ) -> Result<(String, u64), AuthError> {
        self.tokens.issue(user, Some(session), &self.clock)
    }

    /// Issues an access token and a new refresh-token family for `user`, whose login
    /// `ctx` (acting as that user) audits.
    pub(crate) async fn issue_pair(
        &self,
        store: &dyn Store,
        ctx: &WriteCtx,
        user: &User,
    ) -> Result<TokenPair, AuthError> {
        let session = Uuid::now_v7();
        let (access_token, expires_in) = self.issue_session_access(user, session)?;
        let (refresh_token, digest) = new_refresh_token()?;
        store
            .insert_refresh(
                ctx,
                user.id,
                session,
                digest.as_str(),
                self.refresh_expiry(),
                self.now(),
            )
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in,
        })
    }

    /// When a refresh token issued now expires.
    pub(crate) fn refresh_expiry(&self) -> Timestamp {
        Timestamp::from_system(self.clock.now() + self.config.refresh_ttl)
    }

    /// The current time by this service's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.timestamp()
    }

    /// The time `by` ago, by this service's clock (the epoch if that is before it).
    pub(crate) fn ago(&self, by: Duration) -> Timestamp {
        let now = self.clock.now();
        Timestamp::from_system(now.checked_sub(by).unwrap_or(std::time::UNIX_EPOCH))
    }

    /// The time `by` from now, by this service's clock.
    pub(crate) fn after(&self, by: Duration) -> Timestamp {
        Timestamp::from_system(self.clock.now() + by)
    }

    /// Sessions (refresh-token families) started at or before this are over.
    pub(crate) fn session_cutoff(&self) -> Timestamp {
        self.ago(self.config.session_max)
    }

    /// Turns credentials into a principal: a guest for none; [`AuthError::Refused`] for
    /// credentials that are present but not valid (never silently a guest).
    ///
    /// Records who it is on the current (request) span: `user:<id>`, `key:<prefix>` (the
    /// API key's public prefix, never the key) or `guest`. With the principal comes the id
    /// of the API key it authenticated with, if it used one.
    pub(crate) async fn authenticate(
        &self,
        store: &dyn Store,
        credential: Option<&str>,
    ) -> Result<(Principal, Option<Uuid>), AuthError> {
        let span = tracing::Span::current();
        let Some(credential) = credential else {
            span.record("principal", "guest");
            return Ok((Principal::guest(), None));
        };
        // Access tokens: the signature and expiry are checked every time (cheap); only the
        // account lookup is cached, by user and version.
        let key = self.credential_key(credential)?;
        let vouched = self.vouch(store, key).await?;
        if let Some(key) = vouched.key_id {
            self.touch(store, key).await;
        }
        span.record("principal", vouched.label.as_str());
        Ok((vouched.principal, vouched.key_id))
    }

    /// What a presented credential is looked up by: an API key by its digest, an access
    /// token (its signature and expiry checked here) by its user and account version.
    fn credential_key(&self, credential: &str) -> Result<CredentialKey, AuthError> {
        if is_api_key(credential) {
            return Ok(CredentialKey::ApiKey(Digest::of(credential)));
        }
        let claims = self
            .tokens
            .verify(credential, &self.clock)
            .inspect_err(|_| self.counters.failed(Failure::Token))?;
        Ok(CredentialKey::Account {
            user: claims.user,
            version: claims.version,
            session: claims.session,
        })
    }

    /// The session (refresh-token family) an access token was issued in, if it is a valid
    /// access token issued in one: `None` for an API key, a token issued outside a session,
    /// or anything refused. Checks only the signature and expiry: call it on a credential
    /// [`Self::authenticate`] accepted.
    pub(crate) fn access_session(&self, credential: &str) -> Option<Uuid> {
        if is_api_key(credential) {
            return None;
        }
        self.tokens.verify(credential, &self.clock).ok()?.session
    }

    /// What the database (or the credential cache) says of a credential: refused when it
    /// is unknown, revoked, changed or past an API key's expiry.
    async fn vouch(&self, store: &dyn Store, key: CredentialKey) -> Result<Vouched, AuthError> {
        let cached = self.vouched.get(&key, &self.clock);
        self.counters.cache(cached.is_some());
        let vouched = match cached {
            Some(v) => v,
            None => {
                let v = ask_store(store, &key, self.config.require_mfa_for_admins)
                    .await?
                    .ok_or_else(|| {
                        self.counters.failed(Failure::Unknown);
                        AuthError::Refused
                    })?;
                self.vouched.put(key, v.clone(), &self.clock);
                v
            }
        };
        if vouched.expires_at.is_some_and(|e| e <= self.now()) {
            self.counters.failed(Failure::Expired);
            return Err(AuthError::Refused);
        }
        Ok(vouched)
    }

    /// Forgets every cached credential and tells open streams to check theirs again:
    /// called after any change to an account, session or key made through this instance,
    /// so it takes effect here at once, and on another instance's notice.
    pub(crate) fn forget_credentials(&self) {
        self.vouched.clear();
        // After the clear: a stream woken by this finds nothing stale in the cache.
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    async fn touch(&self, store: &dyn Store, key: Uuid) {
        let due = match self.touched.lock() {
            Ok(mut t) => {
                let now = self.clock.instant();
                let due = t
                    .get(&key)
                    .is_none_or(|last| now.duration_since(*last) >= TOUCH_EVERY);
                if due {
                    t.insert(key, now);
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = store.touch_api_key(key).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
    }

    /// Counts a login attempt (or a guess at the current password) for an account from a
    /// client address, against three limits: the address for any account, the account from
    /// this address (strict), and the account from all addresses (a much higher ceiling,
    /// which does not apply to an address the account logged in from recently). Addresses
    /// count by [`client::address_bucket`]. A refusal is logged as a `login_throttled`
    /// security event; the first refusal of a key's window (not every one: a throttled
    /// attempt costs the client nothing) is also audited as `auth.throttled`.
    pub(crate) async fn check_login(
        &self,
        store: &dyn Store,
        attempt: &LoginAttempt<'_>,
    ) -> Result<(), AuthError> {
        let bucket = client::address_bucket(attempt.address);
        let pair = Key::of(&[&bucket, attempt.account]);
        // In this order, stopping at the first refusal: an attempt refused for its address
        // leaves no trace under the account (so a flood of accounts from one address adds no
        // entries), and attempts refused for one address do not count against the
        // account's ceiling, so hammering from one address cannot lock the account out
        // elsewhere.
        let refused = self
            .login_addresses
            .check(&Key::of(&[&bucket]))
            .map_err(|r| ("address", r))
            .and_then(|()| {
                self.login_account_addresses
                    .check(&pair)
                    .map_err(|r| ("account_address", r))
            })
            .and_then(|()| {
                if self.known_logins.knows(&pair) {
                    return Ok(());
                }
                self.login_accounts
                    .check(&Key::of(&[attempt.account]))
                    .map_err(|r| ("account", r))
            });
        let Err((
            limit,
            Refused {
                retry_after,
                table_full,
                first,
            },
        )) = refused
        else {
            return Ok(());
        };
        self.counters.limited(Limiter::of_login(limit));
        tracing::warn!(
            target: "plinth::security",
            event = "login_throttled",
            request_id = attempt.ctx.request_id,
            route = attempt.route,
            address = attempt.address,
            limit,
            table_full,
            retry_after_s = retry_after.as_secs(),
            "login attempts over a limit; refused without checking the password"
        );
        if first {
            // A limit on the account names it, when there is one (never the email tried).
            let target = match (limit, Email::parse(attempt.account)) {
                ("address", _) | (_, Err(_)) => None,
                (_, Ok(email)) => store.find_user_by_email(&email).await?.map(|u| u.id),
            };
            let event = AuditEvent {
                event: Event::Throttled,
                target,
                changes: serde_json::json!({ "limit": limit }),
            };
            store.audit_event(attempt.ctx, event).await?;
        }
        Err(AuthError::RateLimited { retry_after })
    }

    /// A successful login clears the count of the account from that address, and remembers
    /// the pair, which the account's ceiling then spares (the per-address count and the
    /// ceiling keep counting until their window ends).
    pub(crate) fn login_succeeded(&self, account: &str, address: &str) {
        let pair = Key::of(&[&client::address_bucket(address), account]);
        self.login_account_addresses.reset(&pair);
        self.known_logins.remember(&pair);
    }

    /// Counts a request for a principal key (user id or client address).
    /// `key` names the principal; it is only made when the limit is on, so an unlimited
    /// server spends nothing per request here.
    pub(crate) fn check_request(&self, key: impl FnOnce() -> String) -> Result<(), AuthError> {
        if !self.requests.enabled() {
            return Ok(());
        }
        self.requests.check(&Key::of(&[&key()])).map_err(|r| {
            self.counters.limited(Limiter::Requests);
            AuthError::RateLimited {
                retry_after: r.retry_after,
            }
        })
    }
}

/// One attempt at a password, for [`Auth::check_login`].
#[derive(Debug)]
pub(crate) struct LoginAttempt<'a> {
    /// The normalised email (whether or not the account exists).
    pub(crate) account: &'a str,
    /// The client's address ([`client_address`]).
    pub(crate) address: &'a str,
    /// Who tries (a guest logging in, or the user guessing at their own password), for the
    /// log line and the audit entry.
    pub(crate) ctx: &'a WriteCtx,
    /// For the log line.
    pub(crate) route: &'a str,
}

/// What the database says of a credential whose signature (if any) checked out. With
/// `require_mfa_for_admins`, an admin's access token acts as a `user` while the admin has no
/// TOTP on (API keys keep their role: they never sign in).
async fn ask_store(
    store: &dyn Store,
    key: &CredentialKey,
    require_mfa_for_admins: bool,
) -> Result<Option<Vouched>, AuthError> {
    match key {
        CredentialKey::ApiKey(digest) => {
            let Some((key, user)) = store.find_api_key(digest.as_str()).await? else {
                return Ok(None);
            };
            Ok(Some(Vouched {
                // A key never acts above its user's current role.
                principal: Principal::user(user.id, key.role.min(user.role)),
                label: format!("key:{}", key.prefix),
                key_id: Some(key.id),
                expires_at: key.expires_at,
            }))
        }
        CredentialKey::Account {
            user,
            version,
            session,
        } => {
            // The user must still exist, unchanged since the token was issued: a new
            // password, role or email ends every access token at once.
            let Some(u) = store
                .get_user(*user)
                .await?
                .filter(|u| u.version == *version)
            else {
                return Ok(None);
            };
            // And the token's session must still be on: ending it (a logout, a reuse, the
            // session list) ends its access tokens at once too.
            if let Some(family) = session
                && !store.refresh_family_live(*family).await?
            {
                return Ok(None);
            }
            let role = if require_mfa_for_admins
                && u.role == Role::Admin
                && !store.get_totp(u.id).await?.is_some_and(|t| t.enabled())
            {
                Role::User
            } else {
                u.role
            };
            Ok(Some(Vouched {
                principal: Principal::user(u.id, role),
                label: format!("user:{}", u.id),
                key_id: None,
                expires_at: None,
            }))
        }
    }
}

/// Whether a presented credential is an API key (rather than an access token).
pub(crate) fn is_api_key(credential: &str) -> bool {
    credential.starts_with(API_KEY_PREFIX)
}

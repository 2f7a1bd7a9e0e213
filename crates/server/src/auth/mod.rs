//! Authentication: password hashing (argon2id), access tokens (HS256 JWTs, algorithm
//! pinned), refresh tokens and API keys (random, stored as SHA-256 digests), and the rate
//! limiters that guard login and requests.
//!
//! Layout: this file has [`AuthConfig`] and the [`Auth`] service kept in `AppState`;
//! [`limit`] has the keyed [`RateLimiter`]. Turning a request into a principal is the
//! `Caller` extractor (`crate::extract`), which calls [`Auth::authenticate`].

pub mod limit;

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use limit::RateLimiter;
use plinth_core::auth::{parse_role, role_name};
use plinth_core::{ErrorCode, Principal, Role, Timestamp};
use plinth_store::{Store, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Prefix of API keys: makes them recognisable to secret scanners and to Plinth.
pub const API_KEY_PREFIX: &str = "plk_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "plr_";
/// Smallest signing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The `iss` claim of Plinth's tokens.
const ISSUER: &str = "plinth";
/// How long a checked credential is trusted without asking the database again. Changes made
/// through this instance clear the cache at once; other instances see them within this.
const CREDENTIAL_TTL: Duration = Duration::from_millis(500);
/// Drop expired cache entries once the cache holds this many.
const CREDENTIAL_SWEEP_AT: usize = 10_000;

/// A credential the database vouched for recently.
#[derive(Debug, Clone)]
struct Vouched {
    principal: Principal,
    /// What the request span records (`user:<id>` or `key:<prefix>`).
    label: String,
    /// The API key, to record its use.
    key_id: Option<Uuid>,
    /// The API key's own expiry.
    expires_at: Option<Timestamp>,
    /// When the database must be asked again.
    until: Instant,
}

/// How often an API key's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// argon2id cost parameters. Defaults: the OWASP cheat sheet's first recommendation
/// (19 MiB, 2 iterations, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// A signing key; never printed.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// A key from raw bytes; refuses keys shorter than [`MIN_KEY_BYTES`] or with almost no
    /// variety (a repeated character, say).
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the signing key must be at least {MIN_KEY_BYTES} bytes"
            ));
        }
        let mut distinct = bytes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 12 {
            return Err(
                "the signing key has too little entropy (too few distinct bytes)".to_owned(),
            );
        }
        Ok(Self(bytes))
    }

    /// A fresh random key of 48 bytes.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = vec![0u8; 48];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
        Ok(Self(bytes))
    }

    /// The key, for writing to a key file.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(****)")
    }
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 key for access tokens.
    pub signing_key: SigningKey,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_ttl: Duration,
    /// argon2id cost.
    pub hash_cost: HashCost,
    /// Login attempts per account per window.
    pub login_per_account: u32,
    /// Login attempts per client address per window.
    pub login_per_address: u32,
    /// The login rate-limit window.
    pub login_window: Duration,
    /// Requests per principal (user id, or client address for guests) per minute; 0 = off.
    pub requests_per_minute: u32,
}

impl AuthConfig {
    /// Defaults around a signing key: 15-minute access tokens, 30-day refresh tokens, OWASP
    /// argon2id cost, 5 logins per account and 20 per address per minute, no request limit.
    pub fn new(signing_key: SigningKey) -> Self {
        Self {
            signing_key,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            hash_cost: HashCost::default(),
            login_per_account: 5,
            login_per_address: 20,
            login_window: Duration::from_secs(60),
            requests_per_minute: 0,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The user's version when the token was issued: any change to the account (password,
    /// role, email) ends its access tokens at once.
    ver: i64,
    role: String,
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A freshly issued token pair.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// The refresh token (shown once).
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The authentication service.
pub struct Auth {
    config: AuthConfig,
    params: Params,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// A hash of a random password, verified when the email is unknown so that a wrong
    /// password and an unknown email take the same time.
    dummy_hash: String,
    /// Bounds concurrent argon2 computations (each takes ~20 MiB and tens of ms of CPU).
    hashing: Semaphore,
    login_accounts: RateLimiter,
    login_addresses: RateLimiter,
    requests: RateLimiter,
    /// When each API key's `last_used_at` was last written; bounds those writes.
    touched: Mutex<HashMap<Uuid, Instant>>,
    /// Credentials checked in the last [`CREDENTIAL_TTL`], by digest (API keys) or by user
    /// and account version (access tokens). Short critical sections, never across an await.
    vouched: Mutex<HashMap<String, Vouched>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a secret, hex: how refresh tokens and API keys are stored and looked up.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_b64(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

impl Auth {
    /// Builds the service; fails on unusable argon2 parameters.
    pub fn new(config: AuthConfig) -> Result<Self, String> {
        let c = config.hash_cost;
        let params = Params::new(c.memory_kib, c.iterations, c.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "iat"]);
        validation.leeway = 5;
        let dummy = random_b64(24).map_err(|_| "no randomness available".to_owned())?;
        let dummy_hash = hash_with(&params, &dummy)?;
        let window = config.login_window;
        Ok(Self {
            encoding: EncodingKey::from_secret(config.signing_key.expose()),
            decoding: DecodingKey::from_secret(config.signing_key.expose()),
            validation,
            dummy_hash,
            hashing: Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            ),
            login_accounts: RateLimiter::new(config.login_per_account, window),
            login_addresses: RateLimiter::new(config.login_per_address, window),
            requests: RateLimiter::new(config.requests_per_minute, Duration::from_secs(60)),
            touched: Mutex::new(HashMap::new()),
            vouched: Mutex::new(HashMap::new()),
            params,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Hashes a password with argon2id, off the async threads.
    pub async fn hash_password(&self, password: &str) -> Result<String, ApiError> {
        let _permit = self.hashing.acquire().await.map_err(ApiError::internal)?;
        let (params, password) = (self.params.clone(), password.to_owned());
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Checks a password against a stored hash, or against a dummy hash when there is no
    /// user, so both cases cost the same.
    pub async fn verify_password(&self, hash: Option<&str>, password: &str) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        ok && known
    }

    /// Issues an access token for `user`.
    pub fn issue_access(&self, user: &User) -> Result<(String, u64), ApiError> {
        let now = unix_now();
        let ttl = self.config.access_ttl.as_secs();
        let claims = Claims {
            sub: user.id.to_string(),
            ver: user.version,
            role: role_name(user.role).to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            jti: Uuid::now_v7().simple().to_string(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(ApiError::internal)?;
        Ok((token, ttl))
    }

    /// Issues an access token and a new refresh-token family for `user`.
    pub async fn issue_pair(&self, store: &dyn Store, user: &User) -> Result<TokenPair, ApiError> {
        let (access_token, expires_in) = self.issue_access(user)?;
        let (refresh_token, hash) = new_refresh_token()?;
        store
            .insert_refresh(user.id, Uuid::now_v7(), &hash, self.refresh_expiry())
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in,
        })
    }

    /// When a refresh token issued now expires.
    pub fn refresh_expiry(&self) -> Timestamp {
        Timestamp::from_system(SystemTime::now() + self.config.refresh_ttl)
    }

    /// The user id and account version in a valid access token.
    fn verify_access(&self, token: &str) -> Option<(Uuid, i64)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        Some((Uuid::try_parse(&data.claims.sub).ok()?, data.claims.ver))
    }

    /// Turns credentials into a principal: `None` for a guest; an error for credentials that
    /// are present but not valid (never silently a guest).
    ///
    /// Records who it is on the current (request) span: `user:<id>`, `key:<prefix>` (the
    /// API key's public prefix, never the key) or `guest`.
    pub async fn authenticate(
        &self,
        store: &dyn Store,
        credential: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let span = tracing::Span::current();
        let Some(credential) = credential else {
            span.record("principal", "guest");
            return Ok(Principal::guest());
        };
        let refused =
            || ApiError::new(ErrorCode::Unauthenticated, "invalid or expired credentials");
        let now = Timestamp::from_system(SystemTime::now());
        // Access tokens: the signature and expiry are checked every time (cheap); only the
        // account lookup is cached, by user and version.
        let cache_key = if credential.starts_with(API_KEY_PREFIX) {
            digest(credential)
        } else {
            let (id, version) = self.verify_access(credential).ok_or_else(refused)?;
            format!("{id}:{version}")
        };
        let vouched = match self.vouched(&cache_key) {
            Some(v) => v,
            None => {
                let v = self
                    .ask_store(store, credential, &cache_key)
                    .await?
                    .ok_or_else(refused)?;
                self.remember(cache_key, v.clone());
                v
            }
        };
        if vouched.expires_at.is_some_and(|e| e <= now) {
            return Err(refused());
        }
        if let Some(key) = vouched.key_id {
            self.touch(store, key).await;
        }
        span.record("principal", vouched.label.as_str());
        Ok(vouched.principal)
    }

    /// What the database says of a credential whose signature (if any) checked out.
    async fn ask_store(
        &self,
        store: &dyn Store,
        credential: &str,
        cache_key: &str,
    ) -> Result<Option<Vouched>, ApiError> {
        let until = Instant::now() + CREDENTIAL_TTL;
        if credential.starts_with(API_KEY_PREFIX) {
            let Some((key, user)) = store.find_api_key(cache_key).await? else {
                return Ok(None);
            };
            return Ok(Some(Vouched {
                // A key never acts above its user's current role.
                principal: Principal::user(user.id, key.role.min(user.role)),
                label: format!("key:{}", key.prefix),
                key_id: Some(key.id),
                expires_at: key.expires_at,
                until,
            }));
        }
        let Some((id, version)) = cache_key.split_once(':') else {
            return Ok(None);
        };
        let (Ok(id), Ok(version)) = (Uuid::try_parse(id), version.parse::<i64>()) else {
            return Ok(None);
        };
        // The user must still exist, unchanged since the token was issued: a new password,
        // role or email ends every access token at once.
        let user = store.get_user(id).await?.filter(|u| u.version == version);
        Ok(user.map(|u| Vouched {
            principal: Principal::user(u.id, u.role),
            label: format!("user:{}", u.id),
            key_id: None,
            expires_at: None,
            until,
        }))
    }

    fn vouched(&self, cache_key: &str) -> Option<Vouched> {
        let cache = self.vouched.lock().ok()?;
        cache
            .get(cache_key)
            .filter(|v| v.until > Instant::now())
            .cloned()
    }

    fn remember(&self, cache_key: String, v: Vouched) {
        if let Ok(mut cache) = self.vouched.lock() {
            if cache.len() >= CREDENTIAL_SWEEP_AT {
                let now = Instant::now();
                cache.retain(|_, v| v.until > now);
            }
            cache.insert(cache_key, v);
        }
    }

    /// Forgets every cached credential: called after any change to an account or key made
    /// through this instance, so it takes effect here at once.
    pub fn forget_credentials(&self) {
        if let Ok(mut cache) = self.vouched.lock() {
            cache.clear();
        }
    }

    async fn touch(&self, store: &dyn Store, key: Uuid) {
        let due = match self.touched.lock() {
            Ok(mut t) => {
                let now = Instant::now();
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

    /// Counts a login attempt for an account and a client address.
    pub fn check_login(&self, account: &str, address: &str) -> Result<(), ApiError> {
        let by_address = self.login_addresses.check(address);
        let by_account = self.login_accounts.check(account);
        match by_address.and(by_account) {
            Ok(()) => Ok(()),
            Err(retry) => Err(rate_limited(retry)),
        }
    }

    /// A successful login clears the account's count.
    pub fn login_succeeded(&self, account: &str) {
        self.login_accounts.reset(account);
    }

    /// Counts a request for a principal key (user id or client address).
    pub fn check_request(&self, key: &str) -> Result<(), ApiError> {
        self.requests.check(key).map_err(rate_limited)
    }
}

fn rate_limited(retry: Duration) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, "too many requests; retry later").with_retry_after(retry)
}

fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A new refresh token and its digest.
pub fn new_refresh_token() -> Result<(String, String), ApiError> {
    let token = format!("{REFRESH_PREFIX}{}", random_b64(32)?);
    let hash = digest(&token);
    Ok((token, hash))
}

/// A new API key: the key (shown once), its display prefix and its digest.
pub fn new_api_key() -> Result<(String, String, String), ApiError> {
    let mut id = [0u8; 4];
    getrandom::fill(&mut id).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let prefix = format!(
        "{API_KEY_PREFIX}{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let key = format!("{prefix}_{}", random_b64(32)?);
    let hash = digest(&key);
    Ok((key, prefix, hash))
}

/// Parses a role sent by a client.
pub fn role_from_client(s: &str) -> Result<Role, ApiError> {
    parse_role(s).map_err(|reason| ApiError::invalid("role", reason))
}

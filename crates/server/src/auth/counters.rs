//! What authentication counts for `/metrics`: credential-cache hits and misses, refusals by
//! reason, and rate-limited attempts by limiter. Every handle is made once, so counting is
//! an atomic add.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A label set of one label.
type One = [(&'static str, &'static str); 1];

/// Why a credential or a password was refused (`auth_failures_total{reason}`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    /// An access token that is malformed, forged, tampered with or expired.
    Token,
    /// A credential the database does not vouch for: an unknown or revoked API key, or an
    /// account deleted or changed since its token was issued.
    Unknown,
    /// An API key past its own expiry.
    Expired,
    /// A wrong password (a login, or a guess at the current password).
    Password,
}

/// Which limit refused (`rate_limited_total{limiter}`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limiter {
    /// Login attempts from one address.
    LoginAddress,
    /// Login attempts at one account from one address.
    LoginAccountAddress,
    /// Login attempts at one account from everywhere.
    LoginAccount,
    /// Requests per principal.
    Requests,
}

impl Limiter {
    /// The limiter by the name `Auth::check_login` gives its limits.
    pub(crate) fn of_login(limit: &str) -> Self {
        match limit {
            "address" => Self::LoginAddress,
            "account_address" => Self::LoginAccountAddress,
            _ => Self::LoginAccount,
        }
    }
}

/// The counters, registered by `Metrics::new`.
#[derive(Debug, Default)]
pub struct AuthCounters {
    cache_hits: Counter,
    cache_misses: Counter,
    failures: Family<One, Counter>,
    limited: Family<One, Counter>,
    /// Handles by [`Failure`], made once.
    failure: [Counter; 4],
    /// Handles by [`Limiter`], made once.
    limiter: [Counter; 4],
}

const FAILURES: [&str; 4] = ["token", "unknown", "expired", "password"];
const LIMITERS: [&str; 4] = [
    "login_address",
    "login_account_address",
    "login_account",
    "requests",
];

impl AuthCounters {
    pub(crate) fn new() -> Self {
        let failures = Family::<One, Counter>::default();
        let limited = Family::<One, Counter>::default();
        let failure = FAILURES.map(|r| failures.get_or_create(&[("reason", r)]).clone());
        let limiter = LIMITERS.map(|l| limited.get_or_create(&[("limiter", l)]).clone());
        Self {
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            failures,
            limited,
            failure,
            limiter,
        }
    }

    /// A credential found in the cache (`hit`) or looked up in the database.
    pub(crate) fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// A refusal.
    pub(crate) fn failed(&self, why: Failure) {
        self.failure[why as usize].inc();
    }

    /// A request or attempt refused by a rate limit.
    pub(crate) fn limited(&self, by: Limiter) {
        self.limiter[by as usize].inc();
    }

    /// Adds the counters to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "credential_cache_hits",
            "Credentials vouched for by the in-process cache",
            self.cache_hits.clone(),
        );
        registry.register(
            "credential_cache_misses",
            "Credentials looked up in the database",
            self.cache_misses.clone(),
        );
        registry.register(
            "auth_failures",
            "Credentials and passwords refused, by reason",
            self.failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests and login attempts refused by a rate limit, by limiter",
            self.limited.clone(),
        );
    }
}

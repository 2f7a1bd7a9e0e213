//! The credential cache: what the database vouched for in the last [`CREDENTIAL_TTL`],
//! so that a burst of requests with one credential costs one lookup.

use super::clock::Clock;
use super::secret::Digest;
use plinth_core::{Principal, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a checked credential is trusted without asking the database again. Changes made
/// through this instance clear the cache at once; other instances are told through the
/// store's invalidation notices, or see them within this at the latest.
pub(crate) const CREDENTIAL_TTL: Duration = Duration::from_millis(500);
/// Drop expired entries once the cache holds this many.
const SWEEP_AT: usize = 10_000;

/// What a cached credential is known by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CredentialKey {
    /// An API key, by its digest.
    ApiKey(Digest),
    /// An access token, by its user, the account version it was issued at and its session
    /// (the signature and expiry are checked on every request; only the account, and that
    /// the session is still on, are cached).
    Account {
        /// The user.
        user: Uuid,
        /// The account version in the token.
        version: i64,
        /// The session (refresh-token family) the token was issued in, if any: once it
        /// ends, the token is refused.
        session: Option<Uuid>,
    },
}

/// A credential the database vouched for.
#[derive(Debug, Clone)]
pub(crate) struct Vouched {
    pub(crate) principal: Principal,
    /// What the request span records (`user:<id>` or `key:<prefix>`).
    pub(crate) label: String,
    /// The API key, to record its use.
    pub(crate) key_id: Option<Uuid>,
    /// The API key's own expiry.
    pub(crate) expires_at: Option<Timestamp>,
}

/// Credentials by key, each until its time is up. Short critical sections, never across
/// an await.
#[derive(Debug, Default)]
pub(crate) struct CredentialCache {
    entries: Mutex<HashMap<CredentialKey, (Vouched, Instant)>>,
}

impl CredentialCache {
    /// The entry for `key`, if it is still fresh by `clock`.
    pub(crate) fn get(&self, key: &CredentialKey, clock: &Clock) -> Option<Vouched> {
        let now = clock.instant();
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone())
    }

    /// Trusts `v` for [`CREDENTIAL_TTL`] from now.
    pub(crate) fn put(&self, key: CredentialKey, v: Vouched, clock: &Clock) {
        let now = clock.instant();
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SWEEP_AT {
                entries.retain(|_, (_, until)| *until > now);
            }
            entries.insert(key, (v, now + CREDENTIAL_TTL));
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clock::ManualClock;
    use plinth_core::Role;

    #[test]
    fn entries_expire_after_the_ttl_by_the_injected_clock() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let cache = CredentialCache::default();
        let user = Uuid::now_v7();
        let key = CredentialKey::Account {
            user,
            version: 1,
            session: None,
        };
        cache.put(key.clone(), entry(user), &clock);
        // Keys are typed: another version or an API key digest is another entry.
        assert!(
            cache
                .get(
                    &CredentialKey::Account {
                        user,
                        version: 2,
                        session: None
                    },
                    &clock
                )
                .is_none()
        );
        assert!(
            cache
                .get(&CredentialKey::ApiKey(Digest::of("x")), &clock)
                .is_none()
        );
        // A token of a session is another entry than one outside any, or of another.
        for session in [Some(Uuid::now_v7()), Some(Uuid::now_v7())] {
            let other = CredentialKey::Account {
                user,
                version: 1,
                session,
            };
            assert!(cache.get(&other, &clock).is_none());
        }
        manual.advance(CREDENTIAL_TTL - Duration::from_millis(1));
        assert!(
            cache.get(&key, &clock).is_some(),
            "fresh just before the TTL"
        );
        manual.advance(Duration::from_millis(1));
        assert!(cache.get(&key, &clock).is_none(), "expired at the TTL");
        cache.put(key.clone(), entry(user), &clock);
        cache.clear();
        assert!(cache.get(&key, &clock).is_none());
    }

    fn entry(user: Uuid) -> Vouched {
        Vouched {
            principal: Principal::user(user, Role::User),
            label: String::new(),
            key_id: None,
            expires_at: None,
        }
    }
}

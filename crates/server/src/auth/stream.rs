//! The credentials of change-feed streams: opening one (with a Bearer credential, a ticket
//! or none), making tickets, and checking an open stream's credential again.
//!
//! A request's credential is checked once; a stream's lives as long as the stream. So a
//! stream keeps what it was opened with ([`StreamAuth`]) and asks [`Auth::revalidate`]
//! whenever [`Auth::credential_changes`] moves (any account, session or key change, here or
//! announced by another instance) and when [`Auth::remaining`] runs out. The answer
//! ([`Standing`]) says whether it goes on, was revoked (`credential_revoked`) or expired
//! (`credential_expired`).
//!
//! A ticket's own 60 seconds only limit *opening* a stream (and reopening it, as
//! `EventSource` does by itself). The stream then follows the credential the ticket was
//! made from: an API key until it is revoked or expires; an access token until it expires,
//! its account changes, or its session ends (logout, refresh-token reuse, the session
//! list), since a ticket travels in URLs and must not outlive a logout.

use super::cache::{CredentialKey, Vouched};
use super::secret::Digest;
use super::ticket::Bound;
use super::{Auth, AuthError, ask_store, is_api_key};
use plinth_core::{Principal, Timestamp};
use plinth_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Forget what checks learned once this many entries pile up within one generation.
const RECHECKED_MAX: usize = 10_000;
/// How long a stream waits to check its credential again after the store failed to answer.
const RECHECK_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What a stream was opened with, to check it again later.
#[derive(Debug, Clone)]
pub struct StreamAuth {
    principal: Principal,
    api_key: Option<Uuid>,
    basis: Basis,
    /// Where [`Auth::credential_changes`] stood before the credential was checked: a
    /// change after it (even before the stream's task starts watching) is not missed.
    generation: u64,
}

#[derive(Debug, Clone)]
enum Basis {
    Guest,
    /// An access token (directly or through a ticket made from one).
    Access {
        user: Uuid,
        version: i64,
        /// Only for a ticket: the session it must not outlive.
        session: Option<Uuid>,
        expires_at: Timestamp,
    },
    /// An API key (directly or through a ticket made from one).
    ApiKey {
        digest: Digest,
        key_id: Uuid,
        expires_at: Option<Timestamp>,
    },
}

impl StreamAuth {
    /// Who the stream serves, as the `Caller` extractor would have it.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The API key the stream was opened with (directly or by a ticket), if any.
    pub fn api_key(&self) -> Option<Uuid> {
        self.api_key
    }

    /// When the credential expires, if it does: the stream ends then.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match &self.basis {
            Basis::Guest => None,
            Basis::Access { expires_at, .. } => Some(*expires_at),
            Basis::ApiKey { expires_at, .. } => *expires_at,
        }
    }
}

/// What a check of an open stream's credential found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Still valid, with the same principal and role: the stream goes on.
    Valid,
    /// Revoked, its account changed or deleted, its session ended, or its role changed:
    /// end the stream with `credential_revoked`.
    Revoked,
    /// Past its expiry: end the stream with `credential_expired`.
    Expired,
}

impl Auth {
    /// A receiver that changes whenever credentials may have changed (see
    /// [`Auth::revalidate`]).
    pub fn credential_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Makes a ticket from the credential a request was authenticated with (`None` for a
    /// guest, refused: a guest needs no ticket). Returns the ticket and its lifetime in
    /// seconds.
    pub async fn issue_ticket(
        &self,
        store: &dyn Store,
        credential: Option<&str>,
    ) -> Result<(String, u64), AuthError> {
        let credential = credential.ok_or(AuthError::Refused)?;
        let (user, bound) = if is_api_key(credential) {
            let digest = Digest::of(credential);
            let vouched = self
                .vouch(store, CredentialKey::ApiKey(digest.clone()))
                .await?;
            let (Some(user), Some(kid)) = (vouched.principal.user_id(), vouched.key_id) else {
                return Err(AuthError::Refused);
            };
            let dig = digest.into_string();
            (user, Bound::ApiKey { kid, dig })
        } else {
            let claims = self.tokens.verify(credential, &self.clock)?;
            // A token of a session that ended is refused here, as on any request.
            let key = CredentialKey::Account {
                user: claims.user,
                version: claims.version,
                session: claims.session,
            };
            self.vouch(store, key).await?;
            let bound = Bound::Access {
                ver: claims.version,
                sid: claims.session,
                exp: claims.expires,
            };
            (claims.user, bound)
        };
        self.tickets.issue(user, bound, &self.clock)
    }

    /// Authenticates the opening of a stream: a Bearer credential (as any request), a
    /// ticket, or neither (a guest). Both at once is refused, as is anything the `Caller`
    /// extractor would refuse; so is a ticket whose credential is no longer valid.
    /// Records who it is on the current span, as `authenticate` does.
    pub async fn open_stream(
        &self,
        store: &dyn Store,
        credential: Option<&str>,
        ticket: Option<&str>,
    ) -> Result<StreamAuth, AuthError> {
        let generation = *self.changes.borrow();
        let (basis, vouched) = match (credential, ticket) {
            (Some(_), Some(_)) => return Err(AuthError::Refused),
            (None, None) => {
                tracing::Span::current().record("principal", "guest");
                return Ok(StreamAuth {
                    principal: Principal::guest(),
                    api_key: None,
                    basis: Basis::Guest,
                    generation,
                });
            }
            (Some(credential), None) => self.open_with_credential(store, credential).await?,
            (None, Some(ticket)) => self.open_with_ticket(store, ticket).await?,
        };
        if let Some(key) = vouched.key_id {
            self.touch(store, key).await;
        }
        tracing::Span::current().record("principal", vouched.label.as_str());
        Ok(StreamAuth {
            principal: vouched.principal,
            api_key: vouched.key_id,
            basis,
            generation,
        })
    }

    async fn open_with_credential(
        &self,
        store: &dyn Store,
        credential: &str,
    ) -> Result<(Basis, Vouched), AuthError> {
        if is_api_key(credential) {
            let digest = Digest::of(credential);
            let vouched = self
                .vouch(store, CredentialKey::ApiKey(digest.clone()))
                .await?;
            let key_id = vouched.key_id.ok_or(AuthError::Refused)?;
            let expires_at = vouched.expires_at;
            let basis = Basis::ApiKey {
                digest,
                key_id,
                expires_at,
            };
            return Ok((basis, vouched));
        }
        let claims = self.tokens.verify(credential, &self.clock)?;
        let vouched = self
            .vouch(
                store,
                CredentialKey::Account {
                    user: claims.user,
                    version: claims.version,
                    session: claims.session,
                },
            )
            .await?;
        let basis = Basis::Access {
            user: claims.user,
            version: claims.version,
            // A Bearer access token ends with its session, as on any request: so does the
            // stream it opened.
            session: claims.session,
            expires_at: unix_timestamp(claims.expires),
        };
        Ok((basis, vouched))
    }

    async fn open_with_ticket(
        &self,
        store: &dyn Store,
        ticket: &str,
    ) -> Result<(Basis, Vouched), AuthError> {
        let ticket = self.tickets.verify(ticket, &self.clock)?;
        let (basis, key) = match ticket.bound {
            Bound::Access { ver, sid, exp } => {
                let basis = Basis::Access {
                    user: ticket.user,
                    version: ver,
                    session: sid,
                    expires_at: unix_timestamp(exp),
                };
                let key = CredentialKey::Account {
                    user: ticket.user,
                    version: ver,
                    session: sid,
                };
                (basis, key)
            }
            bound @ Bound::ApiKey { kid, .. } => {
                let digest = bound.digest().ok_or(AuthError::Refused)?;
                let basis = Basis::ApiKey {
                    digest: digest.clone(),
                    key_id: kid,
                    expires_at: None,
                };
                (basis, CredentialKey::ApiKey(digest))
            }
        };
        let vouched = self.vouch(store, key).await?;
        if vouched.principal.user_id() != Some(ticket.user) {
            return Err(AuthError::Refused);
        }
        let basis = match basis {
            Basis::ApiKey {
                digest,
                key_id: kid,
                ..
            } => {
                if vouched.key_id != Some(kid) {
                    return Err(AuthError::Refused);
                }
                Basis::ApiKey {
                    digest,
                    key_id: kid,
                    expires_at: vouched.expires_at,
                }
            }
            // The session was checked with the credential (its key names it).
            Basis::Access { expires_at, .. } => {
                if expires_at <= self.now() {
                    return Err(AuthError::Refused);
                }
                basis
            }
            Basis::Guest => basis,
        };
        Ok((basis, vouched))
    }

    /// Checks an open stream's credential again, now: still valid with the same principal,
    /// revoked (or changed), or expired. Asks the store at most once per credential (and
    /// per session) between two moves of [`Self::credential_changes`], however many
    /// streams share it. A store failure is an error, not a verdict: the stream may go on
    /// and check again at the next change.
    pub async fn revalidate(
        &self,
        store: &dyn Store,
        stream: &StreamAuth,
    ) -> Result<Standing, AuthError> {
        let now = self.now();
        match &stream.basis {
            Basis::Guest => Ok(Standing::Valid),
            Basis::Access {
                user,
                version,
                session,
                expires_at,
            } => {
                if *expires_at <= now {
                    return Ok(Standing::Expired);
                }
                // The session is checked below, once per session between two changes.
                let key = CredentialKey::Account {
                    user: *user,
                    version: *version,
                    session: None,
                };
                let Some(vouched) = self.recheck(store, key).await? else {
                    return Ok(Standing::Revoked);
                };
                if vouched.principal != stream.principal {
                    return Ok(Standing::Revoked);
                }
                if let Some(family) = session
                    && !self.recheck_session(store, *family).await?
                {
                    return Ok(Standing::Revoked);
                }
                Ok(Standing::Valid)
            }
            Basis::ApiKey { digest, key_id, .. } => {
                let key = CredentialKey::ApiKey(digest.clone());
                let Some(vouched) = self.recheck(store, key).await? else {
                    return Ok(Standing::Revoked);
                };
                if vouched.key_id != Some(*key_id) || vouched.principal != stream.principal {
                    return Ok(Standing::Revoked);
                }
                if vouched.expires_at.is_some_and(|e| e <= now) {
                    return Ok(Standing::Expired);
                }
                Ok(Standing::Valid)
            }
        }
    }

    /// Resolves with [`Standing::Revoked`] or [`Standing::Expired`] once the credential
    /// `stream` was opened with ends: checked again at every move of
    /// [`Self::credential_changes`] since it was opened, and at its expiry. Never resolves
    /// for a guest. A store failure is no verdict: it checks again a little later.
    pub fn watch_stream(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        stream: StreamAuth,
    ) -> impl Future<Output = Standing> + Send + 'static {
        let auth = Arc::clone(self);
        async move {
            if matches!(stream.basis, Basis::Guest) {
                return std::future::pending().await;
            }
            let mut changes = auth.credential_changes();
            // A change between the opening check and now counts as a move.
            let mut due = *changes.borrow_and_update() != stream.generation;
            loop {
                if !due {
                    // Past the expiry yet still valid cannot be; never spin on it.
                    let expiry = auth.remaining(&stream).filter(|d| !d.is_zero());
                    tokio::select! {
                        changed = changes.changed() => {
                            if changed.is_err() {
                                // The sender lives as long as `Auth`: nothing will change.
                                return std::future::pending().await;
                            }
                        }
                        () = sleep_for(expiry) => {}
                    }
                }
                due = false;
                match auth.revalidate(store.as_ref(), &stream).await {
                    Ok(Standing::Valid) => {}
                    Ok(ended) => return ended,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check a stream's credential; trying again");
                        tokio::time::sleep(RECHECK_AFTER_FAILURE).await;
                        due = true;
                    }
                }
            }
        }
    }

    /// How long until the stream's credential expires, by this service's clock (zero once
    /// it has); `None` if it never does.
    pub fn remaining(&self, stream: &StreamAuth) -> Option<Duration> {
        let left = stream.expires_at()?.as_micros() - self.now().as_micros();
        Some(Duration::from_micros(u64::try_from(left).unwrap_or(0)))
    }

    async fn recheck(
        &self,
        store: &dyn Store,
        key: CredentialKey,
    ) -> Result<Option<Vouched>, AuthError> {
        let generation = *self.changes.borrow();
        if let Some(known) = self.rechecked.credential(generation, &key) {
            return Ok(known);
        }
        let found = ask_store(store, &key, self.config.require_mfa_for_admins).await?;
        let current = *self.changes.borrow();
        self.rechecked
            .put_credential(generation, current, key, found.clone());
        Ok(found)
    }

    async fn recheck_session(&self, store: &dyn Store, family: Uuid) -> Result<bool, AuthError> {
        let generation = *self.changes.borrow();
        if let Some(live) = self.rechecked.session(generation, family) {
            return Ok(live);
        }
        let live = store.refresh_family_live(family).await?;
        let current = *self.changes.borrow();
        self.rechecked
            .put_session(generation, current, family, live);
        Ok(live)
    }
}

/// Sleeps `d`, or forever for `None`.
async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// A time in whole seconds since the epoch as a [`Timestamp`].
fn unix_timestamp(secs: i64) -> Timestamp {
    Timestamp::from_micros(secs.saturating_mul(1_000_000))
        .unwrap_or_else(|| Timestamp::from_system(std::time::UNIX_EPOCH))
}

/// What streams' checks learned from the store, valid within one generation of
/// [`Auth::credential_changes`]: an answer fetched before a change is never used after it
/// (unlike the credential cache, which a check running across a change could refill with
/// a stale answer).
#[derive(Debug, Default)]
pub(crate) struct Rechecked {
    inner: Mutex<Generation>,
}

#[derive(Debug, Default)]
struct Generation {
    number: u64,
    credentials: HashMap<CredentialKey, Option<Vouched>>,
    sessions: HashMap<Uuid, bool>,
}

impl Rechecked {
    fn credential(&self, generation: u64, key: &CredentialKey) -> Option<Option<Vouched>> {
        let inner = self.inner.lock().ok()?;
        (inner.number == generation)
            .then(|| inner.credentials.get(key).cloned())
            .flatten()
    }

    fn session(&self, generation: u64, family: Uuid) -> Option<bool> {
        let inner = self.inner.lock().ok()?;
        (inner.number == generation)
            .then(|| inner.sessions.get(&family).copied())
            .flatten()
    }

    /// Keeps an answer fetched in `generation`, unless a change came while fetching it.
    fn put_credential(
        &self,
        generation: u64,
        current: u64,
        key: CredentialKey,
        found: Option<Vouched>,
    ) {
        if let Some(mut inner) = self.entering(generation, current) {
            inner.credentials.insert(key, found);
        }
    }

    fn put_session(&self, generation: u64, current: u64, family: Uuid, live: bool) {
        if let Some(mut inner) = self.entering(generation, current) {
            inner.sessions.insert(family, live);
        }
    }

    /// The table for `generation`, emptied if it held another's or grew too large; `None`
    /// when the answer is already stale.
    fn entering(
        &self,
        generation: u64,
        current: u64,
    ) -> Option<std::sync::MutexGuard<'_, Generation>> {
        if generation != current {
            return None;
        }
        let mut inner = self.inner.lock().ok()?;
        if inner.number != generation
            || inner.credentials.len() + inner.sessions.len() >= RECHECKED_MAX
        {
            *inner = Generation {
                number: generation,
                ..Generation::default()
            };
        }
        Some(inner)
    }
}

//! Stream tickets: what a browser opens a change feed with, since `EventSource` cannot send
//! an `Authorization` header.
//!
//! A ticket is an HS256 JWT like an access token, but it can never stand in for one, nor
//! one for it: it is signed with a key of its own, derived from the signing key (so every
//! instance sharing the signing key checks it), and it carries its own audience. It lives
//! [`TICKET_TTL`] and names the credential it was made from (a [`Bound`]), so that a stream
//! opened with it is checked against that credential for as long as it runs.

use super::AuthError;
use super::clock::Clock;
use super::secret::{Digest, SigningKey};
use super::token::LEEWAY_SECS;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// How long a ticket may be used to open (or reopen) a stream. Short, because it travels in
/// a URL; reusable within it, so `EventSource`'s automatic reconnect works.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// The `iss` claim, as on access tokens.
const ISSUER: &str = "plinth";
/// The `aud` claim: a ticket is for the change-feed endpoints and nothing else.
const AUDIENCE: &str = "plinth:stream-ticket";
/// What the ticket key is derived with: no other key is made this way.
const KEY_LABEL: &[u8] = b"plinth stream ticket key\0";

/// The credential a ticket was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Bound {
    /// An access token: its user and account version, the session it was issued in (if
    /// any), and its own expiry (seconds since the epoch).
    Access {
        /// The account version the token was issued at.
        ver: i64,
        /// The token's session (refresh-token family).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sid: Option<Uuid>,
        /// When the token expires: a stream opened with the ticket ends then.
        exp: i64,
    },
    /// An API key: its id and the digest it is stored under (the digest is not a
    /// credential: it cannot be turned back into the key).
    ApiKey {
        /// The key's id.
        kid: Uuid,
        /// The key's SHA-256 digest, as stored.
        dig: String,
    },
}

impl Bound {
    /// The API key's digest, for an API-key ticket.
    pub(crate) fn digest(&self) -> Option<Digest> {
        match self {
            Self::ApiKey { dig, .. } => Some(Digest::from_stored(dig.clone())),
            Self::Access { .. } => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user the credential belongs to.
    sub: Uuid,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    cred: Bound,
}

/// A checked ticket: who, and from which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// The user.
    pub(crate) user: Uuid,
    /// The credential it was made from.
    pub(crate) bound: Bound,
}

/// Issues and checks tickets.
pub(crate) struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").finish_non_exhaustive()
    }
}

impl Tickets {
    /// Fails only on an empty key, which a digest never is.
    pub(crate) fn new(key: &SigningKey) -> Result<Self, String> {
        let mut hasher = Sha256::new();
        hasher.update(KEY_LABEL);
        hasher.update(key.expose());
        let derived = hasher.finalize();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "iat", "aud"]);
        // Times are compared with the injected clock in `verify`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            encoding: EncodingKey::from_secret(&derived).map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_secret(&derived).map_err(|e| e.to_string())?,
            validation,
        })
    }

    /// A ticket for `user`'s credential `bound`, and its lifetime in seconds.
    pub(crate) fn issue(
        &self,
        user: Uuid,
        bound: Bound,
        clock: &Clock,
    ) -> Result<(String, u64), AuthError> {
        let now = clock.unix_secs();
        let ttl = TICKET_TTL.as_secs();
        let claims = Claims {
            sub: user,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2)),
            jti: Uuid::now_v7().simple().to_string(),
            cred: bound,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::internal)?;
        Ok((token, ttl))
    }

    /// The ticket, if it is genuine, unexpired and not from the future.
    pub(crate) fn verify(&self, ticket: &str, clock: &Clock) -> Result<Ticket, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(ticket, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Refused)?;
        let c = data.claims;
        let now = clock.unix_secs();
        if c.exp < now.saturating_sub(LEEWAY_SECS) || c.iat > now.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Refused);
        }
        Ok(Ticket {
            user: c.sub,
            bound: c.cred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clock::ManualClock;
    use crate::auth::token::AccessTokens;
    use plinth_core::{Role, Timestamp};
    use plinth_store::User;
    use std::time::SystemTime;

    fn key() -> SigningKey {
        SigningKey::new(b"0123456789abcdefghijklmnopqrstuvwxyz".to_vec()).expect("key")
    }

    #[test]
    fn a_ticket_lives_a_minute_and_is_no_access_token_nor_one_a_ticket() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let tickets = Tickets::new(&key()).expect("tickets");
        let user = Uuid::now_v7();
        let bound = Bound::ApiKey {
            kid: Uuid::now_v7(),
            dig: Digest::of("plk_x").into_string(),
        };
        let (ticket, ttl) = tickets.issue(user, bound.clone(), &clock).expect("issue");
        assert_eq!(ttl, 60);
        let checked = tickets.verify(&ticket, &clock).expect("fresh");
        assert_eq!(checked, Ticket { user, bound });

        // Not an access token, though signed from the same key.
        let tokens = AccessTokens::new(&key(), Duration::from_secs(900)).expect("tokens");
        assert!(matches!(
            tokens.verify(&ticket, &clock),
            Err(AuthError::Refused)
        ));
        // Nor is an access token a ticket.
        let t = Timestamp::from_system(SystemTime::now());
        let account = User {
            id: user,
            email: "ada@example.com".to_owned(),
            password_hash: String::new(),
            role: Role::User,
            created_at: t,
            updated_at: t,
            version: 1,
            email_verified_at: None,
        };
        let (access, _) = tokens.issue(&account, None, &clock).expect("token");
        assert!(tickets.verify(&access, &clock).is_err());
        // Another signing key's ticket is refused; so is a tampered one.
        let other = Tickets::new(
            &SigningKey::new(b"abcdefghijklmnopqrstuvwxyz0123456789".to_vec()).expect("key"),
        )
        .expect("tickets");
        assert!(other.verify(&ticket, &clock).is_err());
        let (signed, signature) = ticket.rsplit_once('.').expect("a JWT");
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
        assert!(tickets.verify(&tampered, &clock).is_err());

        // Accepted up to its expiry and the leeway, refused after.
        manual.advance(TICKET_TTL + Duration::from_secs(5));
        assert!(tickets.verify(&ticket, &clock).is_ok());
        manual.advance(Duration::from_secs(1));
        assert!(tickets.verify(&ticket, &clock).is_err());
    }
}

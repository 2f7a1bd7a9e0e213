//! Access tokens: HS256 JWTs with the algorithm pinned in one `Validation`. The times
//! (`exp`, and `nbf` and `iat` in the future) are checked against the injected [`Clock`],
//! not by `jsonwebtoken` against the system time.

use super::AuthError;
use super::clock::Clock;
use super::secret::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use plinth_core::auth::role_name;
use plinth_store::User;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// The `iss` claim of Plinth's tokens.
const ISSUER: &str = "plinth";
/// Clock skew tolerated, in seconds: a token is refused once `exp + LEEWAY` is in the past,
/// or while `nbf - LEEWAY` or `iat - LEEWAY` is still in the future.
pub(super) const LEEWAY_SECS: i64 = 5;

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
    /// Not before: Plinth does not set it, but a token that has one must respect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    jti: String,
    /// The session (refresh-token family) the token was issued in: tickets made from the
    /// token are bound to it, so they end at logout. Absent on tokens issued outside a
    /// session (and on tokens from before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<Uuid>,
}

/// What a valid access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    /// The user.
    pub(crate) user: Uuid,
    /// The account version it was issued at.
    pub(crate) version: i64,
    /// The session it was issued in, if any.
    pub(crate) session: Option<Uuid>,
    /// When it expires, in seconds since the Unix epoch.
    pub(crate) expires: i64,
}

/// Issues and checks access tokens.
pub(crate) struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Fails only on an empty key, which [`SigningKey`] never holds.
    pub(crate) fn new(key: &SigningKey, ttl: Duration) -> Result<Self, String> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "iat"]);
        // `exp` must be present (above) but is compared with the injected clock in
        // `verify`, not with the system time; so is `nbf`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            encoding: EncodingKey::from_secret(key.expose()).map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_secret(key.expose()).map_err(|e| e.to_string())?,
            validation,
            ttl,
        })
    }

    /// An access token for `user`, issued in `session` (if any), and its lifetime in seconds.
    pub(crate) fn issue(
        &self,
        user: &User,
        session: Option<Uuid>,
        clock: &Clock,
    ) -> Result<(String, u64), AuthError> {
        let now = clock.unix_secs();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: user.id.to_string(),
            ver: user.version,
            role: role_name(user.role).to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2)),
            nbf: None,
            jti: Uuid::now_v7().simple().to_string(),
            sid: session,
        };
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(AuthError::internal)?;
        Ok((token, ttl))
    }

    /// What a valid, unexpired access token says.
    pub(crate) fn verify(&self, token: &str, clock: &Clock) -> Result<AccessClaims, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Refused)?;
        let now = clock.unix_secs();
        let c = &data.claims;
        let future = |t: i64| t > now.saturating_add(LEEWAY_SECS);
        if c.exp < now.saturating_sub(LEEWAY_SECS) || future(c.iat) || c.nbf.is_some_and(future) {
            return Err(AuthError::Refused);
        }
        let user = Uuid::try_parse(&c.sub).map_err(|_| AuthError::Refused)?;
        Ok(AccessClaims {
            user,
            version: c.ver,
            session: c.sid,
            expires: c.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clock::ManualClock;
    use plinth_core::{Role, Timestamp};
    use std::time::SystemTime;

    fn user() -> User {
        let t = Timestamp::from_system(SystemTime::now());
        User {
            id: Uuid::now_v7(),
            email: "ada@example.com".to_owned(),
            password_hash: String::new(),
            role: Role::User,
            created_at: t,
            updated_at: t,
            version: 3,
            email_verified_at: None,
        }
    }

    #[test]
    fn a_token_expires_at_exp_plus_the_leeway_by_the_injected_clock() {
        let key = SigningKey::new(b"0123456789abcdefghijklmnopqrstuvwxyz".to_vec()).expect("key");
        let tokens = AccessTokens::new(&key, Duration::from_secs(60)).expect("tokens");
        // A clock far from the system's: the system time must play no part.
        let manual =
            ManualClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let clock = manual.clock();
        let user = user();
        let session = Uuid::now_v7();
        let (token, ttl) = tokens.issue(&user, Some(session), &clock).expect("issue");
        assert_eq!(ttl, 60);
        let claims = tokens.verify(&token, &clock).expect("fresh");
        assert_eq!(
            (claims.user, claims.version, claims.session, claims.expires),
            (user.id, 3, Some(session), 1_000_060)
        );
        // exp = 1_000_060; still accepted at exp + leeway, refused one second later.
        manual.advance(Duration::from_secs(60 + 5));
        assert!(tokens.verify(&token, &clock).is_ok(), "at exp + leeway");
        manual.advance(Duration::from_secs(1));
        assert!(matches!(
            tokens.verify(&token, &clock),
            Err(AuthError::Refused)
        ));
        // A token the system clock calls fresh is expired by the injected one.
        let now = ManualClock::new();
        let (fresh, _) = tokens.issue(&user, None, &now.clock()).expect("issue");
        now.advance(Duration::from_secs(66));
        assert!(tokens.verify(&fresh, &now.clock()).is_err());
    }
}

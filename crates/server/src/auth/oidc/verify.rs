//! The ID token's checks: the signature by a key of the provider's set, with only the
//! algorithm that key declares among RS256 and ES256 (never `none`, never HS*); `iss`,
//! `aud` (and `azp` when there are several audiences), `exp` and `iat` with a minute's
//! leeway; the `nonce` of the pending login.

use super::OidcProvider;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;

/// Leeway on `exp` and `iat`, in seconds.
const LEEWAY: u64 = 60;

/// The class of an ID token's problem: what the answer and the audit trail name (never
/// the token or key material).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    IssuedInFuture,
    Nonce,
}

impl TokenProblem {
    /// The class, as answers and audit entries name it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "no ID token",
            Self::Malformed => "malformed ID token",
            Self::Algorithm => "ID token signed with an algorithm not allowed",
            Self::UnknownKey => "ID token signed by an unknown key",
            Self::Signature => "bad ID token signature",
            Self::Issuer => "wrong ID token issuer",
            Self::Audience => "wrong ID token audience",
            Self::Expired => "expired ID token",
            Self::IssuedInFuture => "ID token issued in the future",
            Self::Nonce => "ID token nonce mismatch",
        }
    }
}

/// The claims Plinth uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IdClaims {
    pub(crate) sub: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    aud: Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
}

impl IdClaims {
    /// Whether the provider says the email is verified (`true`, or the string `"true"` some
    /// providers send).
    pub(crate) fn email_verified(&self) -> bool {
        match &self.email_verified {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }
}

/// The one algorithm `key` may sign with: the one it declares, else the one its type
/// implies; only RS256 and ES256 (P-256).
fn key_algorithm(key: &Jwk) -> Option<Algorithm> {
    let implied = match &key.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    match key.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(implied),
        Some(_) => None,
    }
}

pub(super) fn check(
    token: &str,
    keys: &JwkSet,
    p: &OidcProvider,
    nonce: &str,
) -> Result<IdClaims, TokenProblem> {
    let header = decode_header(token).map_err(|_| TokenProblem::Malformed)?;
    let key = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(TokenProblem::UnknownKey)?;
    let alg = key_algorithm(key).ok_or(TokenProblem::Algorithm)?;
    if header.alg != alg {
        return Err(TokenProblem::Algorithm);
    }
    let decoding = DecodingKey::from_jwk(key).map_err(|_| TokenProblem::UnknownKey)?;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.leeway = LEEWAY;
    validation.set_issuer(&[&p.issuer]);
    validation.set_audience(&[&p.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = decode::<IdClaims>(token, &decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenProblem::Signature,
            K::ExpiredSignature => TokenProblem::Expired,
            K::InvalidIssuer => TokenProblem::Issuer,
            K::InvalidAudience => TokenProblem::Audience,
            K::InvalidAlgorithm => TokenProblem::Algorithm,
            _ => TokenProblem::Malformed,
        }
    })?;
    let claims = data.claims;
    if let Value::Array(auds) = &claims.aud
        && auds.len() > 1
        && claims.azp.as_deref() != Some(p.client_id.as_str())
    {
        return Err(TokenProblem::Audience);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    if claims
        .iat
        .is_some_and(|iat| iat > now.saturating_add(LEEWAY as i64))
    {
        return Err(TokenProblem::IssuedInFuture);
    }
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(TokenProblem::Nonce);
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(TokenProblem::Malformed);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn provider() -> OidcProvider {
        OidcProvider {
            name: "t".to_owned(),
            issuer: "https://issuer.example".to_owned(),
            client_id: "client".to_owned(),
            client_secret: "secret".to_owned(),
            scopes: "openid".to_owned(),
        }
    }

    /// The P-256 public key of RFC 7515 appendix A.3, declaring `alg`.
    fn ec_set(alg: Option<&str>) -> JwkSet {
        let mut key = json!({
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        if let Some(alg) = alg {
            key["alg"] = json!(alg);
        }
        serde_json::from_value(json!({ "keys": [key] })).expect("a key set")
    }

    fn claims() -> Value {
        json!({ "iss": "https://issuer.example", "aud": "client", "sub": "s",
                "exp": 4_000_000_000u64, "nonce": "n" })
    }

    #[test]
    fn an_hs256_token_is_refused_whatever_its_secret() {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        // Signed with the key's public coordinates as an HMAC secret: the classic confusion.
        let secret = EncodingKey::from_secret(b"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
            .expect("an HMAC key");
        let token = encode(&header, &claims(), &secret).expect("sign");
        let got = check(&token, &ec_set(None), &provider(), "n");
        assert_eq!(got.err(), Some(TokenProblem::Algorithm));
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!(
            "{}.{}.",
            part(json!({ "alg": "none", "kid": "k1" })),
            part(claims())
        );
        assert!(check(&token, &ec_set(None), &provider(), "n").is_err());
    }

    #[test]
    fn only_the_algorithm_the_key_declares_among_rs256_and_es256_is_used() {
        assert_eq!(key_algorithm(&ec_set(None).keys[0]), Some(Algorithm::ES256));
        assert_eq!(
            key_algorithm(&ec_set(Some("ES256")).keys[0]),
            Some(Algorithm::ES256)
        );
        assert_eq!(key_algorithm(&ec_set(Some("RS256")).keys[0]), None);
        assert_eq!(key_algorithm(&ec_set(Some("ES384")).keys[0]), None);
        let rsa: JwkSet = serde_json::from_value(json!({ "keys": [{
            "kty": "RSA", "kid": "r", "alg": "RS512", "n": "sXch", "e": "AQAB" }] }))
        .expect("a key set");
        assert_eq!(key_algorithm(&rsa.keys[0]), None);
    }
}

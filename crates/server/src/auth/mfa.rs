//! Second factors: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of
//! skew either way) through `totp-rs`, recovery codes, and the token between a sign-in's
//! two steps. Nothing here touches the store: it makes secrets and codes and checks them.

use super::secret::{Digest, random_b64};
use super::table::Key;
use super::{Auth, AuthError};
use std::time::Duration;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The issuer an authenticator app shows beside the account.
pub(crate) const ISSUER: &str = "Plinth";

/// How many recovery codes an enrolment gets.
pub(crate) const RECOVERY_CODES: usize = 10;

/// How long a sign-in's second step may take.
pub(crate) const MFA_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// Wrong codes a second-step token survives: the fifth voids it.
pub(crate) const MFA_TOKEN_TRIES: u32 = 5;

/// The start of every second-step token (never a Bearer credential, never a refresh token).
pub(crate) const MFA_TOKEN_PREFIX: &str = "plm_";

/// RFC 4648 base32, as authenticator apps read secrets and recovery codes are written.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Bytes of a TOTP secret: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// The TOTP of `secret` (base32), labelled with `account` for the `otpauth://` URL.
fn totp(secret: &str, account: &str) -> Result<Totp, AuthError> {
    let bytes = Secret::try_from_base32(secret)
        .map_err(|_| AuthError::internal("a stored TOTP secret is not base32"))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(bytes)
        .with_account_name(account.replace(':', "%3A"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| AuthError::internal(format!("TOTP parameters: {e}")))
}

/// A new random TOTP secret, base32.
pub(crate) fn new_secret() -> Result<String, AuthError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::internal(format!("no randomness: {e}")))?;
    Ok(Secret::from(bytes).to_base32())
}

/// The `otpauth://totp/…` URL an authenticator app enrols from (the QR code's payload).
pub(crate) fn otpauth_url(secret: &str, account: &str) -> Result<String, AuthError> {
    totp(secret, account)?
        .to_url()
        .map_err(|e| AuthError::internal(format!("otpauth URL: {e}")))
}

/// What a client sent as a second-factor code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// Six digits: a TOTP code.
    Totp(String),
    /// A recovery code, by the digest of its normal form.
    Recovery(Digest),
    /// Neither.
    Malformed,
}

impl Code {
    /// Reads a code: six digits (spaces allowed), or a recovery code in any case, with or
    /// without its dashes.
    pub(crate) fn parse(raw: &str) -> Self {
        if raw.len() > 64 {
            return Self::Malformed;
        }
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Self::Totp(compact);
        }
        if compact.len() == 16 && compact.bytes().all(|b| BASE32.contains(&b)) {
            return Self::Recovery(Digest::of(&compact));
        }
        Self::Malformed
    }
}

/// A new set of recovery codes: each 80 random bits as `XXXX-XXXX-XXXX-XXXX` (base32),
/// with the digests that are stored.
pub(crate) fn new_recovery_codes() -> Result<Vec<(String, Digest)>, AuthError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            getrandom::fill(&mut bytes)
                .map_err(|e| AuthError::internal(format!("no randomness: {e}")))?;
            let bits = bytes
                .iter()
                .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
            let compact: String = (0..16)
                .rev()
                .map(|i| char::from(BASE32[((bits >> (i * 5)) & 31) as usize]))
                .collect();
            let shown = compact
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            Ok((shown, Digest::of(&compact)))
        })
        .collect()
}

/// A new second-step token and its digest.
pub(crate) fn new_mfa_token() -> Result<(String, Digest), AuthError> {
    let token = format!("{MFA_TOKEN_PREFIX}{}", random_b64::<32>()?);
    let digest = Digest::of(&token);
    Ok((token, digest))
}

impl Auth {
    /// Counts a wrong code against the second-step token with `digest`: `true` when it was
    /// the last wrong code the token survives (the caller voids it).
    pub(crate) fn mfa_token_failed(&self, digest: &Digest) -> bool {
        self.mfa_failures
            .check(&Key::of(&[digest.as_str()]))
            .is_err()
    }

    /// When a second-step token made now expires.
    pub(crate) fn mfa_token_expiry(&self) -> plinth_core::Timestamp {
        plinth_core::Timestamp::from_system(self.clock.now() + MFA_TOKEN_TTL)
    }

    /// The time step a six-digit `code` belongs to under `secret`, by this service's clock
    /// (one step either way allowed); `None` when it matches none. Whether the step was
    /// used before is the store's to say.
    pub(crate) fn totp_step(&self, secret: &str, code: &str) -> Result<Option<i64>, AuthError> {
        let now = u64::try_from(self.clock.unix_secs()).unwrap_or(0);
        let step = totp(secret, "")?.check(code, now);
        Ok(step.and_then(|s| i64::try_from(s).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_totp_recovery_or_nothing() {
        assert_eq!(Code::parse("123 456"), Code::Totp("123456".to_owned()));
        assert_eq!(
            Code::parse("abcd-efgh-ijkl-mnop"),
            Code::Recovery(Digest::of("ABCDEFGHIJKLMNOP"))
        );
        for bad in ["12345", "1234567", "abcd-efgh-ijkl-mno1", "", "١٢٣٤٥٦"] {
            assert_eq!(Code::parse(bad), Code::Malformed, "{bad}");
        }
        assert_eq!(Code::parse(&"1".repeat(100)), Code::Malformed);
    }

    #[test]
    fn recovery_codes_are_distinct_80_bit_base32() {
        let codes = new_recovery_codes().expect("codes");
        assert_eq!(codes.len(), RECOVERY_CODES);
        for (shown, digest) in &codes {
            assert_eq!(shown.len(), 19);
            assert_eq!(Code::parse(shown), Code::Recovery(digest.clone()));
        }
        let mut all: Vec<_> = codes.iter().map(|(s, _)| s.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), RECOVERY_CODES);
    }

    #[test]
    fn a_secret_gives_an_otpauth_url_and_checks_codes() {
        let secret = new_secret().expect("secret");
        assert_eq!(secret.len(), 32);
        let url = otpauth_url(&secret, "ann@example.com").expect("url");
        assert!(
            url.starts_with("otpauth://totp/Plinth:ann%40example.com?"),
            "{url}"
        );
        assert!(url.contains(&format!("secret={secret}")));
        let t = totp(&secret, "").expect("totp");
        let code = t.generate(1_000_000).to_string();
        assert_eq!(t.check(&code, 1_000_000), Some(1_000_000 / 30));
    }
}

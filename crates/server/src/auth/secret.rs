//! Secrets and their stored form: the token-signing key, SHA-256 digests, and the random
//! refresh tokens and API keys that are shown once and stored only as digests.

use super::AuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// Prefix of API keys: makes them recognisable to secret scanners and to Plinth.
pub(crate) const API_KEY_PREFIX: &str = "plk_";
/// Prefix of refresh tokens.
pub(crate) const REFRESH_PREFIX: &str = "plr_";
/// Smallest signing key accepted, in bytes.
pub(crate) const MIN_KEY_BYTES: usize = 32;

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

/// The SHA-256 digest of a secret, in hex: how refresh tokens and API keys are stored and
/// looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Digest(String);

impl Digest {
    /// The digest of `secret`.
    pub(crate) fn of(secret: &str) -> Self {
        Self(base16ct::lower::encode_string(&Sha256::digest(
            secret.as_bytes(),
        )))
    }

    /// A digest as stored (from a ticket that names an API key by it).
    pub(crate) fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex text, as the store keeps it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AuthError::internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// `bytes` random bytes as base64url.
pub(crate) fn random_b64<const N: usize>() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<N>()?))
}

/// A new refresh token and its digest.
pub(crate) fn new_refresh_token() -> Result<(String, Digest), AuthError> {
    let token = format!("{REFRESH_PREFIX}{}", random_b64::<32>()?);
    let digest = Digest::of(&token);
    Ok((token, digest))
}

/// A new API key: the key (shown once), its display prefix (`plk_<8 hex>`) and its digest.
pub(crate) fn new_api_key() -> Result<(String, String, Digest), AuthError> {
    let prefix = format!(
        "{API_KEY_PREFIX}{}",
        base16ct::lower::encode_string(&random_bytes::<4>()?)
    );
    let key = format!("{prefix}_{}", random_b64::<32>()?);
    let digest = Digest::of(&key);
    Ok((key, prefix, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shapes() {
        assert_eq!(
            Digest::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (token, digest) = new_refresh_token().expect("token");
        assert!(token.starts_with(REFRESH_PREFIX));
        assert_eq!(digest, Digest::of(&token));
        let (key, prefix, digest) = new_api_key().expect("key");
        assert_eq!(prefix.len(), API_KEY_PREFIX.len() + 8);
        assert!(key.starts_with(&format!("{prefix}_")));
        assert_eq!(digest, Digest::of(&key));
        assert!(SigningKey::new(vec![b'a'; 64]).is_err());
        assert!(SigningKey::new(b"short".to_vec()).is_err());
    }
}

//! Password hashing: argon2id on the blocking pool, bounded by a semaphore, with a dummy
//! hash verified for unknown users so that an unknown email costs as much as a wrong
//! password.

use super::AuthError;
use super::secret::random_b64;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

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

/// Hashes and verifies passwords.
#[derive(Debug)]
pub(crate) struct Passwords {
    params: Params,
    /// A hash of a random password, verified when the email is unknown so that a wrong
    /// password and an unknown email take the same time.
    dummy_hash: String,
    /// Bounds concurrent argon2 computations (each takes ~20 MiB and tens of ms of CPU).
    hashing: Semaphore,
}

impl Passwords {
    /// Fails on unusable argon2 parameters.
    pub(crate) fn new(cost: HashCost) -> Result<Self, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let dummy = random_b64::<24>().map_err(|_| "no randomness available".to_owned())?;
        let dummy_hash = hash_with(&params, &dummy)?;
        Ok(Self {
            params,
            dummy_hash,
            hashing: Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            ),
        })
    }

    /// Hashes a password with argon2id, off the async threads.
    pub(crate) async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let _permit = self.hashing.acquire().await.map_err(AuthError::internal)?;
        let (params, password) = (self.params.clone(), password.to_owned());
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(AuthError::internal)?
            .map_err(AuthError::Internal)
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is no
    /// user, so both cases cost the same.
    pub(crate) async fn verify(&self, hash: Option<&str>, password: &str) -> bool {
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
}

fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{HashCost, Passwords};

    /// Made by another implementation (Python's argon2-cffi) with the default cost: hashes
    /// stored by any earlier build are PHC strings like this one and must keep verifying.
    const STORED: &str = "$argon2id$v=19$m=19456,t=2,p=1$RT0LXs3GH5QkZIauCBjeCw$\
                          +vRakVUrlpPbHfI6E2HI/+80vD3JyXNvOPbDQEt4cdo";

    #[tokio::test]
    async fn a_hash_stored_elsewhere_verifies_and_a_new_one_keeps_the_format() {
        let passwords = Passwords::new(HashCost::default()).expect("parameters");
        assert!(
            passwords
                .verify(Some(STORED), "correct horse battery staple")
                .await
        );
        assert!(
            !passwords
                .verify(Some(STORED), "correct horse battery stapler")
                .await
        );
        let made = passwords.hash("hunter22hunter22").await.expect("hash");
        let (prefix, rest) = made.split_at("$argon2id$v=19$m=19456,t=2,p=1$".len());
        assert_eq!(prefix, "$argon2id$v=19$m=19456,t=2,p=1$");
        // A 16-byte salt and a 32-byte hash, both unpadded base64.
        let (salt, hash) = rest.split_once('$').expect("salt and hash");
        assert_eq!((salt.len(), hash.len()), (22, 43));
        assert!(passwords.verify(Some(&made), "hunter22hunter22").await);
        assert!(!passwords.verify(Some(&made), "hunter22hunter23").await);
        // No stored hash: the dummy is checked, and the answer is no.
        assert!(!passwords.verify(None, "hunter22hunter22").await);
    }
}

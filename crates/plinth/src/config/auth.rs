//! The `[auth]` settings: signing key, token lifetimes, argon2 cost and rate limits.

use super::{Environment, env};
use anyhow::{Context, bail};
use base64::Engine;
use plinth_server::auth::{AuthConfig, HashCost, SigningKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `[auth]` table of `plinth.toml`; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFile {
    jwt_secret_file: Option<PathBuf>,
    access_token_minutes: Option<u64>,
    refresh_token_days: Option<u64>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    argon2_parallelism: Option<u32>,
    login_attempts_per_account: Option<u32>,
    login_attempts_per_address: Option<u32>,
    requests_per_minute: Option<u32>,
}

/// Where the token-signing key comes from.
#[derive(Clone)]
pub(crate) enum KeySource {
    /// `PLINTH_JWT_SECRET`.
    Env(String),
    /// `PLINTH_JWT_SECRET_FILE` or `auth.jwt_secret_file`.
    File(PathBuf),
    /// Development only: generated once and kept in the data directory.
    Generated(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(_) => write!(f, "env {} (****)", env::JWT_SECRET),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Generated(p) => write!(f, "generated {}", p.display()),
        }
    }
}

/// Effective auth settings.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuthSettings {
    #[serde(skip)]
    pub(crate) key: KeySource,
    pub(crate) signing_key: String,
    pub(crate) access_token_minutes: u64,
    pub(crate) refresh_token_days: u64,
    pub(crate) argon2_memory_kib: u32,
    pub(crate) argon2_iterations: u32,
    pub(crate) argon2_parallelism: u32,
    pub(crate) login_attempts_per_account: u32,
    pub(crate) login_attempts_per_address: u32,
    pub(crate) requests_per_minute: u32,
}

const KEY_HELP: &str =
    "make one with `plinth keys generate > jwt.key` (or `openssl rand -base64 48`)";

impl AuthSettings {
    pub(crate) fn resolve(
        file: AuthFile,
        environment: Environment,
        data_dir: &Path,
        var: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let secret = var(env::JWT_SECRET).filter(|v| !v.is_empty());
        let secret_file = var(env::JWT_SECRET_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or(file.jwt_secret_file);
        let key = match (secret, secret_file) {
            (Some(s), _) => KeySource::Env(s),
            (None, Some(p)) => KeySource::File(p),
            (None, None) if environment == Environment::Production => bail!(
                "{}=production needs an explicit token-signing key: set {} or {} (or auth.jwt_secret_file); {KEY_HELP}",
                env::ENV,
                env::JWT_SECRET,
                env::JWT_SECRET_FILE
            ),
            (None, None) => KeySource::Generated(data_dir.join("jwt.key")),
        };
        if let KeySource::Env(s) = &key {
            // Checked now so a weak key is refused before anything starts.
            decode_key(s.as_bytes())
                .with_context(|| format!("{} is not usable", env::JWT_SECRET))?;
        }
        let settings = Self {
            signing_key: format!("{key:?}"),
            key,
            access_token_minutes: file.access_token_minutes.unwrap_or(15),
            refresh_token_days: file.refresh_token_days.unwrap_or(30),
            argon2_memory_kib: file.argon2_memory_kib.unwrap_or(19 * 1024),
            argon2_iterations: file.argon2_iterations.unwrap_or(2),
            argon2_parallelism: file.argon2_parallelism.unwrap_or(1),
            login_attempts_per_account: file.login_attempts_per_account.unwrap_or(5),
            login_attempts_per_address: file.login_attempts_per_address.unwrap_or(20),
            requests_per_minute: file.requests_per_minute.unwrap_or(0),
        };
        if !(1..=24 * 60).contains(&settings.access_token_minutes) {
            bail!("auth.access_token_minutes must be between 1 and 1440");
        }
        if !(1..=365).contains(&settings.refresh_token_days) {
            bail!("auth.refresh_token_days must be between 1 and 365");
        }
        if environment == Environment::Production && settings.argon2_memory_kib < 19 * 1024 {
            bail!(
                "auth.argon2_memory_kib below 19456 (the OWASP minimum) is refused in production"
            );
        }
        Ok(settings)
    }

    /// Settings for commands that hash passwords but sign nothing (`plinth user create`):
    /// the configured argon2 cost with a throwaway key, so they need no signing key.
    pub(crate) fn hashing_config(&self) -> anyhow::Result<AuthConfig> {
        let mut config = AuthConfig::new(SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?);
        config.hash_cost = HashCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        };
        Ok(config)
    }

    /// Keeps a development key in `dir` instead (the embedded benchmark's temporary data
    /// directory); an explicit key stays as it is.
    pub(crate) fn generate_key_in(&mut self, dir: &Path) {
        if let KeySource::Generated(_) = self.key {
            self.key = KeySource::Generated(dir.join("jwt.key"));
            self.signing_key = format!("{:?}", self.key);
        }
    }

    /// Whether the key is the development key generated in the data directory.
    pub(crate) fn key_is_generated(&self) -> bool {
        matches!(self.key, KeySource::Generated(_))
    }

    /// Reads or creates the signing key and builds the auth service settings.
    pub(crate) fn auth_config(&self) -> anyhow::Result<AuthConfig> {
        let key = match &self.key {
            KeySource::Env(s) => decode_key(s.as_bytes())?,
            KeySource::File(p) => {
                let bytes = std::fs::read(p)
                    .with_context(|| format!("cannot read the signing key {}", p.display()))?;
                decode_key(trim(&bytes))
                    .with_context(|| format!("the signing key in {} is not usable", p.display()))?
            }
            KeySource::Generated(p) => generated_key(p)?,
        };
        let mut config = AuthConfig::new(key);
        config.access_ttl = Duration::from_secs(self.access_token_minutes * 60);
        config.refresh_ttl = Duration::from_secs(self.refresh_token_days * 24 * 3600);
        config.hash_cost = HashCost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        };
        config.login_per_account = self.login_attempts_per_account;
        config.login_per_address = self.login_attempts_per_address;
        config.requests_per_minute = self.requests_per_minute;
        Ok(config)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// A key given as base64 (what `plinth keys generate` prints) is decoded; anything else is
/// taken as raw bytes. Either way it must pass [`SigningKey::new`].
fn decode_key(text: &[u8]) -> anyhow::Result<SigningKey> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    let decoded = engines
        .iter()
        .find_map(|e| e.decode(text).ok())
        .filter(|d| d.len() >= 32);
    SigningKey::new(decoded.unwrap_or_else(|| text.to_vec()))
        .map_err(|e| anyhow::anyhow!("{e}; {KEY_HELP}"))
}

/// Development: the key kept in the data directory, created (mode 0600) on first start.
fn generated_key(path: &Path) -> anyhow::Result<SigningKey> {
    if let Ok(bytes) = std::fs::read(path) {
        return decode_key(trim(&bytes))
            .with_context(|| format!("the signing key in {} is not usable", path.display()));
    }
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = base64::engine::general_purpose::STANDARD.encode(key.expose());
    write_private(path, text.as_bytes())
        .with_context(|| format!("cannot write the signing key {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a token-signing key for development");
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A new random key as base64, for `plinth keys generate`.
pub(crate) fn generate_key_text() -> anyhow::Result<String> {
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.expose()))
}

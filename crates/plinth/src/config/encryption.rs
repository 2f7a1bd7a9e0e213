//! Where the keys that seal personal data come from: `PLINTH_ENCRYPTION_KEYS`, a key file,
//! or (development only) a file generated in the data directory, as with the signing key.

use super::value::Secret;
use super::{Config, Environment, Settings, env};
use anyhow::{Context, bail};
use plinth_store::{Keyring, Keys};
use std::path::{Path, PathBuf};

/// Where the encryption keys come from.
#[derive(Clone)]
pub(crate) enum EncryptionSource {
    /// `PLINTH_ENCRYPTION_KEYS`.
    Env(Secret),
    /// `PLINTH_ENCRYPTION_KEYS_FILE` or `encryption.keys_file`.
    File(PathBuf),
    /// Development only: generated once and kept in the data directory.
    Generated(PathBuf),
}

impl std::fmt::Debug for EncryptionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(_) => write!(f, "env {} (****)", env::ENCRYPTION_KEYS),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Generated(p) => write!(f, "generated {}", p.display()),
        }
    }
}

const KEYS_HELP: &str = "make a set with `plinth keys encryption > encryption.keys`";

impl EncryptionSource {
    /// The first of `PLINTH_ENCRYPTION_KEYS`, the key file, or (development only) keys
    /// generated in the data directory. Keys given inline are checked now.
    pub(crate) fn resolve(settings: &Settings) -> anyhow::Result<Self> {
        let source = match (&settings.encryption_keys, &settings.encryption_keys_file) {
            (Some(s), _) => Self::Env(s.clone()),
            (None, Some(p)) => Self::File(p.clone()),
            (None, None) if settings.env == Environment::Production => bail!(
                "{}=production needs explicit encryption keys for personal data: set {} or {} (or encryption.keys_file); {KEYS_HELP}",
                env::ENV,
                env::ENCRYPTION_KEYS,
                env::ENCRYPTION_KEYS_FILE
            ),
            (None, None) => Self::Generated(settings.data_dir.join("encryption.keys")),
        };
        if let Self::Env(s) = &source {
            Keyring::parse(s.expose())
                .with_context(|| format!("{} is not usable", env::ENCRYPTION_KEYS))?;
        }
        Ok(source)
    }
}

impl Config {
    /// Keeps development keys in `dir` instead (the embedded benchmark's temporary data
    /// directory); explicit keys stay as they are.
    pub(crate) fn generate_encryption_in(&mut self, dir: &Path) {
        if let EncryptionSource::Generated(_) = self.encryption {
            self.encryption = EncryptionSource::Generated(dir.join("encryption.keys"));
        }
    }

    /// Reads (or, in development, creates) the encryption keys.
    pub(crate) fn encryption_keys(&self) -> anyhow::Result<Keys> {
        match &self.encryption {
            EncryptionSource::Env(s) => Ok(Keys::fixed(
                Keyring::parse(s.expose())
                    .with_context(|| format!("{} is not usable", env::ENCRYPTION_KEYS))?,
            )),
            EncryptionSource::File(p) => Ok(Keys::from_file(p)?),
            EncryptionSource::Generated(p) => {
                if !p.exists() {
                    let text = Keyring::generate_text()?;
                    super::auth::write_new_private(p, text.as_bytes()).with_context(|| {
                        format!("cannot write the encryption keys {}", p.display())
                    })?;
                    tracing::info!(path = %p.display(), "generated encryption keys for development");
                }
                Ok(Keys::from_file(p)?)
            }
        }
    }
}

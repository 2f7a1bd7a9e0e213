//! [`Keys`]: the keyring a store seals with, shared by its connections, and re-read from
//! its file when the file changes or a value names a key it does not hold.

use super::{FORCED_RELOAD, KeyError, Keyring, RECHECK, aad, sealed_key_id};
use crate::StoreError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// The keyring a store seals with, shared by its connections and reloadable.
#[derive(Clone, Debug)]
pub struct Keys {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ring: RwLock<Option<Arc<Keyring>>>,
    /// Bumped each time the keys are read again: what was opened under the keys before
    /// may not open now (a key retired).
    generation: std::sync::atomic::AtomicU64,
    /// The file the keys were read from, re-read when it changes.
    file: Option<PathBuf>,
    check: Mutex<Check>,
}

#[derive(Debug)]
struct Check {
    /// When the file's modification time was last compared.
    at: Instant,
    modified: Option<SystemTime>,
    /// When a value under a key not held last forced a re-read.
    forced: Option<Instant>,
}

fn missing() -> StoreError {
    StoreError::internal(
        "no encryption keys are configured (PLINTH_ENCRYPTION_KEYS or encryption.keys_file)",
    )
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Keys {
    fn with(ring: Option<Keyring>, file: Option<PathBuf>) -> Self {
        let modified = file.as_deref().and_then(modified);
        Self {
            inner: Arc::new(Inner {
                ring: RwLock::new(ring.map(Arc::new)),
                generation: std::sync::atomic::AtomicU64::new(0),
                file,
                check: Mutex::new(Check {
                    at: Instant::now(),
                    modified,
                    forced: None,
                }),
            }),
        }
    }

    /// No keys: every seal, open and blind index fails (a store that holds no personal
    /// data, or a test that needs none).
    pub fn missing() -> Self {
        Self::with(None, None)
    }

    /// Keys that never change (from the environment, or a test's).
    pub fn fixed(ring: Keyring) -> Self {
        Self::with(Some(ring), None)
    }

    /// Keys read from `path`, and re-read when it changes.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, KeyError> {
        let path = path.into();
        let ring = read(&path)?;
        Ok(Self::with(Some(ring), Some(path)))
    }

    /// How many times the keys were read again since they were first read.
    pub(crate) fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Re-reads the key file now (on SIGHUP); keys from elsewhere stay as they are. A file
    /// that does not parse keeps the keys in use.
    pub fn reload(&self) -> Result<(), KeyError> {
        let Some(path) = &self.inner.file else {
            return Ok(());
        };
        let stamp = modified(path);
        let ring = read(path)?;
        if let Ok(mut slot) = self.inner.ring.write() {
            *slot = Some(Arc::new(ring));
            self.bump();
        }
        if let Ok(mut check) = self.inner.check.lock() {
            check.at = Instant::now();
            check.modified = stamp;
        }
        Ok(())
    }

    /// Re-reads the key file if it changed, checked at most once per [`RECHECK`]; or, if
    /// `force` (a value names a key not held), at once, but at most once per
    /// [`FORCED_RELOAD`].
    fn refresh(&self, force: bool) {
        let Some(path) = &self.inner.file else {
            return;
        };
        let Ok(mut check) = self.inner.check.lock() else {
            return;
        };
        let now = Instant::now();
        if force {
            if check.forced.is_some_and(|at| at.elapsed() < FORCED_RELOAD) {
                return;
            }
            check.forced = Some(now);
        } else if check.at.elapsed() < RECHECK {
            return;
        }
        check.at = now;
        let stamp = modified(path);
        if !force && stamp == check.modified {
            return;
        }
        check.modified = stamp;
        drop(check);
        match read(path) {
            Ok(ring) => {
                if let Ok(mut slot) = self.inner.ring.write() {
                    *slot = Some(Arc::new(ring));
                    self.bump();
                }
                tracing::info!(path = %path.display(), "reloaded the encryption keys");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot reload the encryption keys; keeping those in use");
            }
        }
    }

    /// The keyring in use.
    pub fn ring(&self) -> Result<Arc<Keyring>, StoreError> {
        self.inner
            .ring
            .read()
            .ok()
            .and_then(|r| r.clone())
            .ok_or_else(missing)
    }

    /// Whether any keys are configured.
    pub fn present(&self) -> bool {
        self.ring().is_ok()
    }

    /// Seals the value of `table`.`column` in row `id`.
    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        id: &Uuid,
        plaintext: &str,
    ) -> Result<String, StoreError> {
        self.refresh(false);
        self.ring()?
            .seal(&aad(table, column, id), plaintext)
            .map_err(|e| StoreError::internal(format!("cannot seal {table}.{column}: {e}")))
    }

    /// Opens the sealed value of `table`.`column` in row `id`; a value naming a key not
    /// held re-reads the key file first (`plinth keys rotate` may have just added it).
    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        id: &Uuid,
        sealed: &str,
    ) -> Result<String, StoreError> {
        let mut ring = self.ring()?;
        if let Some(key) = sealed_key_id(sealed)
            && !ring.has(key)
        {
            self.refresh(true);
            ring = self.ring()?;
        }
        ring.open(&aad(table, column, id), sealed)
            .map_err(|e| StoreError::internal(format!("the sealed value of {table}.{column} {e}")))
    }

    /// The blind index of `value` in `label`'s column.
    pub(crate) fn blind(&self, label: &str, value: &str) -> Result<String, StoreError> {
        Ok(self.ring()?.blind(label, value))
    }
}

fn read(path: &Path) -> Result<Keyring, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        KeyError::new(format!(
            "cannot read the encryption keys {}: {e}",
            path.display()
        ))
    })?;
    Keyring::parse(&text)
        .map_err(|e| KeyError::new(format!("the encryption keys in {}: {e}", path.display())))
}

//! File fields on the HTTP side: uploads (`upload`: a `multipart/form-data` body streamed to
//! a temporary file, hashed, sniffed and stored), the blob storage (`storage`: a local
//! directory or an S3-compatible bucket, by SHA-256), and removal of blobs no record holds
//! any more ([`Files::release`] after a write, [`Files::sweep`] for what a crash left).
//!
//! A blob is deleted only when no row of the file table names it, no upload of this
//! instance is writing it, and it was last written more than the orphan grace ago (an
//! upload of the same content on another instance refreshes that time before its write
//! commits).

mod config;
mod http;
mod storage;
pub(crate) mod upload;

pub use config::{DEFAULT_ORPHAN_GRACE, DEFAULT_UPLOAD_LIMIT, FilesConfig, S3Config};
pub(crate) use storage::Storage;

use plinth_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// A temporary file older than this is a crashed upload's (a request never lasts as long).
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);

/// Two-digit prefixes looked at per orphan sweep (of 256).
const SWEEP_FANS: u8 = 32;
/// Blobs looked at per orphan sweep.
const SWEEP_LIMIT: usize = 10_000;

/// The file storage of one instance.
#[derive(Debug)]
pub(crate) struct Files {
    storage: Storage,
    tmp: PathBuf,
    upload_limit: u64,
    /// The largest `data` part (the request body limit).
    data_limit: usize,
    grace: Duration,
    /// Hashes this instance's uploads are writing, with how many uploads each.
    in_flight: Mutex<HashMap<String, usize>>,
}

impl Files {
    /// Opens the storage `config` names, creating the local directories and removing
    /// temporary files a stopped process left (those older than [`STALE_TEMP`]: another
    /// instance sharing the directory may be writing younger ones).
    pub(crate) fn open(config: &FilesConfig, data_limit: usize) -> Result<Self, String> {
        let storage = Storage::open(config)?;
        let tmp = config.dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            storage,
            tmp,
            upload_limit: config.upload_limit,
            data_limit,
            grace: config.orphan_grace,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn upload_limit(&self) -> u64 {
        self.upload_limit
    }

    pub(crate) fn data_limit(&self) -> usize {
        self.data_limit
    }

    /// A fresh temporary file's path.
    pub(crate) fn temp_path(&self) -> PathBuf {
        self.tmp.join(format!("up-{}", random_suffix(20)))
    }

    /// Marks `hash` as being written by an upload of this instance until `hold` drops.
    pub(crate) fn hold(self: &Arc<Self>, hold: &mut Hold, hash: &str) {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *map.entry(hash.to_owned()).or_default() += 1;
        hold.hashes.push(hash.to_owned());
        hold.files = Some(Arc::clone(self));
    }

    fn in_flight(&self, hash: &str) -> bool {
        let map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.contains_key(hash)
    }

    /// After a write (committed or not): deletes the blobs among `hashes` that nothing
    /// holds any more. Failures are logged; the sweep tries again later.
    pub(crate) async fn release(&self, store: &dyn Store, hashes: Vec<String>) {
        let mut hashes = hashes;
        hashes.sort_unstable();
        hashes.dedup();
        for hash in hashes {
            if let Err(e) = self.collect(store, &hash).await {
                tracing::warn!(error = %e, "an unused file could not be removed yet");
            }
        }
    }

    /// Deletes blob `hash` if nothing holds it and it is past the grace; whether it did.
    async fn collect(&self, store: &dyn Store, hash: &str) -> Result<bool, String> {
        if self.in_flight(hash) || store.file_in_use(hash).await.map_err(|e| e.to_string())? {
            return Ok(false);
        }
        let Some(modified) = self
            .storage
            .modified(hash)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO);
        if age < self.grace {
            return Ok(false);
        }
        self.storage.delete(hash).await.map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// One orphan sweep over [`SWEEP_FANS`] of the 256 two-digit prefixes, from a random
    /// one (so every prefix comes round): blobs nothing holds, past the grace, are deleted.
    /// Returns how many.
    pub(crate) async fn sweep(&self, store: &dyn Store) -> Result<u64, String> {
        let mut start = [0u8; 1];
        let _ = getrandom::fill(&mut start);
        let fans: Vec<String> = (0..SWEEP_FANS)
            .map(|i| format!("{:02x}", start[0].wrapping_add(i)))
            .collect();
        let blobs = self
            .storage
            .list(&fans, SWEEP_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let mut removed = 0;
        for (hash, modified) in blobs {
            let young = SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO)
                < self.grace;
            if young || !is_hash(&hash) {
                continue;
            }
            if self.collect(store, &hash).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// `n` random characters of `[a-z0-9]`.
pub(crate) fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    // The OS source does not fail on a supported platform; a fixed suffix would still be
    // unique enough with the content's own name checks, but never happens.
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Lowercase hex SHA-256.
fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hashes an upload is writing; dropped when its request is done with them.
#[derive(Debug, Default)]
pub(crate) struct Hold {
    files: Option<Arc<Files>>,
    hashes: Vec<String>,
}

impl Hold {
    /// The hashes held.
    pub(crate) fn hashes(&self) -> &[String] {
        &self.hashes
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(files) = &self.files else {
            return;
        };
        let mut map = files
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for hash in &self.hashes {
            if let Some(n) = map.get_mut(hash) {
                *n -= 1;
                if *n == 0 {
                    map.remove(hash);
                }
            }
        }
    }
}

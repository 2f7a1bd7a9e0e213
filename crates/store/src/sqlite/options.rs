//! How a SQLite database is opened.

use crate::{Claim, Keys};
use std::path::PathBuf;
use std::time::Duration;

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created with its directory if missing.
    pub path: PathBuf,
    /// Read connections: at most this many reads run at once.
    pub readers: usize,
    /// How long a statement waits for a lock before failing as `Unavailable`.
    pub busy_timeout: Duration,
    /// Open an existing file for reading only (`plinth export`): nothing is created, every
    /// connection is read-only, and no write reaches the file.
    pub read_only: bool,
    /// The time budget of a read that may scan (a list), waiting for a connection
    /// included; past it the read is interrupted and fails as [`StoreError::Timeout`].
    pub query_timeout: Duration,
    /// A claim taken before anything else (the lock file, see [`Store::claim`]): when it
    /// is refused, the database file is not created, opened or changed.
    pub claim: Option<Claim>,
    /// The keys that seal personal data ([`Keys::missing`] unless set: then a model with
    /// `pii` fields, or an account, cannot be written).
    pub keys: Keys,
    /// Bring Plinth's own tables to the latest version at open, refusing a database newer
    /// than this binary (the default). Off (`plinth migrate status`, `plan`, `down`): the
    /// file is taken as it is, and the migration methods apply no version either.
    pub upgrade: bool,
    /// Most bytes (estimated) of records kept in memory after a get, for the next get of
    /// the same id (see `cache`); 0, the default, keeps none. Only for the process that
    /// serves: it must be the only one writing records.
    pub record_cache: usize,
}

impl SqliteOptions {
    /// Defaults for a file: four readers, five seconds of busy timeout, five seconds per
    /// list.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            query_timeout: Duration::from_secs(5),
            claim: None,
            keys: Keys::missing(),
            upgrade: true,
            record_cache: 0,
        }
    }
}

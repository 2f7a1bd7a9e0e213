//! `plinth backup` / `plinth restore`: an exact, consistent copy of one database, every
//! Plinth table included (accounts, key digests, sessions, idempotency keys, the audit
//! trail and its checkpoints), sealed values kept sealed. The encryption keys are not in
//! it: they are backed up separately.
//!
//! Two formats, one per engine, both followed by a `FILE.sha256` sidecar in `sha256sum`
//! format that restore checks first:
//! - SQLite: the database itself, made by `VACUUM INTO` from a connection of its own (one
//!   committed state; the writer goes on meanwhile), stamped with [`APPLICATION_ID`] and
//!   [`SCHEMA_VERSION`] (`PRAGMA application_id`, `PRAGMA user_version`).
//! - PostgreSQL: JSON lines read in one `REPEATABLE READ READ ONLY` transaction: a header
//!   `{"plinth_backup": 1, "engine": "postgres", "schema_version": N, "taken_at": …,
//!   "tables": [names]}`, then one line per row, `{"t": table, "r": {column: value}}`
//!   (PostgreSQL's own JSON form of the row, so types come back exactly), tables in the
//!   header's order, `_plinth_models` first.
//!
//! A backup is written to a temporary name beside the target (mode 0600) and renamed into
//! place once complete, then its sidecar likewise.

use crate::StoreError;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The layout of Plinth's own tables a backup holds: their version
/// ([`crate::versions::LATEST`]). A backup from a newer layout is refused: a PostgreSQL
/// restore would leave out the tables and columns this release does not know. Backups
/// taken before the versions were numbered say 1, and restore as they always did.
pub const SCHEMA_VERSION: u32 = crate::versions::LATEST;
/// The JSON-lines format's version (PostgreSQL backups).
pub const FORMAT: u64 = 1;
/// `PRAGMA application_id` of a SQLite backup: "Plnt".
pub const APPLICATION_ID: i32 = 0x506c_6e74;
/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Which engine a backup is of (each restores into its own engine only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite database file.
    Sqlite,
    /// PostgreSQL JSON lines.
    Postgres,
}

impl Engine {
    /// The engine's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A backup taken.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Its engine.
    pub engine: Engine,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, hex (also in the sidecar).
    pub sha256: String,
    /// What it holds, as [`Contents::describe`] says it.
    pub contents: Contents,
}

/// A restore done.
#[derive(Debug, Clone)]
pub struct Restored {
    /// What the backup held, now in the target.
    pub contents: Contents,
    /// What the target held before (`--force`), when it was not empty.
    pub replaced: Option<Contents>,
}

/// What a database holds, in rows: for messages, and to tell an empty target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Accounts.
    pub users: u64,
    /// API keys.
    pub api_keys: u64,
    /// Audit entries.
    pub audit_entries: u64,
    /// Records per recorded model.
    pub records: Vec<(String, u64)>,
}

impl Contents {
    /// Whether nothing worth keeping is there (recorded models without records are not).
    pub fn is_empty(&self) -> bool {
        self.users == 0
            && self.api_keys == 0
            && self.audit_entries == 0
            && self.records.iter().all(|(_, n)| *n == 0)
    }

    /// "2 users, 1 API key, 40 audit entries, records: book 12, resource 0".
    pub fn describe(&self) -> String {
        let records: Vec<String> = self
            .records
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect();
        format!(
            "{} user(s), {} API key(s), {} audit entries, records: {}",
            self.users,
            self.api_keys,
            self.audit_entries,
            if records.is_empty() {
                "none".to_owned()
            } else {
                records.join(", ")
            }
        )
    }
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// Which file, doing what.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The backup's file (or its sidecar) exists: a backup never replaces a file.
    #[error("{} exists; a backup never replaces a file", .0.display())]
    Exists(PathBuf),
    /// The file does not match its checksum, or has none.
    #[error("{0}")]
    Checksum(String),
    /// The file is not a Plinth backup (or not one this engine restores).
    #[error("{0}")]
    Format(String),
    /// The backup is of a newer layout of Plinth's tables than this release knows.
    #[error(
        "the backup is of schema version {found}, newer than this release's {SCHEMA_VERSION}; \
         restore it with the release that took it (or a newer one)"
    )]
    Newer {
        /// The backup's version.
        found: u64,
    },
    /// The target holds data and `--force` was not given.
    #[error(
        "the target database is not empty ({0}); restore into an empty one, or pass --force to \
         replace everything in it"
    )]
    NotEmpty(String),
}

impl BackupError {
    /// An I/O failure on `path`, doing `doing`.
    pub fn io(doing: &str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            what: format!("cannot {doing} {}", path.display()),
            source,
        }
    }
}

/// `FILE.sha256`.
pub fn sidecar(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The temporary name a backup of `path` is written under: `.NAME.partial` beside it.
pub(crate) fn partial(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial"))
}

/// Refuses a target that exists (a backup never overwrites a file), or whose sidecar does.
pub(crate) fn check_target(path: &Path) -> Result<(), BackupError> {
    for p in [path.to_path_buf(), sidecar(path)] {
        if p.symlink_metadata().is_ok() {
            return Err(BackupError::Exists(p));
        }
    }
    Ok(())
}

/// Creates `path` new, readable by its owner only.
pub(crate) fn create_private(path: &Path) -> Result<std::fs::File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| BackupError::io("create", path, e))
}

/// Completes a backup written at `partial`: syncs it, renames it to `path`, writes the
/// sidecar the same way; returns its size and SHA-256.
pub(crate) fn complete(partial: &Path, path: &Path) -> Result<(u64, String), BackupError> {
    let (bytes, sha) = digest(partial)?;
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| BackupError::io("sync", partial, e))?;
    std::fs::rename(partial, path).map_err(|e| BackupError::io("rename into", path, e))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let side = sidecar(path);
    let side_partial = self::partial(&side);
    let mut f = create_private(&side_partial)?;
    f.write_all(format!("{sha}  {name}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| BackupError::io("write", &side_partial, e))?;
    std::fs::rename(&side_partial, &side).map_err(|e| BackupError::io("rename into", &side, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The renames are durable once the directory is.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok((bytes, sha))
}

/// The size and SHA-256 (hex) of a file.
fn digest(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = std::fs::File::open(path).map_err(|e| BackupError::io("read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| BackupError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, base16ct::lower::encode_string(&hasher.finalize())))
}

/// Checks `path` against its sidecar, then tells its engine from its first bytes; a
/// PostgreSQL backup's header is checked too. Nothing else is trusted before this passes.
pub fn verify(path: &Path) -> Result<Engine, BackupError> {
    let side = sidecar(path);
    let text = std::fs::read_to_string(&side).map_err(|e| {
        BackupError::Checksum(format!(
            "cannot read the checksum file {} ({e}); a backup is restored only with its checksum",
            side.display()
        ))
    })?;
    let expected = text
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            BackupError::Checksum(format!("{} holds no SHA-256 checksum", side.display()))
        })?
        .to_ascii_lowercase();
    let (_, actual) = digest(path)?;
    if actual != expected {
        return Err(BackupError::Checksum(format!(
            "{} does not match its checksum in {} (the file is damaged, truncated or was \
             changed); nothing was restored",
            path.display(),
            side.display()
        )));
    }
    let mut file =
        BufReader::new(std::fs::File::open(path).map_err(|e| BackupError::io("read", path, e))?);
    let head = file
        .fill_buf()
        .map_err(|e| BackupError::io("read", path, e))?;
    if head.starts_with(SQLITE_MAGIC) {
        return Ok(Engine::Sqlite);
    }
    check_lines(&mut file)?;
    Ok(Engine::Postgres)
}

/// Reads a whole JSON-lines backup once before anything is restored from it: the header,
/// then every line a row (`{"t": table, "r": {…}}`) of a table the header names, in the
/// header's order.
fn check_lines(input: &mut dyn BufRead) -> Result<(), BackupError> {
    let tables = header(input)?;
    let (mut at, mut number, mut line) = (0usize, 1u64, String::new());
    loop {
        line.clear();
        number += 1;
        let bad = |reason: &str| BackupError::Format(format!("line {number}: {reason}"));
        if input.read_line(&mut line).map_err(|_| bad("unreadable"))? == 0 {
            return Ok(());
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| bad("not JSON"))?;
        let (Some(table), true) = (v["t"].as_str(), v["r"].is_object()) else {
            return Err(bad("not a row"));
        };
        at += tables[at..]
            .iter()
            .position(|t| t == table)
            .ok_or_else(|| bad("a table not in the header, or out of order"))?;
    }
}

/// The table names of a JSON-lines backup's header (its first line), checked.
pub(crate) fn header(input: &mut dyn BufRead) -> Result<Vec<String>, BackupError> {
    let not_ours = || BackupError::Format("not a Plinth backup".to_owned());
    let mut line = String::new();
    input
        .take(1 << 20)
        .read_line(&mut line)
        .map_err(|_| not_ours())?;
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|_| not_ours())?;
    if v["plinth_backup"].as_u64() != Some(FORMAT) || v["engine"] != "postgres" {
        return Err(not_ours());
    }
    let found = v["schema_version"].as_u64().ok_or_else(not_ours)?;
    if found > u64::from(SCHEMA_VERSION) {
        return Err(BackupError::Newer { found });
    }
    v["tables"]
        .as_array()
        .ok_or_else(not_ours)?
        .iter()
        .map(|t| t.as_str().map(str::to_owned).ok_or_else(not_ours))
        .collect()
}

//! The files of a SQLite database: its directory and file, created private (0700 and 0600
//! on Unix) before SQLite opens them (SQLite gives the `-wal` and `-shm` files the main
//! file's mode), and the lock file a process holds while it uses the database.

use crate::StoreError;
use std::path::Path;

/// Creates the database's directory (0700) and file (0600) when they are missing; existing
/// ones are left as they are.
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
    let unavailable = |what: &Path, e: std::io::Error| {
        StoreError::Unavailable(format!("cannot create {}: {e}", what.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| unavailable(dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(unavailable(path, e)),
    }
}

//! The files of a SQLite database: its directory and file, created private (0700 and 0600
//! on Unix) before SQLite opens them (SQLite gives the `-wal` and `-shm` files the main
//! file's mode), and the lock file a process holds while it uses the database.

use crate::{Claim, StoreError};
use std::path::Path;

fn unavailable(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot create {}: {e}", what.display()))
}

/// Creates the database's directory (0700) when it is missing (the lock file's place).
pub(super) fn prepare_dir(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| unavailable(dir, e))?;
    }
    Ok(())
}

/// Creates the database's directory (0700) and file (0600) when they are missing; existing
/// ones are left as they are.
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
    prepare_dir(path)?;
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

/// Takes the database's lock file (`<file>.lock`, 0600) exclusively, or refuses when another
/// process holds it. The operating system releases it when the file is closed or the
/// process ends, however it ends. A SQLite database has one user of each kind at a time: a
/// server, or a migration, import or restore.
pub(super) fn lock(path: &Path, claim: Claim) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(|e| {
        StoreError::Unavailable(format!("cannot open {}: {e}", lock_path.display()))
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(match claim {
            Claim::Serve => format!(
                "another plinth process is using the database {} (a server, or plinth migrate, \
                 import or restore); stop it first",
                path.display()
            ),
            Claim::Maintain => format!(
                "a plinth server (or another plinth migrate, import or restore) is using the \
                 database {}; stop it first, then run this again",
                path.display()
            ),
        })),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

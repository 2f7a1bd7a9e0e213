//! Data at rest: `plinth serve` warns when the data directory, the database files or the
//! signing-key file can be read by other users (Plinth creates them 0700 and 0600), and in
//! production refuses such a TLS private key.

use crate::config::{Config, Database};

/// Logs a warning for each existing data file whose mode grants anything to group or
/// others. Unix only; elsewhere the platform's access control applies.
pub(crate) fn warn_if_exposed(config: &Config) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut paths = vec![config.settings.data_dir.clone()];
        if let Ok(Database::Sqlite(db)) = config.database() {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                paths.push(name.into());
            }
        }
        paths.extend(config.key_file().map(std::path::Path::to_path_buf));
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let wanted = if meta.is_dir() { "0700" } else { "0600" };
                tracing::warn!(
                    path = %path.display(),
                    mode = %format!("{mode:04o}"),
                    "a data file is readable by other users: restrict it to its owner (chmod {wanted})"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = config;
}

/// Refuses a TLS private key file whose mode grants anything to group or others (Unix only).
pub(crate) fn refuse_exposed_key(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A file that cannot be read is refused with its reason when it is loaded.
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "the TLS key file {} is readable by other users (mode {mode:04o}), refused in production: chmod 0600 it",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

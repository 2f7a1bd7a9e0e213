//! `plinth backup` and `plinth restore`: wiring around `Store::backup_to` and
//! `Store::restore_from` (the formats and checks: `plinth_store::backup`).

use super::serve::{open_claimed, open_store_as};
use super::transfer::remove_database;
use crate::cli::{BackupArgs, GlobalArgs, RestoreArgs};
use crate::config::{Config, Database};
use crate::logging;
use anyhow::Context;
use plinth_store::Claim;
use plinth_store::backup::{Engine, sidecar, verify};
use std::path::Path;

/// Said after every backup and restore: the one thing a backup does not hold.
pub(crate) const KEYS_NOT_INCLUDED: &str = "The encryption keys are not in the backup: pii \
     fields and account emails in it open only with the keys in use when it was taken. Back up \
     the encryption key file (or PLINTH_ENCRYPTION_KEYS) and the token-signing key separately.";

/// Said after a restore whose accounts the configured keys do not open.
const KEYS_DO_NOT_OPEN: &str = "warning: the configured encryption keys do not open the \
     restored accounts' emails: the backup was sealed under other keys. Before starting a \
     server, configure the backed-up deployment's keys (its key file, or \
     PLINTH_ENCRYPTION_KEYS).";

/// `plinth backup FILE`.
pub(crate) fn run_backup(global: &GlobalArgs, args: &BackupArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(backup(&config, &args.file))
}

/// `plinth restore FILE`.
pub(crate) fn run_restore(global: &GlobalArgs, args: &RestoreArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(restore(&config, &args.file, args.force))
}

/// Backs the configured database up into `file`, opened for reading only (beside servers).
async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let store = open_store_as(config, true).await?;
    let taken = store.backup_to(file).await;
    store.close().await;
    let taken = taken.context("backup failed")?;
    eprintln!(
        "backed up {} to {} ({} backup, {} bytes); SHA-256 {} in {}",
        taken.contents.describe(),
        file.display(),
        taken.engine.name(),
        taken.bytes,
        taken.sha256,
        sidecar(file).display()
    );
    eprintln!("{KEYS_NOT_INCLUDED}");
    Ok(())
}

/// Restores `file` into the configured database: the backup is checked before the database
/// is claimed or opened, so a bad one touches nothing; a SQLite file a failed restore
/// created is removed again.
async fn restore(config: &Config, file: &Path, force: bool) -> anyhow::Result<()> {
    let engine = verify(file).context("restore refused")?;
    let database = config.database()?;
    match (engine, &database) {
        (Engine::Sqlite, Database::Sqlite(_)) | (Engine::Postgres, Database::Postgres(_)) => {}
        (backup, _) => anyhow::bail!(
            "restore refused: this is a {} backup, and the configured database is not; to move \
             between engines, use plinth export and plinth import",
            backup.name()
        ),
    }
    let created = match database {
        Database::Sqlite(path) if !path.exists() => Some(path),
        _ => None,
    };
    // A restore replaces everything: not under a running server.
    let store = open_claimed(config, Claim::Maintain)
        .await
        .context("restore refused")?;
    let result = store.restore_from(file, force).await;
    // Sealed emails open only with the backed-up deployment's keys: say so now, not at
    // the first failed login.
    let keys_open = result.is_ok() && store.list_users(None, 1).await.is_ok();
    store.close().await;
    if let (Err(_), Some(path)) = (&result, &created) {
        remove_database(path);
    }
    let restored = result.context("restore failed")?;
    if let Some(old) = &restored.replaced {
        eprintln!("replaced (--force): {}", old.describe());
    }
    eprintln!(
        "restored {} from {}",
        restored.contents.describe(),
        file.display()
    );
    if keys_open {
        eprintln!("{KEYS_NOT_INCLUDED}");
    } else {
        eprintln!("{KEYS_DO_NOT_OPEN}");
    }
    Ok(())
}

//! `plinth export` and `plinth import`: wiring around `plinth_store::transfer`.

use super::serve::{open_claimed, open_store_as};
use crate::cli::{ExportArgs, GlobalArgs, ImportArgs};
use crate::config::{Config, Database};
use crate::logging;
use anyhow::Context;
use plinth_store::Claim;
use plinth_store::transfer::{Counts, Line, parse};
use std::io::{BufReader, Write};
use std::path::Path;

/// `plinth export`.
pub(crate) fn run_export(global: &GlobalArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(export(&config, &args.output))
}

/// `plinth import`.
pub(crate) fn run_import(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(import(&config, &args.input))
}

/// Writes the configured database to `output` (`-`: standard output), at the schema
/// recorded in it, opened for reading only.
pub(crate) async fn export(config: &Config, output: &Path) -> anyhow::Result<()> {
    let store = open_store_as(config, true).await?;
    let result = if output == Path::new("-") {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        plinth_store::transfer::export(store.as_ref(), &mut out).await
    } else {
        let mut file = std::io::BufWriter::new(create_private(output)?);
        let r = plinth_store::transfer::export(store.as_ref(), &mut file).await;
        file.flush()
            .with_context(|| format!("cannot write {}", output.display()))?;
        r
    };
    store.close().await;
    let counts = result.context("export failed")?;
    eprintln!(
        "exported {} user(s), {} flag(s) and {} record(s)",
        counts.users, counts.flags, counts.records
    );
    factors_line("exported", &counts);
    Ok(())
}

/// Reads `input` (`-`: standard input) into the configured, empty database, migrated to
/// the declared models in the same transaction: all of it, or nothing. The input is read and
/// checked before the database is claimed and opened, so a malformed one touches nothing;
/// a SQLite file the failed import created is removed again.
pub(crate) async fn import(config: &Config, input: &Path) -> anyhow::Result<()> {
    let lines = read_export(config, input).context("import failed")?;
    let created = match config.database()? {
        Database::Sqlite(path) if !path.exists() => Some(path),
        _ => None,
    };
    // The import changes the schema: not under a running server.
    let store = open_claimed(config, Claim::Maintain)
        .await
        .context("import failed")?;
    let result = plinth_store::transfer::import_lines(store.as_ref(), &config.schema, lines).await;
    // Only a file nobody else wrote to meanwhile (`plinth user create` needs no claim).
    let untouched = result.is_err()
        && created.is_some()
        && store
            .list_users(None, 1)
            .await
            .is_ok_and(|users| users.is_empty());
    store.close().await;
    if let (true, Some(path)) = (untouched, created) {
        remove_database(&path);
    }
    let counts = result.context("import failed")?;
    eprintln!(
        "imported {} user(s), {} flag(s) and {} record(s)",
        counts.users, counts.flags, counts.records
    );
    factors_line("imported", &counts);
    Ok(())
}

/// The second factors and provider links moved with the users, when there are any.
fn factors_line(done: &str, counts: &Counts) {
    if counts.second_factors > 0 || counts.identities > 0 {
        eprintln!(
            "{done} with them {} TOTP second factor(s) and {} OpenID Connect link(s)",
            counts.second_factors, counts.identities
        );
    }
}

/// Removes a SQLite database file and its companions (`-wal`, `-shm`, `.lock`) that a failed
/// import or restore created; what is already gone is fine.
pub(crate) fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Err(e) = std::fs::remove_file(&name)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %Path::new(&name).display(), error = %e, "cannot remove a file the failed command created");
        }
    }
}

/// Every line of the export at `input` (`-`: standard input), parsed and checked against
/// the declared models.
fn read_export(config: &Config, input: &Path) -> anyhow::Result<Vec<Line>> {
    if input == Path::new("-") {
        let stdin = std::io::stdin();
        return Ok(parse(&config.schema, &mut stdin.lock())?);
    }
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    Ok(parse(&config.schema, &mut BufReader::new(file))?)
}

/// Creates `path`, which must not exist, readable by its owner only.
#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create_new(path).with_context(|| format!("cannot create {}", path.display()))
}

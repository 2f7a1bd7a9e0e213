//! `plinth export` and `plinth import`: wiring around `plinth_store::transfer`.

use super::serve::{open_store, open_store_as};
use crate::cli::{ExportArgs, GlobalArgs, ImportArgs};
use crate::config::Config;
use crate::logging;
use anyhow::Context;
use plinth_store::Claim;
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
        "exported {} user(s) and {} record(s)",
        counts.users, counts.records
    );
    Ok(())
}

/// Reads `input` (`-`: standard input) into the configured, empty database, migrated to
/// the declared models in the same transaction: all of it, or nothing.
pub(crate) async fn import(config: &Config, input: &Path) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = async {
        // The import changes the schema: not under a running server.
        store.claim(Claim::Maintain).await?;
        if input == Path::new("-") {
            let stdin = std::io::stdin();
            let mut reader = stdin.lock();
            Ok(plinth_store::transfer::import(store.as_ref(), &config.schema, &mut reader).await?)
        } else {
            let file = std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?;
            let mut reader = BufReader::new(file);
            Ok::<_, anyhow::Error>(
                plinth_store::transfer::import(store.as_ref(), &config.schema, &mut reader).await?,
            )
        }
    }
    .await;
    store.close().await;
    let counts = result.context("import failed")?;
    eprintln!(
        "imported {} user(s) and {} record(s)",
        counts.users, counts.records
    );
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create_new(path).with_context(|| format!("cannot create {}", path.display()))
}

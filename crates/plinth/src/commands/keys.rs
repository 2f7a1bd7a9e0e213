//! `plinth keys generate`, `plinth keys encryption`, and the rotation of the encryption
//! keys: `plinth keys rotate` and `plinth keys retire`.
//!
//! Both work beside running servers, on SQLite as on PostgreSQL: they open the database
//! without a claim (as `plinth user create` does) and write in short transactions. Running
//! servers read a changed key file within a second ([`plinth_store::seal::RECHECK`]), at
//! once on SIGHUP, and whenever a value names a key they do not hold.

use crate::cli::{GlobalArgs, RetireArgs, RotateArgs};
use crate::config::{Config, EncryptionSource, env, generate_key_text};
use crate::logging;
use anyhow::{Context, bail};
use plinth_core::{Principal, Schema};
use plinth_store::seal::RECHECK;
use plinth_store::{AuditEvent, Event, Keyring, SealedTable, Store, WriteCtx};
use serde_json::{Map, json};
use std::io::Write;
use std::path::Path;

/// Rows re-sealed per transaction.
const BATCH: u32 = 500;

/// Passes over the tables before values still under an old key are reported: a server
/// that has not read the new key yet may seal one more value under the old one.
const PASSES: u32 = 5;

/// Prints a new random token-signing key.
pub(crate) fn generate() -> anyhow::Result<()> {
    println!("{}", generate_key_text()?);
    Ok(())
}

/// Prints a new set of encryption keys: `index=` and `k1=`.
pub(crate) fn encryption() -> anyhow::Result<()> {
    print!("{}", plinth_store::Keyring::generate_text()?);
    Ok(())
}

/// `plinth keys rotate`.
pub(crate) fn run_rotate(global: &GlobalArgs, args: &RotateArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(rotate(&config, args))
}

/// `plinth keys retire`.
pub(crate) fn run_retire(global: &GlobalArgs, args: &RetireArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(retire(&config, &args.id))
}

/// The key file of the configuration, or none for keys from the environment.
fn key_file(config: &Config) -> Option<&Path> {
    match &config.encryption {
        EncryptionSource::Env(_) => None,
        EncryptionSource::File(p) | EncryptionSource::Generated(p) => Some(p),
    }
}

/// Replaces `path` by `text` in one rename, readable by its owner only.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write beside {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .context("cannot make the new key file private")?;
    }
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write beside {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The models recorded in the database (what its tables hold), with the emails.
async fn sealed_tables(store: &dyn Store) -> anyhow::Result<Vec<SealedTable>> {
    let decls = store.recorded().await?;
    let schema = Schema::from_decls(&decls)
        .map_err(|_| anyhow::anyhow!("the models recorded in the database do not load"))?;
    Ok(SealedTable::all(&schema))
}

fn system(request_id: &str) -> WriteCtx {
    WriteCtx::new(Principal::local_admin(), request_id)
}

/// Adds a sealing key (with a key file), then seals every stored value again under the
/// active key, table by table in batches of [`BATCH`] rows.
async fn rotate(config: &Config, args: &RotateArgs) -> anyhow::Result<()> {
    let file = key_file(config);
    let mut previous = None;
    if !args.reseal_only {
        let Some(path) = file else {
            bail!(
                "the encryption keys come from {}, which this command cannot change: append a new key \
                 (`id=<base64 of 32 bytes>`) to the list, restart every instance with it, then run \
                 `plinth keys rotate --reseal-only`",
                env::ENCRYPTION_KEYS
            );
        };
        // Creates the development keys if there are none yet.
        previous = Some(config.encryption_keys()?.ring()?.active().to_owned());
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the encryption keys {}", path.display()))?;
        let (id, new) = Keyring::add_key(&text)?;
        write_atomic(path, &new)?;
        eprintln!(
            "added key {id} to {}: it seals new values from now on",
            path.display()
        );
        // Servers on this key file look at it at most once per RECHECK: let them all
        // hold the new key before values sealed under it appear.
        tokio::time::sleep(RECHECK * 2).await;
    }
    let active = config.encryption_keys()?.ring()?.active().to_owned();
    let store = super::serve::open_store(config).await?;
    let result = reseal_all(store.as_ref(), &active).await;
    let outcome = match result {
        Ok(counts) => {
            let mut changes = Map::new();
            if let Some(from) = &previous {
                changes.insert("active_key".into(), json!({"from": from, "to": active}));
            } else {
                changes.insert("active_key".into(), json!({"to": active}));
            }
            changes.insert(
                "resealed".into(),
                counts.iter().map(|(t, n)| (t.clone(), json!(n))).collect(),
            );
            let event = AuditEvent {
                event: Event::KeysRotate,
                target: None,
                changes: changes.into(),
            };
            store
                .audit_event(&system("keys-rotate"), event)
                .await
                .context("cannot append the audit entry")
                .map(|()| counts)
        }
        Err(e) => Err(e),
    };
    store.close().await;
    let counts = outcome?;
    for (table, n) in &counts {
        println!("{table}: {n} value(s) re-sealed");
    }
    println!("every sealed value is under key {active}");
    Ok(())
}

/// Re-seals every table; the count per table. Refuses when values stay under other keys
/// after [`PASSES`] passes.
async fn reseal_all(store: &dyn Store, active: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let mut counts = Vec::new();
    for table in sealed_tables(store).await? {
        let mut total = 0u64;
        let mut pass = 0;
        loop {
            pass += 1;
            let mut after = None;
            loop {
                let batch = store
                    .reseal(&table, after, BATCH)
                    .await
                    .with_context(|| format!("cannot re-seal {}", table.name()))?;
                total += batch.values;
                if batch.values > 0 {
                    eprintln!("{}: {total} value(s) re-sealed", table.name());
                }
                match batch.last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
            let left = store.count_sealed(&table, active, false).await?;
            if left.is_empty() {
                break;
            }
            if pass >= PASSES {
                bail!(
                    "values of {} are still sealed under other keys than {active} ({}): does every \
                     instance hold the new keys? Run the command again once they do",
                    table.name(),
                    describe(&left)
                );
            }
            tokio::time::sleep(RECHECK).await;
        }
        counts.push((table.name().to_owned(), total));
    }
    Ok(counts)
}

fn describe(counts: &[(String, u64)]) -> String {
    counts
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that no stored value is sealed under `id`, then removes it from the key file
/// (with a key file) or says it may be dropped from the list (keys from the environment).
async fn retire(config: &Config, id: &str) -> anyhow::Result<()> {
    let keys = config.encryption_keys()?;
    let ring = keys.ring()?;
    if id == plinth_store::seal::INDEX_KEY_ID {
        bail!("the `index` key cannot be retired: every blind index is made with it");
    }
    if !ring.ids().any(|k| k == id) {
        // Not echoed: an argument that is no key id may be key material.
        bail!(
            "there is no key by that id (held: {})",
            ring.ids().collect::<Vec<_>>().join(", ")
        );
    }
    if ring.active() == id {
        bail!("key {id:?} seals new values; rotate to a new key first (`plinth keys rotate`)");
    }
    let store = super::serve::open_store(config).await?;
    let result = retire_checked(config, store.as_ref(), id).await;
    store.close().await;
    let message = result?;
    println!("{message}");
    Ok(())
}

/// Refuses while a value is sealed under `id`; else removes it from the key file and
/// appends the audit entry. What to tell the operator.
async fn retire_checked(config: &Config, store: &dyn Store, id: &str) -> anyhow::Result<String> {
    let used = in_use(store, id).await?;
    if !used.is_empty() {
        bail!(
            "key {id:?} still seals {}; run `plinth keys rotate --reseal-only` first",
            used.join(", ")
        );
    }
    let message = match key_file(config) {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the encryption keys {}", path.display()))?;
            let new = Keyring::remove_key(&text, id)?;
            write_atomic(path, &new)?;
            format!(
                "no value is sealed under key {id}; removed it from {}",
                path.display()
            )
        }
        None => format!(
            "no value is sealed under key {id}: it is safe to drop it from {} on every instance",
            env::ENCRYPTION_KEYS
        ),
    };
    let event = AuditEvent {
        event: Event::KeysRetire,
        target: None,
        changes: json!({"retired_key": id, "values_under_it": 0}),
    };
    store
        .audit_event(&system("keys-retire"), event)
        .await
        .context("cannot append the audit entry")?;
    Ok(message)
}

/// Where values sealed under `id` remain: `table.column (count)`.
async fn in_use(store: &dyn Store, id: &str) -> anyhow::Result<Vec<String>> {
    let mut used = Vec::new();
    for table in sealed_tables(store).await? {
        for (column, n) in store.count_sealed(&table, id, true).await? {
            used.push(format!("{n} value(s) in {}.{column}", table.name()));
        }
    }
    Ok(used)
}

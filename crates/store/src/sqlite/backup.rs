//! Backup and restore of a SQLite database.
//!
//! A backup is `VACUUM INTO` a new private file from a read-only connection of its own: one
//! read transaction, so the copy is one committed state, and in WAL mode the writer goes on
//! meanwhile. The copy is stamped as a Plinth backup of this release's schema version.
//!
//! A restore copies a backup into the writer's connection with SQLite's online backup API
//! (the target's WAL is handled by SQLite, never by replacing files under it), after
//! checking what the backup is and what the target holds.

use super::{SqliteStore, ddl, errors::map};
use crate::StoreError;
use crate::backup::{
    self, APPLICATION_ID, BackupError, Contents, Engine, Restored, SCHEMA_VERSION, Taken,
};
use crate::sql::{backup::contents, ready, search};
use plinth_core::Schema;
use rusqlite::{Connection, MAIN_DB, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a backup's read waits for a lock (only a checkpoint that truncates the log
/// takes one it would wait for).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// [`crate::Store::backup_to`], on the blocking pool.
    pub(super) async fn take_backup(&self, dest: &Path) -> Result<Taken, BackupError> {
        let (source, dest) = (self.inner.path.clone(), dest.to_path_buf());
        tokio::task::spawn_blocking(move || take(&source, &dest, BUSY_TIMEOUT))
            .await
            .map_err(StoreError::internal)?
    }

    /// [`crate::Store::restore_from`], alone on the writer thread.
    pub(super) async fn restore_backup(
        &self,
        source: &Path,
        force: bool,
    ) -> Result<Restored, BackupError> {
        let source = source.to_path_buf();
        let restored = self
            .exclusive(move |w| Ok(restore(&mut w.conn, &source, force)))
            .await??;
        // The restored models are the ones a purge now checks references in.
        if let Ok(decls) = crate::Store::recorded(self).await
            && let Ok(schema) = Schema::from_decls(&decls)
            && let Ok(mut s) = self.inner.schema.write()
        {
            *s = Arc::new(schema);
            self.inner.recent.new_schema();
            self.inner.records.clear();
        }
        Ok(restored)
    }
}

/// Takes a backup of the database at `source` into `dest`, which must not exist.
fn take(source: &Path, dest: &Path, busy: Duration) -> Result<Taken, BackupError> {
    backup::check_target(dest)?;
    let partial = backup::partial(dest);
    // A partial file is only ever a backup that did not complete.
    let _ = std::fs::remove_file(&partial);
    drop(backup::create_private(&partial)?);
    let copied = copy_into(source, &partial, busy);
    let described = copied.and_then(|()| stamp(&partial));
    let contents = match described {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let (bytes, sha256) = backup::complete(&partial, dest)?;
    Ok(Taken {
        engine: Engine::Sqlite,
        bytes,
        sha256,
        contents,
    })
}

/// `VACUUM INTO` the (empty, private) file `into`.
fn copy_into(source: &Path, into: &Path, busy: Duration) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map)?;
    conn.busy_timeout(busy).map_err(map)?;
    // Whatever the schema's expressions call, the copy can rebuild.
    super::exec::register_functions(&conn)?;
    let into = into
        .to_str()
        .ok_or_else(|| BackupError::Format("the backup's path is not UTF-8".to_owned()))?;
    conn.execute("VACUUM INTO ?1", [into]).map_err(map)?;
    Ok(())
}

/// Marks the copy as a Plinth backup of [`SCHEMA_VERSION`]; what it holds.
fn stamp(copy: &Path) -> Result<Contents, BackupError> {
    let conn = Connection::open_with_flags(
        copy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map)?;
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(map)?;
    Ok(describe(&conn)?)
}

/// What the database on `conn` holds.
fn describe(conn: &Connection) -> Result<Contents, StoreError> {
    let models: Vec<String> = ddl::applied(conn)?.into_iter().map(|d| d.name).collect();
    ready(contents(conn, &models))
}

/// Replaces the database on `conn` (the writer's, under a `Maintain` claim) with the
/// backup at `source`, checked first: its checksum, that it is a Plinth SQLite backup of a
/// schema version this release reads and intact, and that the target is empty unless
/// `force`.
fn restore(conn: &mut Connection, source: &Path, force: bool) -> Result<Restored, BackupError> {
    if backup::verify(source)? != Engine::Sqlite {
        return Err(BackupError::Format(
            "this is a PostgreSQL backup; it restores only into PostgreSQL (to move between \
             engines, use plinth export and plinth import)"
                .to_owned(),
        ));
    }
    let incoming = check_backup(source)?;
    let present = describe(conn)?;
    let replaced = if present.is_empty() {
        None
    } else if force {
        Some(present)
    } else {
        return Err(BackupError::NotEmpty(present.describe()));
    };
    conn.restore(MAIN_DB, source, None::<fn(rusqlite::backup::Progress)>)
        .map_err(map)?;
    conn.execute_batch("PRAGMA journal_mode = WAL;")
        .map_err(map)?;
    // The copy (`VACUUM INTO`) keeps row ids today; the index is rebuilt so that it
    // matches its rows whatever a copy did to them.
    rebuild_search(conn)?;
    // The backup may be of another database: as on PostgreSQL, no reader replays changes
    // across a restore. A backup older than the change log has none (its version is
    // applied at the next start, with its window at the head).
    let logged: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = '_plinth_change_window'",
            [],
            |r| r.get(0),
        )
        .map_err(map)?;
    if logged {
        crate::sql::ready(crate::sql::changes::reset(&*conn))?;
    }
    Ok(Restored {
        contents: incoming,
        replaced,
    })
}

/// Whether the only code the database holds is the search triggers its own declarations
/// call for, exactly as Plinth writes them.
fn only_plinths_code(conn: &Connection) -> Result<bool, StoreError> {
    let views: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type NOT IN ('table', 'index', 'trigger')",
            [],
            |r| r.get(0),
        )
        .map_err(map)?;
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
        .map_err(map)?;
    let mut found: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(map)?
        .collect::<Result<_, _>>()
        .map_err(map)?;
    if views > 0 {
        return Ok(false);
    }
    if found.is_empty() {
        return Ok(true);
    }
    let schema = Schema::from_decls(&ddl::applied(conn)?)
        .map_err(|_| StoreError::internal("the backup's declarations are invalid"))?;
    let mut expected: Vec<String> = schema
        .models()
        .iter()
        .flat_map(|m| search::sqlite_triggers(m))
        .collect();
    found.sort();
    expected.sort();
    Ok(found == expected)
}

/// Re-derives every search index of the database on `conn` from its rows.
fn rebuild_search(conn: &Connection) -> Result<(), StoreError> {
    let decls = ddl::applied(conn)?;
    let schema = Schema::from_decls(&decls)
        .map_err(|_| StoreError::internal("the restored declarations are invalid"))?;
    for m in schema.models() {
        if let Some(sql) = search::sqlite_rebuild(m) {
            conn.execute_batch(&sql).map_err(map)?;
        }
    }
    Ok(())
}

/// Opens a backup read-only: a Plinth backup, of a schema version this release reads,
/// intact; what it holds.
fn check_backup(source: &Path) -> Result<Contents, BackupError> {
    let not_ours = || BackupError::Format("not a Plinth backup".to_owned());
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|_| not_ours())?;
    let pragma = |name: &str| -> Result<i64, BackupError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(|_| not_ours())
    };
    if pragma("application_id")? != i64::from(APPLICATION_ID) {
        return Err(not_ours());
    }
    let found = pragma("user_version")?;
    if found > i64::from(SCHEMA_VERSION) {
        return Err(BackupError::Newer {
            found: u64::try_from(found).unwrap_or(u64::MAX),
        });
    }
    // Plinth makes tables, indexes and its search triggers only: another trigger or a view
    // would run code of the file's author inside every later server.
    if !only_plinths_code(&conn).map_err(|_| not_ours())? {
        return Err(BackupError::Format(
            "the backup holds triggers or views Plinth does not make; refusing it".to_owned(),
        ));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|_| not_ours())?;
    if check != "ok" {
        return Err(BackupError::Format(format!(
            "the backup's database is damaged ({check})"
        )));
    }
    describe(&conn).map_err(|_| not_ours())
}

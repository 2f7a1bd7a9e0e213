//! Backup and restore of a PostgreSQL database, as JSON lines (the format: `crate::backup`).
//!
//! A backup reads every Plinth table in one `REPEATABLE READ READ ONLY` transaction, so it
//! is one committed state while instances keep writing (PostgreSQL's snapshot; nothing is
//! locked against writers). Each row is PostgreSQL's own `row_to_json`, and a restore puts
//! it back with `json_populate_recordset` into the table's row type, so every value comes
//! back with its type and exactly (timestamps to the microsecond, floats round-trip).
//!
//! A restore is one transaction under the migration lock: the target's Plinth tables are
//! dropped (refused unless empty or forced), the backup's models are created by the usual
//! migration, and the rows inserted in batches. It completes, or changes nothing.

use super::{PgStore, ddl, errors};
use crate::StoreError;
use crate::backup::{self, BackupError, Contents, Engine, FORMAT, Restored, SCHEMA_VERSION, Taken};
use crate::sql::backup::{INTERNAL_TABLES, contents};
use deadpool_postgres::Transaction;
use plinth_core::{ModelDecl, Schema};
use serde_json::json;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use tokio_postgres::IsolationLevel;

/// Rows fetched from the snapshot at a time, and inserted per statement on restore.
const BATCH: usize = 500;

impl PgStore {
    /// [`crate::Store::backup_to`].
    pub(super) async fn take_backup(&self, dest: &Path) -> Result<Taken, BackupError> {
        backup::check_target(dest)?;
        let partial = backup::partial(dest);
        let _ = std::fs::remove_file(&partial);
        let file = backup::create_private(&partial)?;
        let written = self.write_snapshot(BufWriter::new(file), &partial).await;
        let contents = match written {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let (bytes, sha256) = backup::complete(&partial, dest)?;
        Ok(Taken {
            engine: Engine::Postgres,
            bytes,
            sha256,
            contents,
        })
    }

    /// Writes every Plinth table of one snapshot to `out` (at `path`), synced; what the
    /// snapshot holds.
    async fn write_snapshot(
        &self,
        mut out: BufWriter<std::fs::File>,
        path: &Path,
    ) -> Result<Contents, BackupError> {
        let io = |e| BackupError::io("write", path, e);
        let mut client = self.inner.pool.get().await.map_err(errors::pool)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(errors::map)?;
        let models: Vec<String> = ddl::applied(&tx)
            .await?
            .into_iter()
            .map(|d| d.name)
            .collect();
        let tables: Vec<&str> = INTERNAL_TABLES
            .iter()
            .copied()
            .chain(models.iter().map(String::as_str))
            .collect();
        let header = json!({
            "plinth_backup": FORMAT, "engine": "postgres", "schema_version": SCHEMA_VERSION,
            "taken_at": plinth_core::Timestamp::from_system(std::time::SystemTime::now()).to_string(),
            "tables": tables,
        });
        writeln!(out, "{header}").map_err(io)?;
        for table in &tables {
            let prefix = format!("{{\"t\":{},\"r\":", json!(table));
            tx.batch_execute(&format!(
                "DECLARE plinth_backup NO SCROLL CURSOR FOR SELECT row_to_json(t)::text FROM \"{table}\" t"
            ))
            .await
            .map_err(errors::map)?;
            loop {
                let rows = tx
                    .query(&format!("FETCH {BATCH} FROM plinth_backup"), &[])
                    .await
                    .map_err(errors::map)?;
                for row in &rows {
                    let text: &str = row.try_get(0).map_err(errors::map)?;
                    writeln!(out, "{prefix}{text}}}").map_err(io)?;
                }
                if rows.len() < BATCH {
                    break;
                }
            }
            tx.batch_execute("CLOSE plinth_backup")
                .await
                .map_err(errors::map)?;
        }
        let held = contents(&super::exec::Pg(&tx), &models).await?;
        tx.commit().await.map_err(errors::map)?;
        out.flush().map_err(io)?;
        out.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        Ok(held)
    }

    /// [`crate::Store::restore_from`]: one transaction, not bounded as a whole (a backup may be
    /// large; each statement has the statement timeout), not retried.
    pub(super) async fn restore_backup(
        &self,
        source: &Path,
        force: bool,
    ) -> Result<Restored, BackupError> {
        if backup::verify(source)? != Engine::Postgres {
            return Err(BackupError::Format(
                "this is a SQLite backup; it restores only into SQLite (to move between engines, \
                 use plinth export and plinth import)"
                    .to_owned(),
            ));
        }
        let file = std::fs::File::open(source).map_err(|e| BackupError::io("read", source, e))?;
        let mut input = BufReader::new(file);
        let tables = backup::header(&mut input)?;
        let mut client = self.inner.pool.get().await.map_err(errors::pool)?;
        let tx = client.transaction().await.map_err(errors::map)?;
        let restored = async {
            ddl::lock_and_init(&tx, &self.inner.keys, self.inner.upgrade).await?;
            let recorded: Vec<String> = ddl::applied(&tx)
                .await?
                .into_iter()
                .map(|d| d.name)
                .collect();
            let present = contents(&super::exec::Pg(&tx), &recorded).await?;
            let replaced = match (present.is_empty(), force) {
                (true, _) => None,
                (false, true) => Some(present),
                (false, false) => return Err(BackupError::NotEmpty(present.describe())),
            };
            // Without CASCADE: an object of the operator's that depends on a Plinth table
            // (a view, say) makes the restore fail and change nothing, never goes silently.
            for table in recorded.iter().map(String::as_str).chain(INTERNAL_TABLES) {
                tx.batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
                    .await
                    .map_err(errors::map)?;
            }
            // The record of applied versions goes with the tables it describes: the next
            // line makes them afresh, at this binary's latest version, and records that.
            tx.batch_execute("DROP TABLE IF EXISTS _plinth_schema_versions")
                .await
                .map_err(errors::map)?;
            ddl::lock_and_init(&tx, &self.inner.keys, self.inner.upgrade).await?;
            let schema = Loader::new(&tx, &tables).run(&mut input).await?;
            let models: Vec<String> = schema
                .models()
                .iter()
                .map(|m| m.name().as_str().to_owned())
                .collect();
            let restored = Restored {
                contents: contents(&super::exec::Pg(&tx), &models).await?,
                replaced,
            };
            // The change log is not in a backup: no reader replays across the restore.
            crate::sql::changes::reset(&super::exec::Pg(&tx)).await?;
            Ok((restored, schema))
        }
        .await;
        match restored {
            Ok((restored, schema)) => {
                tx.commit().await.map_err(errors::map)?;
                if let Ok(mut s) = self.inner.schema.write() {
                    *s = std::sync::Arc::new(schema);
                }
                Ok(restored)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// Reads a backup's rows into the transaction, table by table in the header's order.
struct Loader<'a> {
    tx: &'a Transaction<'a>,
    /// The header's tables; each line's must be one, in order.
    tables: &'a [String],
    /// Where in `tables` the lines are.
    at: usize,
    /// `_plinth_models` rows, held until the models' tables are created.
    decls: Vec<serde_json::Value>,
    /// The models created: rows may go only into these and Plinth's own tables.
    schema: Option<Schema>,
    /// Rows read but not yet inserted, of `tables[at]`.
    batch: Vec<serde_json::Value>,
    line: u64,
}

impl<'a> Loader<'a> {
    fn new(tx: &'a Transaction<'a>, tables: &'a [String]) -> Self {
        Self {
            tx,
            tables,
            at: 0,
            decls: Vec::new(),
            schema: None,
            batch: Vec::with_capacity(BATCH),
            line: 1,
        }
    }

    /// Every line after the header; the models created.
    async fn run(mut self, input: &mut BufReader<std::fs::File>) -> Result<Schema, BackupError> {
        let mut text = String::new();
        loop {
            text.clear();
            let n = input
                .read_line(&mut text)
                .map_err(|e| self.bad(&format!("unreadable ({e})")))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|_| self.bad("not JSON"))?;
            let (Some(table), Some(row)) = (v["t"].as_str(), v.get("r")) else {
                return Err(self.bad("not a row"));
            };
            let Some(offset) = self.tables[self.at..].iter().position(|t| t == table) else {
                return Err(self.bad("a table not in the header, or out of order"));
            };
            if offset > 0 {
                self.flush().await?;
                self.at += offset;
            }
            if table == "_plinth_models" {
                self.decls.push(row.clone());
                continue;
            }
            self.create_models().await?;
            if !self.may_fill(table) {
                return Err(self.bad("rows of a table that is neither Plinth's nor a model's"));
            }
            self.batch.push(row.clone());
            if self.batch.len() >= BATCH {
                self.flush().await?;
            }
        }
        self.flush().await?;
        self.create_models().await?;
        self.schema
            .ok_or_else(|| BackupError::Format("the backup declares no models".to_owned()))
    }

    fn bad(&self, reason: &str) -> BackupError {
        BackupError::Format(format!("line {}: {reason}", self.line))
    }

    fn may_fill(&self, table: &str) -> bool {
        INTERNAL_TABLES.contains(&table)
            || self
                .schema
                .as_ref()
                .is_some_and(|s| s.model(table).is_some())
    }

    /// Once: migrates the empty database to the backup's declarations, then puts the
    /// declarations' rows back as they were (the migration records its own).
    async fn create_models(&mut self) -> Result<(), BackupError> {
        if self.schema.is_some() {
            return Ok(());
        }
        self.decls
            .sort_by_key(|d| d["position"].as_i64().unwrap_or(i64::MAX));
        let decls = self
            .decls
            .iter()
            .map(|d| serde_json::from_value::<ModelDecl>(d["decl"].clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackupError::Format(format!("a model declaration is unreadable: {e}")))?;
        let schema = Schema::from_decls(&decls)
            .map_err(|_| BackupError::Format("the model declarations are invalid".to_owned()))?;
        ddl::migrate(self.tx, &schema, &|_| Ok(())).await?;
        for table in INTERNAL_TABLES {
            self.tx
                .batch_execute(&format!("DELETE FROM \"{table}\""))
                .await
                .map_err(errors::map)?;
        }
        insert(self.tx, "_plinth_models", &self.decls).await?;
        self.schema = Some(schema);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BackupError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let table = &self.tables[self.at];
        insert(self.tx, table, &self.batch).await?;
        self.batch.clear();
        Ok(())
    }
}

/// Inserts `rows` (JSON objects, column to value) into `table`, typed by its row type.
async fn insert(
    tx: &Transaction<'_>,
    table: &str,
    rows: &[serde_json::Value],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Generated columns (a model's search vector) are computed, never inserted.
    let columns: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(column_name::text), ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = $1 AND is_generated = 'NEVER'",
            &[&table],
        )
        .await
        .map_err(errors::map)?
        .try_get::<_, Option<String>>(0)
        .map_err(errors::map)?
        .ok_or_else(|| StoreError::internal(format!("no columns in table {table}")))?;
    let array = serde_json::Value::Array(rows.to_vec());
    tx.execute(
        &format!(
            "INSERT INTO \"{table}\" ({columns}) SELECT {columns} FROM \
             jsonb_populate_recordset(NULL::\"{table}\", $1)"
        ),
        &[&array],
    )
    .await
    .map_err(errors::map)?;
    Ok(())
}

//! The SQLite [`Exec`]: runs the shared statements on a connection, binds [`Param`]s and
//! reads rows. Booleans and times are stored as integers (microseconds), ids and JSON as
//! text. Everything here is synchronous: the futures never suspend. Also the SQL functions
//! the statements call (`register_functions`).

use super::errors::map;
use crate::StoreError;
use crate::sql::audit::AuditBatch;
use crate::sql::{Dialect, Exec, Param, Query, SqlRow, unreadable};
use plinth_core::schema::ValueKind;
use plinth_core::{Date, Decimal, RecordId, Timestamp, Value};
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Row, params_from_iter};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as Sql;
        Ok(match self {
            Self::Null => ToSqlOutput::Owned(Sql::Null),
            Self::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Self::Int(i) => ToSqlOutput::Owned(Sql::Integer(*i)),
            Self::Float(f) => ToSqlOutput::Owned(Sql::Real(*f)),
            Self::Bool(b) => ToSqlOutput::Owned(Sql::Integer(i64::from(*b))),
            Self::Time(t) => ToSqlOutput::Owned(Sql::Integer(t.as_micros())),
            Self::Uuid(u) => ToSqlOutput::Owned(Sql::Text(u.hyphenated().to_string())),
            Self::Json(j) => ToSqlOutput::Owned(Sql::Text(j.to_string())),
            Self::Date(d) => ToSqlOutput::Owned(Sql::Text(d.to_string())),
            Self::Array(items) => {
                ToSqlOutput::Owned(Sql::Text(Param::array_json(items).to_string()))
            }
        })
    }
}

impl Exec for Connection {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Row<'r> = Row<'r>;
    type Prepared = ();

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.prepare_cached(&q.sql).map_err(map)?;
        let mut rows = stmt.query(params_from_iter(&q.params)).map_err(map)?;
        let mut out = Vec::with_capacity(q.rows_hint);
        while let Some(row) = rows.next().map_err(map)? {
            out.push(f(row)?);
        }
        Ok(out)
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        let mut stmt = self.prepare_cached(&q.sql).map_err(map)?;
        let mut rows = stmt.query(params_from_iter(&q.params)).map_err(map)?;
        rows.next().map_err(map)?.map(f).transpose()
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(&q.sql).map_err(map)?;
        let n = stmt.execute(params_from_iter(&q.params)).map_err(map)?;
        Ok(n as u64)
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.execute_batch(sql).map_err(map)
    }

    async fn prepare(&self, _q: &Query<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn execute_prepared(&self, _p: &(), q: &Query<'_>) -> Result<u64, StoreError> {
        Exec::execute(self, q).await
    }

    async fn row_prepared<T>(
        &self,
        _p: &(),
        q: &Query<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Exec::row(self, q, f).await
    }
}

/// The writer's connection: a [`Connection`] that, during a group commit, collects the
/// jobs' audit entries for the writer to append together before the commit.
#[derive(Debug)]
pub(super) struct WriteConn {
    conn: Connection,
    pub(super) audit: AuditBatch,
}

impl WriteConn {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn,
            audit: AuditBatch::default(),
        }
    }
}

impl std::ops::Deref for WriteConn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Exec for WriteConn {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Row<'r> = Row<'r>;
    type Prepared = ();

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        Exec::rows(&self.conn, q, f).await
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Exec::row(&self.conn, q, f).await
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        Exec::execute(&self.conn, q).await
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Exec::batch(&self.conn, sql).await
    }

    async fn prepare(&self, _q: &Query<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn execute_prepared(&self, _p: &(), q: &Query<'_>) -> Result<u64, StoreError> {
        Exec::execute(self, q).await
    }

    async fn row_prepared<T>(
        &self,
        _p: &(),
        q: &Query<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Exec::row(self, q, f).await
    }

    fn audit_batch(&self) -> Option<&AuditBatch> {
        Some(&self.audit)
    }

    fn keeps_changes(&self) -> bool {
        true
    }
}

fn parse_uuid(t: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::try_parse_ascii(t).map_err(|_| unreadable("id"))
}

fn micros(i: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_micros(i).ok_or_else(|| unreadable("timestamp"))
}

impl SqlRow for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(map)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(map)
    }

    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        match self.get_ref(i).map_err(map)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => parse_uuid(t).map(Some),
            _ => Err(unreadable("id")),
        }
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        match self.get_ref(i).map_err(map)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(m) => micros(m).map(Some),
            _ => Err(unreadable("timestamp")),
        }
    }

    fn value(&self, i: usize, kind: ValueKind) -> Result<Value, StoreError> {
        let v = self.get_ref(i).map_err(map)?;
        Ok(match (v, kind) {
            (ValueRef::Null, _) => Value::Null,
            (ValueRef::Text(_), ValueKind::Text) => Value::Text(self.text(i)?),
            (ValueRef::Integer(i), ValueKind::Integer) => Value::Integer(i),
            (ValueRef::Integer(i), ValueKind::Float) =>
            {
                #[allow(clippy::cast_precision_loss)]
                Value::Float(i as f64)
            }
            (ValueRef::Real(f), ValueKind::Float) => Value::Float(f),
            (ValueRef::Integer(i), ValueKind::Boolean) => Value::Boolean(i != 0),
            (ValueRef::Integer(i), ValueKind::Datetime) => Value::Datetime(micros(i)?),
            (ValueRef::Text(t), ValueKind::Json) => {
                Value::Json(serde_json::from_slice(t).map_err(|_| unreadable("json"))?)
            }
            (ValueRef::Text(t), ValueKind::Uuid) => {
                Value::Reference(RecordId::from_uuid(parse_uuid(t)?))
            }
            (ValueRef::Text(t), ValueKind::Date) => Value::Date(
                std::str::from_utf8(t)
                    .ok()
                    .and_then(|t| Date::parse(t).ok())
                    .ok_or_else(|| unreadable("date"))?,
            ),
            (ValueRef::Integer(i), ValueKind::Decimal(scale)) => {
                Value::Decimal(Decimal::from_units(i, scale).ok_or_else(|| unreadable("decimal"))?)
            }
            (ValueRef::Text(t), kind @ ValueKind::Array(_)) => serde_json::from_slice(t)
                .ok()
                .and_then(|j| Value::from_json(kind, &j))
                .ok_or_else(|| unreadable("array"))?,
            _ => return Err(unreadable("value (unexpected storage class)")),
        })
    }
}

/// SQL functions Plinth's queries use: `plinth_fold(text)`, Unicode lowercase (for `like`).
pub(super) fn register_functions(conn: &Connection) -> Result<(), StoreError> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("plinth_fold", 1, flags, |ctx| {
        Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase()))
    })
    .map_err(map)
}

/// Opens a connection to `path` with Plinth's pragmas (WAL for the writer, query-only for
/// readers) and functions.
pub(super) fn open_conn(
    path: &Path,
    busy: Duration,
    read_only: bool,
) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(busy).map_err(map)?;
    // WAL lets readers run beside the writer; NORMAL sync in WAL mode loses nothing on a
    // process crash (commits are in the WAL before the call returns), only possibly the last
    // transactions on power loss. Readers keep 16 MB of pages each; the writer 4 MB: a
    // commit after a B-tree split that reordered its pages (which parks a page at the
    // pending-byte page number) makes SQLite walk the writer's whole page cache, so its
    // size is paid on most commits (16 MB cost a create burst 6 % of the server's time, by
    // the profile about a quarter of a millisecond a commit).
    let pragmas = if read_only {
        "PRAGMA foreign_keys = ON; PRAGMA query_only = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    } else {
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000; PRAGMA journal_size_limit = 268435456;"
    };
    conn.execute_batch(pragmas).map_err(map)?;
    // A cached statement keeps its plan. Without this SQLite marks a statement whose plan
    // read a bound value (an `= ?` it guessed the selectivity of, a value matched against
    // the statistics) to be compiled again, and the statement cache's clearing of the
    // bindings counts as a new value: every list was parsed and planned anew.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(map)?;
    conn.set_prepared_statement_cache_capacity(128);
    register_functions(&conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Dialect, Query};
    use rusqlite::StatementStatus;

    /// How often SQLite compiled `q` again over three runs of its cached statement.
    fn reprepares(conn: &Connection, q: &Query<'_>) -> i32 {
        for _ in 0..3 {
            let mut stmt = conn.prepare_cached(&q.sql).expect("prepare");
            let mut rows = stmt.query(params_from_iter(&q.params)).expect("query");
            while rows.next().expect("a row").is_some() {}
        }
        let stmt = conn.prepare_cached(&q.sql).expect("prepare");
        stmt.get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn a_limit_is_a_literal_so_sqlite_keeps_the_compiled_statement() {
        let conn = Connection::open_in_memory().expect("a database");
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
        )
        .expect("a table");
        let mut literal = Query::new(Dialect::Sqlite);
        literal
            .push("SELECT a FROM t WHERE a > ")
            .bind(0_i64)
            .limit(2_i64);
        assert_eq!(literal.sql, "SELECT a FROM t WHERE a > ?1 LIMIT 2");
        assert_eq!(reprepares(&conn, &literal), 0);
        // Why: a bound LIMIT is read by the planner, and binding it again expires the
        // statement, so every run compiled it anew.
        let mut bound = Query::new(Dialect::Sqlite);
        bound
            .push("SELECT a FROM t WHERE a > ")
            .bind(0_i64)
            .push(" LIMIT ")
            .bind(2_i64);
        assert!(reprepares(&conn, &bound) >= 2);
    }

    #[test]
    fn a_cached_statement_keeps_its_plan_whatever_is_bound() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db.sqlite");
        let conn = open_conn(&path, Duration::from_secs(5), false).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, s TEXT, c TEXT); \
             CREATE INDEX t_c ON t (c, a); \
             INSERT INTO t VALUES (1, 'x', '1'), (2, 'y', '2'), (3, 'x', '3');",
        )
        .expect("a table");
        // As a list filters and sorts: equality on a column the sort's index does not hold.
        let mut q = Query::new(Dialect::Sqlite);
        q.push("SELECT a FROM t WHERE s = ")
            .bind("x")
            .push(" ORDER BY c DESC, a DESC")
            .limit(2_i64);
        assert_eq!(reprepares(&conn, &q), 0);
        // Why: a connection without the setting compiles that statement at each run.
        let plain = Connection::open(&path).expect("open");
        assert!(reprepares(&plain, &q) >= 2);
    }
}

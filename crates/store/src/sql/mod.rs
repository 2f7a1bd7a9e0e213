//! The SQL both engines run, written once: every statement with its parameters, and every
//! decision on what a statement's outcome means (which error a write that matched no row
//! is, idempotent replay, reference checks, the last-admin guard, refresh rotation).
//!
//! An engine supplies an [`Exec`] (run a [`Query`], hand each row to a callback as a
//! [`SqlRow`]) and binds [`Param`]s; the [`Dialect`] says how the two spell what differs.
//! Layout: `records` (single records), `batch` (many in one transaction), `list` (the list
//! and keyset builder), `shape` (a list's total, the records an expansion names), `accounts`
//! (users, refresh tokens, API keys), `flags` (feature flags), `audit` (the audit trail),
//! `changes` (the change log),
//! `ddl` (names and base columns of model tables), `versions` (Plinth's own tables),
//! `steps` (the steps of a migration, as SQL to show and to run), `search` (full-text
//! search structures, match and rank).

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod batch;
pub(crate) mod changes;
pub(crate) mod ddl;
mod expr;
pub(crate) mod files;
pub(crate) mod flags;
pub(crate) mod list;
pub(crate) mod records;
pub(crate) mod reseal;
pub(crate) mod search;
pub(crate) mod shape;
pub(crate) mod steps;
pub(crate) mod sweep;
pub(crate) mod transfer;
pub(crate) mod versions;

use crate::StoreError;
use plinth_core::schema::ValueKind;
use plinth_core::{Date, RecordId, Timestamp, Value};
use std::borrow::Cow;
use std::future::Future;
use uuid::Uuid;

/// The channel account and key changes are announced on (PostgreSQL), in the same
/// transaction as the change, so every instance drops its cached credentials.
pub(crate) const INVALIDATE_CHANNEL: &str = "plinth_invalidate";

/// The column holding the blind index of the pii field `field`: a name no declared field
/// can take (field names start with a letter).
pub(crate) fn blind_column(field: &str) -> String {
    format!("_blind_{field}")
}

/// The rows most one statement inserts when a batch's rows go together (PostgreSQL).
pub(crate) const RUN: usize = 64;

/// How many rows of `n` each statement inserts when they go together: runs of the largest
/// power of two up to `most` and [`RUN`], then the binary digits of what is left (32, 16,
/// … 1). A statement and its answer cost the server more than a row, so a batch's rows go
/// in few statements; and a connection keeps few shapes of them prepared (seven at most).
pub(crate) fn runs(n: usize, most: usize) -> impl Iterator<Item = usize> {
    let most = if most >= RUN {
        RUN
    } else {
        1 << most.max(1).ilog2()
    };
    let mut rest = n;
    std::iter::from_fn(move || {
        let take = match rest {
            0 => return None,
            r if r >= most => most,
            r => 1 << r.ilog2(),
        };
        rest -= take;
        Some(take)
    })
}

/// What the two engines spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `?N` placeholders; one writer serialises writes, so no row locks.
    Sqlite,
    /// PostgreSQL: `$N` placeholders, row locks, `ILIKE`, `IS DISTINCT FROM`.
    Postgres,
}

impl Dialect {
    /// Locks the selected rows against concurrent writers until the transaction ends.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }

    /// Locks the selected rows, passing over rows another transaction holds: concurrent
    /// sweepers each take different rows instead of waiting on (or deadlocking with) others.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Keeps the selected rows from being deleted (or their key changed) until the
    /// transaction ends: a checked reference stays valid until the write commits.
    pub(crate) fn for_key_share(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR KEY SHARE",
        }
    }

    /// "Not equal, NULL counting as a value".
    pub(crate) fn distinct(self) -> &'static str {
        match self {
            Self::Sqlite => "IS NOT",
            Self::Postgres => "IS DISTINCT FROM",
        }
    }

    /// NULLs count as larger than every value: last going up, first going down (PostgreSQL's
    /// default, made explicit so both engines agree; SQLite needs nothing for a column that
    /// is never NULL).
    pub(crate) fn nulls(self, nullable: bool, descending: bool) -> &'static str {
        match (self, nullable, descending) {
            (Self::Sqlite, false, _) => "",
            (_, _, false) => " NULLS LAST",
            (_, _, true) => " NULLS FIRST",
        }
    }

    /// The column type of a storage class.
    pub(crate) fn column_type(self, kind: ValueKind) -> &'static str {
        match (self, kind) {
            (_, ValueKind::Text) => "TEXT",
            (Self::Sqlite, ValueKind::Integer | ValueKind::Boolean | ValueKind::Datetime) => {
                "INTEGER"
            }
            (Self::Sqlite, ValueKind::Float) => "REAL",
            (Self::Sqlite, ValueKind::Json | ValueKind::Uuid) => "TEXT",
            (Self::Postgres, ValueKind::Integer) => "BIGINT",
            (Self::Postgres, ValueKind::Float) => "DOUBLE PRECISION",
            (Self::Postgres, ValueKind::Boolean) => "BOOLEAN",
            (Self::Postgres, ValueKind::Datetime) => "TIMESTAMPTZ",
            (Self::Postgres, ValueKind::Json) => "JSONB",
            (Self::Postgres, ValueKind::Uuid) => "UUID",
            // 'YYYY-MM-DD' sorts as the calendar does.
            (Self::Sqlite, ValueKind::Date) => "TEXT",
            (Self::Postgres, ValueKind::Date) => "DATE",
            // The exact count of units of 10^-scale.
            (Self::Sqlite, ValueKind::Decimal(_)) => "INTEGER",
            (Self::Postgres, ValueKind::Decimal(_)) => "BIGINT",
            (Self::Sqlite, ValueKind::Array(_)) => "TEXT",
            (Self::Postgres, ValueKind::Array(_)) => "JSONB",
        }
    }

    /// The prefix that asks for a statement's query plan instead of its rows, and the
    /// column of each plan row that describes its node.
    pub(crate) fn explain(self) -> (&'static str, usize) {
        match self {
            // id, parent, notused, detail
            Self::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
            Self::Postgres => ("EXPLAIN ", 0),
        }
    }

    /// Whether account and key changes must be announced to other instances.
    pub(crate) fn announces(self) -> bool {
        self == Self::Postgres
    }
}

/// A query parameter, bound by each engine in its own way (SQLite stores booleans and
/// times as integers, ids and JSON as text).
#[derive(Debug, Clone)]
pub(crate) enum Param<'a> {
    /// NULL (of any column type).
    Null,
    /// Text.
    Text(Cow<'a, str>),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A point in time, to the microsecond.
    Time(Timestamp),
    /// An id.
    Uuid(Uuid),
    /// A JSON document.
    Json(&'a serde_json::Value),
    /// A calendar date (SQLite: `YYYY-MM-DD` text).
    Date(Date),
    /// A list of text or integer values, as a JSON array.
    Array(&'a [Value]),
}

impl Param<'_> {
    /// The JSON array of an [`Param::Array`]'s items.
    pub(crate) fn array_json(items: &[Value]) -> serde_json::Value {
        serde_json::Value::Array(items.iter().map(Value::to_json).collect())
    }
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Text(s) => Self::Text(Cow::Borrowed(s)),
            Value::Integer(i) => Self::Int(*i),
            Value::Float(f) => Self::Float(*f),
            Value::Boolean(b) => Self::Bool(*b),
            Value::Datetime(t) => Self::Time(*t),
            Value::Json(j) => Self::Json(j),
            Value::Reference(id) => Self::Uuid(*id.as_uuid()),
            Value::Date(d) => Self::Date(*d),
            Value::Decimal(d) => Self::Int(d.units()),
            Value::Array(items) => Self::Array(items),
        }
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Self::Text(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Self::Text(Cow::Borrowed(s))
    }
}

impl From<i64> for Param<'_> {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Timestamp> for Param<'_> {
    fn from(t: Timestamp) -> Self {
        Self::Time(t)
    }
}

impl From<Uuid> for Param<'_> {
    fn from(u: Uuid) -> Self {
        Self::Uuid(u)
    }
}

impl From<RecordId> for Param<'_> {
    fn from(id: RecordId) -> Self {
        Self::Uuid(*id.as_uuid())
    }
}

impl From<Option<Uuid>> for Param<'_> {
    fn from(u: Option<Uuid>) -> Self {
        u.map_or(Self::Null, Self::Uuid)
    }
}

impl From<Option<Timestamp>> for Param<'_> {
    fn from(t: Option<Timestamp>) -> Self {
        t.map_or(Self::Null, Self::Time)
    }
}

/// SQL text and its parameters, built together so placeholders always line up.
#[derive(Debug)]
pub(crate) struct Query<'a> {
    dialect: Dialect,
    /// The statement.
    pub(crate) sql: String,
    /// Its parameters, in placeholder order.
    pub(crate) params: Vec<Param<'a>>,
    /// Whether the engine keeps the prepared statement for reuse (hot statements).
    pub(crate) cached: bool,
    /// How many rows are expected, to size the result.
    pub(crate) rows_hint: usize,
}

impl<'a> Query<'a> {
    /// An empty statement in `dialect`.
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            sql: String::with_capacity(128),
            params: Vec::new(),
            cached: false,
            rows_hint: 1,
        }
    }

    /// Marks the statement as hot: the engine keeps it prepared.
    pub(crate) fn cached(&mut self) -> &mut Self {
        self.cached = true;
        self
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a quoted identifier.
    pub(crate) fn ident(&mut self, name: &str) -> &mut Self {
        self.sql.push('"');
        self.sql.push_str(name);
        self.sql.push('"');
        self
    }

    /// Appends ` LIMIT n` with `n` as a literal, never a parameter: SQLite's planner reads a
    /// bound LIMIT's value and marks the statement to be prepared again whenever that
    /// parameter is bound, so a cached statement with `LIMIT ?` was compiled anew on every
    /// run (a list, each change-feed poll). One statement per limit used is kept instead.
    pub(crate) fn limit(&mut self, n: impl Into<i64>) -> &mut Self {
        self.sql.push_str(" LIMIT ");
        self.sql.push_str(itoa::Buffer::new().format(n.into()));
        self
    }

    /// Appends the placeholder of a new parameter.
    pub(crate) fn bind(&mut self, p: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(p.into());
        self.sql.push(match self.dialect {
            Dialect::Sqlite => '?',
            Dialect::Postgres => '$',
        });
        self.sql
            .push_str(itoa::Buffer::new().format(self.params.len()));
        self
    }

    /// Appends placeholders for `params`, separated by commas.
    pub(crate) fn bind_all(&mut self, params: impl IntoIterator<Item = Param<'a>>) -> &mut Self {
        for (i, p) in params.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(p);
        }
        self
    }

    /// Adds a parameter and returns its placeholder, without appending it.
    pub(crate) fn placeholder(&mut self, p: impl Into<Param<'a>>) -> String {
        let at = self.sql.len();
        self.bind(p);
        self.sql.split_off(at)
    }
}

/// One result row, read by column index.
pub(crate) trait SqlRow {
    /// Text.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A 64-bit integer.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// An id, or NULL.
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;
    /// A point in time, or NULL.
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError>;
    /// A value of a column of storage class `kind`.
    fn value(&self, i: usize, kind: ValueKind) -> Result<Value, StoreError>;

    /// An id.
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        self.opt_uuid(i)?.ok_or_else(|| unreadable("id"))
    }

    /// A point in time.
    fn time(&self, i: usize) -> Result<Timestamp, StoreError> {
        self.opt_time(i)?.ok_or_else(|| unreadable("timestamp"))
    }
}

/// A value in the database that Plinth cannot have written.
pub(crate) fn unreadable(what: &str) -> StoreError {
    StoreError::internal(format!("unreadable {what} in the database"))
}

/// A connection (or transaction) that runs [`Query`]s: each engine's one adapter.
///
/// The SQLite implementation never suspends (see [`ready`]); the PostgreSQL one talks to
/// the server, and its futures are `Send`.
pub(crate) trait Exec {
    /// How this engine spells SQL.
    const DIALECT: Dialect;
    /// A result row.
    type Row<'r>: SqlRow;

    /// Every row, each read by `f`.
    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError>;

    /// The first row, if any, read by `f`.
    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError>;

    /// Runs a statement; the number of rows it changed.
    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError>;

    /// Runs statements without parameters (DDL), separated by `;`.
    async fn batch(&self, sql: &str) -> Result<(), StoreError>;

    /// A statement made ready by [`Exec::prepare`].
    type Prepared: Send + Sync;

    /// Makes `q` ready so that [`Exec::execute_prepared`] sends it at once, with no round
    /// trip of its own first: statements then reach the server in the order they are
    /// started. PostgreSQL prepares it; SQLite has nothing to do. No default: a wrapper
    /// that did not pass it on would break that order.
    async fn prepare(&self, q: &Query<'_>) -> Result<Self::Prepared, StoreError>;

    /// Runs `q`, made ready as `p`; the number of rows it changed.
    async fn execute_prepared(&self, p: &Self::Prepared, q: &Query<'_>) -> Result<u64, StoreError>;

    /// Runs `q`, made ready as `p`; its first row, if any, read by `f`.
    async fn row_prepared<T>(
        &self,
        p: &Self::Prepared,
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError>;

    /// Where this connection collects audit entries to append at its transaction's end, if
    /// it does (the SQLite writer's connection during a group commit).
    fn audit_batch(&self) -> Option<&audit::AuditBatch> {
        None
    }

    /// Whether this connection takes the record a create made, to insert it later together
    /// with the other records of its batch, in few statements (a PostgreSQL group commit
    /// of several creates); once it answers `true`, the caller does not insert it.
    fn hold_insert(&self) -> bool {
        false
    }

    /// Whether the changes this connection logs are kept in memory after commit, as the
    /// change log's tail (the SQLite writer's connection): a logged change then keeps its
    /// record in the clear beside the sealed snapshot.
    fn keeps_changes(&self) -> bool {
        false
    }
}

/// Runs a future that never suspends (a SQLite [`Exec`]'s) to its end on this thread. Never
/// inlined, so a profile names it: `scripts/instructions.sh` counts the writer's jobs by it.
#[inline(never)]
pub(crate) fn ready<T, E: From<StoreError>>(
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => {
            Err(StoreError::internal("a synchronous statement suspended; this is a bug").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn rows_go_in_runs_then_the_binary_digits_of_the_rest() {
        let of = |n, most| runs(n, most).collect::<Vec<_>>();
        assert_eq!(of(0, 64), Vec::<usize>::new());
        assert_eq!(of(1, 64), [1]);
        assert_eq!(of(63, 64), [32, 16, 8, 4, 2, 1]);
        assert_eq!(of(150, 1000), [64, 64, 16, 4, 2]);
        // Wide rows: runs no longer than `most` allows, still a power of two.
        assert_eq!(of(50, 20), [16, 16, 16, 2]);
        assert_eq!(of(3, 0), [1, 1, 1]);
    }
}

//! Plinth's own tables in numbered versions, written once for both engines: each version's
//! `up` (idempotent, so a database from before versions existed is adopted by running every
//! one), its `down`, and the rows of `_plinth_schema_versions` that record what is applied.
//! Each engine runs [`step`] once per transaction (PostgreSQL: under the migration lock)
//! until it answers that nothing is pending.

use super::{Dialect, Exec, Query, SqlRow};
use crate::StoreError;
use crate::versions::{SchemaStatus, SchemaVersion};
use plinth_core::Timestamp;
use plinth_core::schema::ValueKind;

/// One statement of a version's `up`.
pub(crate) enum Op {
    /// SQL text with `{uuid}`, `{time}`, `{json}`, `{int}` and `{bool}` placeholders;
    /// idempotent (`IF NOT EXISTS`, or an `UPDATE` that finds nothing the second time).
    Sql(&'static str),
    /// A column added to a table an earlier version made, when it is missing (SQLite has
    /// no `ADD COLUMN IF NOT EXISTS`).
    AddColumn {
        table: &'static str,
        column: &'static str,
        ty: &'static str,
    },
}

/// A version of Plinth's own tables.
pub(crate) struct Version {
    pub(crate) number: u32,
    pub(crate) name: &'static str,
    /// New tables, columns or indexes only: a binary that does not know this version keeps
    /// running on a database that has it.
    pub(crate) additive: bool,
    pub(crate) up: &'static [Op],
    /// `None`: the baseline, never rolled back.
    pub(crate) down: Option<&'static str>,
    /// The down loses data an up cannot bring back.
    pub(crate) destructive: bool,
}

/// Every version, in order; the last is [`LATEST`]. A release that changes Plinth's own
/// tables appends one; a released version is never edited.
pub(crate) const VERSIONS: &[Version] = &[
    Version {
        number: 0,
        name: "baseline: models, idempotency keys, users, refresh tokens, API keys",
        additive: true,
        up: &[Op::Sql(BASELINE)],
        down: None,
        destructive: false,
    },
    Version {
        number: 1,
        name: "refresh-token family start (absolute session lifetime)",
        additive: true,
        up: &[
            Op::AddColumn {
                table: "_plinth_refresh_tokens",
                column: "family_started_at",
                ty: "{time}",
            },
            // A family's start is its oldest token's creation (the sweeper removes whole
            // families only, so a rolled-back column comes back exact).
            Op::Sql(
                "UPDATE _plinth_refresh_tokens SET family_started_at = (SELECT min(t.created_at) \
                 FROM _plinth_refresh_tokens t WHERE t.family = _plinth_refresh_tokens.family) \
                 WHERE family_started_at IS NULL;
                 CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_started
                     ON _plinth_refresh_tokens (family_started_at);",
            ),
        ],
        down: Some(
            "DROP INDEX IF EXISTS _plinth_refresh_tokens_started;
             ALTER TABLE _plinth_refresh_tokens DROP COLUMN family_started_at;",
        ),
        destructive: false,
    },
    Version {
        number: 2,
        name: "audit trail and its checkpoints",
        additive: true,
        up: &[Op::Sql(AUDIT)],
        down: Some(
            "DROP TABLE IF EXISTS _plinth_audit_checkpoints;
             DROP TABLE IF EXISTS _plinth_audit;",
        ),
        destructive: true,
    },
    Version {
        number: 3,
        name: "sweeper indexes (old idempotency keys, expired and revoked sessions)",
        additive: true,
        up: &[Op::Sql(
            "CREATE INDEX IF NOT EXISTS _plinth_idempotency_created ON _plinth_idempotency (created_at);
             CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_expires ON _plinth_refresh_tokens (expires_at);
             CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_revoked ON _plinth_refresh_tokens (revoked_at)
                 WHERE revoked_at IS NOT NULL;",
        )],
        down: Some(
            "DROP INDEX IF EXISTS _plinth_refresh_tokens_revoked;
             DROP INDEX IF EXISTS _plinth_refresh_tokens_expires;
             DROP INDEX IF EXISTS _plinth_idempotency_created;",
        ),
        destructive: false,
    },
    Version {
        number: 4,
        name: "feature flags",
        additive: true,
        up: &[Op::Sql(super::flags::FLAGS_TABLE)],
        down: Some("DROP TABLE IF EXISTS _plinth_flags;"),
        destructive: true,
    },
    Version {
        number: 5,
        name: "change log (the realtime change feed)",
        additive: true,
        up: &[Op::Sql(super::changes::CHANGES_TABLES)],
        down: Some(
            "DROP TABLE IF EXISTS _plinth_change_window;
             DROP TABLE IF EXISTS _plinth_changes;",
        ),
        destructive: true,
    },
    Version {
        number: 6,
        name: "file fields: which record holds which uploaded file",
        additive: true,
        up: &[Op::Sql(super::files::FILES_TABLE)],
        down: Some("DROP TABLE IF EXISTS _plinth_files;"),
        destructive: true,
    },
    Version {
        number: 7,
        name: "idempotency keys of batch writes",
        additive: true,
        up: &[Op::Sql(super::batch::BATCH_KEYS_TABLE)],
        // The keys serve only batch writes, which a binary without this version does not
        // serve: dropping them loses nothing it could use.
        down: Some("DROP TABLE IF EXISTS _plinth_batch_keys;"),
        destructive: false,
    },
    Version {
        number: 8,
        name: "end-user accounts: verified emails, one-time tokens, TOTP, recovery codes, OpenID identities, session details",
        additive: true,
        up: &[
            Op::AddColumn {
                table: "_plinth_users",
                column: "email_verified_at",
                ty: "{time}",
            },
            Op::AddColumn {
                table: "_plinth_refresh_tokens",
                column: "client_addr",
                ty: "TEXT",
            },
            Op::AddColumn {
                table: "_plinth_refresh_tokens",
                column: "user_agent",
                ty: "TEXT",
            },
            Op::Sql(super::accounts::ACCOUNTS_V8),
        ],
        down: Some(
            "DROP TABLE IF EXISTS _plinth_oidc_logins;
             DROP TABLE IF EXISTS _plinth_oidc_identities;
             DROP TABLE IF EXISTS _plinth_recovery_codes;
             DROP TABLE IF EXISTS _plinth_totp;
             DROP TABLE IF EXISTS _plinth_account_tokens;
             ALTER TABLE _plinth_refresh_tokens DROP COLUMN user_agent;
             ALTER TABLE _plinth_refresh_tokens DROP COLUMN client_addr;
             ALTER TABLE _plinth_users DROP COLUMN email_verified_at;",
        ),
        // Second factors and linked identities do not come back with an up.
        destructive: true,
    },
];

/// The newest version this binary knows.
pub(crate) const LATEST: u32 = 8;

/// The tables every Plinth database has had from the first release. Checks on tables
/// written per request spell a choice with `OR` (see `ddl`'s `base_columns`).
const BASELINE: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_models (
        name TEXT NOT NULL PRIMARY KEY,
        decl {json} NOT NULL,
        position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _plinth_idempotency (
        model TEXT NOT NULL,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        body_digest TEXT NOT NULL,
        record_id {uuid} NOT NULL,
        created_at {time} NOT NULL,
        PRIMARY KEY (model, scope, key)
    );
    CREATE TABLE IF NOT EXISTS _plinth_users (
        id {uuid} NOT NULL PRIMARY KEY,
        email TEXT NOT NULL,
        email_norm TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        password_hash TEXT NOT NULL,
        created_at {time} NOT NULL,
        updated_at {time} NOT NULL,
        version {int} NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX IF NOT EXISTS _plinth_users__email ON _plinth_users (email_norm);
    CREATE TABLE IF NOT EXISTS _plinth_refresh_tokens (
        token_hash TEXT NOT NULL PRIMARY KEY,
        family {uuid} NOT NULL,
        user_id {uuid} NOT NULL,
        expires_at {time} NOT NULL,
        spent_at {time},
        revoked_at {time},
        created_at {time} NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_family ON _plinth_refresh_tokens (family);
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_user ON _plinth_refresh_tokens (user_id);
    CREATE TABLE IF NOT EXISTS _plinth_api_keys (
        id {uuid} NOT NULL PRIMARY KEY,
        user_id {uuid} NOT NULL,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        expires_at {time},
        last_used_at {time},
        revoked_at {time},
        created_at {time} NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_api_keys_user ON _plinth_api_keys (user_id);";

/// The audit trail, indexed for its filters (a record's history, an actor, a time range),
/// and the checkpoints pruning seals.
const AUDIT: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_audit (
        seq {int} NOT NULL PRIMARY KEY,
        at {time} NOT NULL,
        actor_kind TEXT NOT NULL CHECK (actor_kind = 'user' OR actor_kind = 'api_key'
            OR actor_kind = 'system' OR actor_kind = 'guest'),
        actor_id {uuid},
        actor_label TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT,
        record_id {uuid},
        request_id TEXT NOT NULL,
        client_addr TEXT,
        changes TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_audit_record ON _plinth_audit (record_id, seq);
    CREATE INDEX IF NOT EXISTS _plinth_audit_actor ON _plinth_audit (actor_id, seq);
    CREATE INDEX IF NOT EXISTS _plinth_audit_at ON _plinth_audit (at);
    CREATE TABLE IF NOT EXISTS _plinth_audit_checkpoints (
        seq {int} NOT NULL PRIMARY KEY,
        hash TEXT NOT NULL,
        at {time} NOT NULL,
        entry_seq {int} NOT NULL
    );";

/// The record of applied versions: bookkeeping, outside the numbered versions.
const VERSIONS_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_schema_versions (
        version {int} NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        additive {bool} NOT NULL,
        applied_at {time} NOT NULL
    );";

impl Dialect {
    /// `sql` in this dialect's column types (`{uuid}`, `{time}`, `{json}`, `{int}`,
    /// `{bool}` stand for the storage classes).
    pub(crate) fn render(self, sql: &str) -> String {
        sql.replace("{uuid}", self.column_type(ValueKind::Uuid))
            .replace("{time}", self.column_type(ValueKind::Datetime))
            .replace("{json}", self.column_type(ValueKind::Json))
            .replace("{int}", self.column_type(ValueKind::Integer))
            .replace("{bool}", self.column_type(ValueKind::Boolean))
    }
}

impl Version {
    /// The `up`, as the SQL text this dialect runs (an added column's check as a comment).
    pub(crate) fn up_sql(&self, d: Dialect) -> String {
        let mut out = String::new();
        for op in self.up {
            match op {
                Op::Sql(sql) => out.push_str(&d.render(sql)),
                Op::AddColumn { table, column, ty } => out.push_str(&format!(
                    "\n-- when {table} has no column {column}:\n{};",
                    d.add_column(table, column, ty)
                )),
            }
        }
        tidy(&out)
    }
}

/// One statement a line, without the source's indentation.
fn tidy(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A row of `_plinth_schema_versions`.
struct Recorded {
    number: u32,
    name: String,
    additive: bool,
    applied_at: Timestamp,
}

/// Whether `_plinth_schema_versions` exists.
async fn table_exists<E: Exec>(e: &E) -> Result<bool, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push(&E::DIALECT.column_count("_plinth_schema_versions", "version"));
    Ok(e.row(&q, |r| r.int(0)).await?.unwrap_or(0) > 0)
}

/// The applied versions, in order (none when the table is missing).
async fn recorded<E: Exec>(e: &E) -> Result<Vec<Recorded>, StoreError> {
    if !table_exists(e).await? {
        return Ok(Vec::new());
    }
    let mut q = Query::new(E::DIALECT);
    q.push(
        "SELECT version, name, additive, applied_at FROM _plinth_schema_versions ORDER BY version",
    );
    e.rows(&q, |r| {
        Ok(Recorded {
            number: u32::try_from(r.int(0)?).map_err(|_| super::unreadable("schema version"))?,
            name: r.text(1)?,
            additive: matches!(
                r.value(2, ValueKind::Boolean)?,
                plinth_core::Value::Boolean(true)
            ),
            applied_at: r.time(3)?,
        })
    })
    .await
}

/// What [`step`] did.
pub(crate) enum Stepped {
    /// Applied this version.
    Applied(u32),
    /// Nothing pending; the database also has these versions this binary does not know,
    /// all additive.
    Current(Vec<u32>),
}

/// Logs a version applied.
pub(crate) fn applied_note(version: u32) {
    tracing::info!(version, "applied a version of Plinth's own tables");
}

/// Warns of additive versions a newer binary applied (a rolling update in progress).
pub(crate) fn unknown_note(unknown: &[u32]) {
    if let Some(top) = unknown.iter().max() {
        tracing::warn!(
            database = top,
            known = LATEST,
            "the database's schema is at version {top}, newer than this plinth knows ({LATEST}); \
             every newer version is additive, so this plinth runs on it (a rolling update in \
             progress?)"
        );
    }
}

/// Refuses a database that records a version this binary knows under another name: it
/// comes from another release line, whose version of that number made other changes.
fn check_names(recorded: &[Recorded]) -> Result<(), StoreError> {
    for r in recorded {
        if let Some(v) = VERSIONS.iter().find(|v| v.number == r.number)
            && v.name != r.name
        {
            return Err(StoreError::Migration(format!(
                "the database records version {n} of Plinth's own tables as {recorded:?}, but \
                 this plinth's version {n} is {known:?}: the database comes from another release \
                 line of plinth; use the plinth that applied it",
                n = r.number,
                recorded = r.name,
                known = v.name
            )));
        }
    }
    Ok(())
}

/// Refuses a database with a version this binary does not know, unless every such version
/// is additive (those it returns), or with a known number under another name.
fn check_known(recorded: &[Recorded]) -> Result<Vec<u32>, StoreError> {
    check_names(recorded)?;
    let unknown: Vec<&Recorded> = recorded.iter().filter(|r| r.number > LATEST).collect();
    let Some(top) = unknown.iter().map(|r| r.number).max() else {
        return Ok(Vec::new());
    };
    if unknown.iter().all(|r| r.additive) {
        return Ok(unknown.iter().map(|r| r.number).collect());
    }
    Err(StoreError::Migration(format!(
        "the database's schema is at version {top}; this plinth knows up to {LATEST}: run a newer \
         plinth, or roll the schema back with `plinth migrate down --to {LATEST}` using the newer binary"
    )))
}

/// Applies the first pending version, inside the caller's transaction (which holds the
/// migration lock on PostgreSQL), and records it; creates the record's table first.
pub(crate) async fn step<E: Exec>(e: &E, now: Timestamp) -> Result<Stepped, StoreError> {
    let d = E::DIALECT;
    e.batch(&d.render(VERSIONS_TABLE)).await?;
    let done = recorded(e).await?;
    let unknown = check_known(&done)?;
    let Some(v) = VERSIONS
        .iter()
        .find(|v| !done.iter().any(|r| r.number == v.number))
    else {
        return Ok(Stepped::Current(unknown));
    };
    for op in v.up {
        match op {
            Op::Sql(sql) => e.batch(&d.render(sql)).await?,
            Op::AddColumn { table, column, ty } => {
                let mut q = Query::new(d);
                q.push(&d.column_count(table, column));
                if e.row(&q, |r| r.int(0)).await?.unwrap_or(0) == 0 {
                    e.batch(&d.add_column(table, column, ty)).await?;
                }
            }
        }
    }
    let mut q = Query::new(d);
    q.push("INSERT INTO _plinth_schema_versions (version, name, additive, applied_at) VALUES (")
        .bind(i64::from(v.number))
        .push(", ")
        .bind(v.name)
        .push(", ")
        .bind(super::Param::Bool(v.additive))
        .push(", ")
        .bind(now)
        .push(")");
    e.execute(&q).await?;
    Ok(Stepped::Applied(v.number))
}

/// Rolls back the highest applied version above `to`, inside the caller's transaction;
/// `None` when the database is at `to` or below. Before the first one, refuses the whole
/// way down when a version on it is unknown to this binary, is the baseline, or loses data
/// without `allow_destructive`, and a database with a known number under another name: a
/// refused down changes nothing.
pub(crate) async fn step_down<E: Exec>(
    e: &E,
    to: u32,
    allow_destructive: bool,
) -> Result<Option<u32>, StoreError> {
    let done = recorded(e).await?;
    // Another release line's version would be rolled back with this one's down.
    check_names(&done)?;
    let mut above: Vec<u32> = done.iter().map(|r| r.number).filter(|n| *n > to).collect();
    above.sort_unstable();
    let Some(&top) = above.last() else {
        return Ok(None);
    };
    let mut downs = Vec::new();
    for n in above.iter().rev() {
        let Some(v) = VERSIONS.iter().find(|v| v.number == *n) else {
            return Err(StoreError::Migration(format!(
                "the database's schema has version {n}, which this plinth (up to {LATEST}) does \
                 not know: roll it back with the plinth that applied it"
            )));
        };
        let Some(down) = v.down else {
            return Err(StoreError::Migration(format!(
                "version {n} ({}) is the baseline and has no down",
                v.name
            )));
        };
        if v.destructive && !allow_destructive {
            return Err(StoreError::Migration(format!(
                "rolling back version {n} ({}) loses data; take a backup, then pass \
                 --allow-destructive",
                v.name
            )));
        }
        downs.push(down);
    }
    if let Some(down) = downs.first() {
        e.batch(down).await?;
    }
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_schema_versions WHERE version = ")
        .bind(i64::from(top));
    e.execute(&q).await?;
    Ok(Some(top))
}

/// Every known version and every recorded one, each with its SQL in this dialect and when
/// it was applied.
pub(crate) async fn status<E: Exec>(e: &E) -> Result<SchemaStatus, StoreError> {
    let d = E::DIALECT;
    let done = recorded(e).await?;
    let mut versions: Vec<SchemaVersion> = VERSIONS
        .iter()
        .map(|v| {
            let recorded = done.iter().find(|r| r.number == v.number);
            SchemaVersion {
                number: v.number,
                name: v.name.to_owned(),
                additive: v.additive,
                destructive_down: v.destructive,
                known: true,
                applied_at: recorded.map(|r| r.applied_at),
                recorded_name: recorded
                    .filter(|r| r.name != v.name)
                    .map(|r| r.name.clone()),
                up_sql: v.up_sql(d),
                down_sql: v.down.map(tidy),
            }
        })
        .collect();
    for r in done.iter().filter(|r| r.number > LATEST) {
        versions.push(SchemaVersion {
            number: r.number,
            name: r.name.clone(),
            additive: r.additive,
            destructive_down: false,
            known: false,
            applied_at: Some(r.applied_at),
            recorded_name: None,
            up_sql: String::new(),
            down_sql: None,
        });
    }
    Ok(SchemaStatus { versions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_in_order_and_only_the_baseline_has_no_down() {
        assert_eq!(VERSIONS.first().map(|v| v.number), Some(0));
        for pair in VERSIONS.windows(2) {
            assert!(pair[0].number < pair[1].number, "{}", pair[1].name);
        }
        for v in VERSIONS {
            assert_eq!(v.down.is_none(), v.number == 0, "{}", v.name);
        }
        assert_eq!(VERSIONS.last().map(|v| v.number), Some(LATEST));
    }

    #[test]
    fn rendered_sql_has_no_placeholder_left() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            for v in VERSIONS {
                assert!(!v.up_sql(d).contains('{'), "{}", v.name);
            }
        }
    }
}

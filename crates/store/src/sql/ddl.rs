//! The steps of a migration, written once: each engine runs them inside its own migration
//! transaction (which also reads and records the declarations, in its own types).

use super::{Dialect, Exec, Query, SqlRow, blind_column};
use crate::StoreError;
use plinth_core::ModelDef;
use plinth_core::migrate::{IndexKind, Step};
use plinth_core::schema::{FieldDef, FieldType, Unique, ValueKind};

/// Plinth's own tables: declarations, idempotency keys, accounts, refresh tokens, API keys,
/// the audit trail (indexed for its filters: a record's history, an actor, a time range)
/// and its checkpoints. A release's new index here is created at the next start. Checks on
/// tables written per request spell a choice with `OR` (see `base_columns`).
const INTERNAL_TABLES: &str = "
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
    CREATE INDEX IF NOT EXISTS _plinth_idempotency_created ON _plinth_idempotency (created_at);
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
        created_at {time} NOT NULL,
        family_started_at {time}
    );
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_family ON _plinth_refresh_tokens (family);
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_user ON _plinth_refresh_tokens (user_id);
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_expires ON _plinth_refresh_tokens (expires_at);
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_revoked ON _plinth_refresh_tokens (revoked_at)
        WHERE revoked_at IS NOT NULL;
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
    CREATE INDEX IF NOT EXISTS _plinth_api_keys_user ON _plinth_api_keys (user_id);
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

/// Columns added to Plinth's own tables after a release created them: `(table, column,
/// type placeholder, backfill)`. `CREATE TABLE IF NOT EXISTS` leaves an existing table as it
/// was, so each engine adds a missing one at start ([`Dialect::column_count`] tells), then
/// runs the backfill. Every step is idempotent.
pub(crate) const ADDED_COLUMNS: &[(&str, &str, &str, &str)] = &[(
    "_plinth_refresh_tokens",
    "family_started_at",
    "{time}",
    // A family's start is its oldest token's creation.
    "UPDATE _plinth_refresh_tokens SET family_started_at = (SELECT min(t.created_at) \
     FROM _plinth_refresh_tokens t WHERE t.family = _plinth_refresh_tokens.family) \
     WHERE family_started_at IS NULL",
)];

/// Indexes on columns of [`ADDED_COLUMNS`]: created after those are added (an index in
/// `INTERNAL_TABLES` would fail on a table from before its column). Idempotent.
pub(crate) const ADDED_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_started
        ON _plinth_refresh_tokens (family_started_at);";

/// PostgreSQL identifiers' longest length, in bytes; longer ones are silently truncated.
const MAX_IDENT: usize = 63;

impl Dialect {
    /// The name of a model's index: `{model}__{suffix}`; in PostgreSQL, when that is longer
    /// than it keeps, its first 46 bytes and a hash of the whole, so distinct names stay
    /// distinct.
    pub(crate) fn index_name(self, model: &str, suffix: &str) -> String {
        let full = format!("{model}__{suffix}");
        if self == Self::Sqlite || full.len() <= MAX_IDENT {
            return full;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in full.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}_{h:016x}", &full[..46])
    }

    /// Plinth's own tables, in this dialect's column types: one definition for both engines
    /// (`{uuid}`, `{time}`, `{json}` and `{int}` stand for the storage classes).
    pub(crate) fn internal_tables(self) -> String {
        [INTERNAL_TABLES, super::flags::FLAGS_TABLE]
            .concat()
            .replace("{uuid}", self.column_type(ValueKind::Uuid))
            .replace("{time}", self.column_type(ValueKind::Datetime))
            .replace("{json}", self.column_type(ValueKind::Json))
            .replace("{int}", self.column_type(ValueKind::Integer))
    }

    /// A query counting the columns named `column` of `table` (0: add it).
    pub(crate) fn column_count(self, table: &str, column: &str) -> String {
        match self {
            Self::Sqlite => {
                format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{column}'")
            }
            Self::Postgres => format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = '{table}' AND column_name = '{column}'"
            ),
        }
    }

    /// `ALTER TABLE … ADD COLUMN` in this dialect's types, for one of [`ADDED_COLUMNS`].
    pub(crate) fn add_column(self, table: &str, column: &str, ty: &str) -> String {
        let ty = ty.replace("{time}", self.column_type(ValueKind::Datetime));
        format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")
    }

    /// The base columns of a model table. SQLite's checks spell a choice with `OR`: an `IN`
    /// list of three or more values fills an ephemeral table on every insert.
    fn base_columns(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "\"id\" TEXT NOT NULL PRIMARY KEY,
            \"name\" TEXT NOT NULL,
            \"status\" TEXT NOT NULL DEFAULT 'active' CHECK (\"status\" = 'active' OR \"status\" = 'inactive' OR \"status\" = 'deleted'),
            \"created_at\" INTEGER NOT NULL,
            \"updated_at\" INTEGER NOT NULL,
            \"owner_id\" TEXT,
            \"version\" INTEGER NOT NULL DEFAULT 1 CHECK (\"version\" >= 1)"
            }
            Self::Postgres => {
                "\"id\" UUID NOT NULL PRIMARY KEY,
            \"name\" TEXT NOT NULL CHECK (char_length(\"name\") BETWEEN 1 AND 255),
            \"status\" TEXT NOT NULL DEFAULT 'active' CHECK (\"status\" IN ('active', 'inactive', 'deleted')),
            \"created_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"updated_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"owner_id\" UUID,
            \"version\" BIGINT NOT NULL DEFAULT 1 CHECK (\"version\" >= 1)"
            }
        }
    }
}

/// Applies one step of a plan.
pub(crate) async fn apply<E: Exec>(e: &E, step: &Step) -> Result<(), StoreError> {
    let d = E::DIALECT;
    match step {
        Step::CreateModel(model) => create_model(e, model).await,
        Step::DropModel(name) => {
            e.batch(&format!("DROP TABLE IF EXISTS \"{name}\";"))
                .await?;
            let mut q = Query::new(d);
            q.push("DELETE FROM _plinth_idempotency WHERE model = ")
                .bind(name.as_str());
            e.execute(&q).await?;
            Ok(())
        }
        Step::AddField { model, index } => {
            let f = field(model, *index)?;
            let (m, name) = (model.name(), f.name());
            let ty = d.column_type(f.value_kind());
            e.batch(&format!("ALTER TABLE \"{m}\" ADD COLUMN \"{name}\" {ty};"))
                .await?;
            if f.pii() {
                let blind = blind_column(name.as_str());
                e.batch(&format!("ALTER TABLE \"{m}\" ADD COLUMN \"{blind}\" TEXT;"))
                    .await?;
            }
            create_field_indexes(e, model, f).await
        }
        Step::DropField { model, field } => {
            let (m, f) = (model.as_str(), field.as_str());
            e.batch(&format!(
                "DROP INDEX IF EXISTS \"{}\"; DROP INDEX IF EXISTS \"{}\";
                 ALTER TABLE \"{model}\" DROP COLUMN \"{field}\";",
                d.index_name(m, f),
                d.index_name(m, &format!("{f}__ref"))
            ))
            .await?;
            // A pii field's blind index goes with it.
            let blind = blind_column(f);
            let mut q = Query::new(d);
            q.push(&d.column_count(m, &blind));
            if e.row(&q, |r| r.int(0)).await?.unwrap_or(0) > 0 {
                e.batch(&format!("ALTER TABLE \"{m}\" DROP COLUMN \"{blind}\";"))
                    .await?;
            }
            Ok(())
        }
        Step::ChangePii { model, field, pii } => {
            let (how, what) = if *pii {
                ("pii", "sealed")
            } else {
                ("no longer pii", "opened")
            };
            Err(StoreError::Migration(format!(
                "cannot make {model}.{field} {how} in place: its stored values would have to be {what}. \
                 Declare a new field, copy the values over through the API, then drop the old one"
            )))
        }
        Step::Reindex { model, index, from } => {
            let f = field(model, *index)?;
            if *from != IndexKind::None || f.pii() {
                let idx = d.index_name(model.name().as_str(), f.name().as_str());
                e.batch(&format!("DROP INDEX IF EXISTS \"{idx}\";")).await?;
            }
            create_index(e, model, f)
                .await
                .map_err(|e| unique_failure(e, model, f))
        }
        Step::RequireField { model, field } => {
            let mut q = Query::new(d);
            q.push(&format!(
                "SELECT count(*) FROM \"{model}\" WHERE \"{field}\" IS NULL"
            ));
            let missing = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
            if missing > 0 {
                return Err(StoreError::Migration(format!(
                    "cannot make {model}.{field} required: {missing} existing record(s) have no value. Declare it \
                     optional, give those records a value, then make it required"
                )));
            }
            Ok(())
        }
    }
}

/// The field a migration step names.
fn field(model: &ModelDef, index: usize) -> Result<&FieldDef, StoreError> {
    model
        .fields()
        .get(index)
        .ok_or_else(|| StoreError::internal("migration step names a missing field"))
}

/// A unique index that cannot be built: existing records share values.
fn unique_failure(e: StoreError, model: &ModelDef, f: &FieldDef) -> StoreError {
    let (how, whose) = match f.unique() {
        Unique::PerOwner => (" per owner", "records of one owner"),
        _ => ("", "records"),
    };
    match e {
        StoreError::Conflict { .. } => StoreError::Migration(format!(
            "cannot make {}.{} unique{how}: existing {whose} share values. Fix the duplicates first",
            model.name(),
            f.name()
        )),
        other => other,
    }
}

async fn create_model<E: Exec>(e: &E, model: &ModelDef) -> Result<(), StoreError> {
    let d = E::DIALECT;
    let m = model.name().as_str();
    let mut sql = format!(
        "CREATE TABLE \"{m}\" (
            {}",
        d.base_columns()
    );
    for f in model.fields() {
        sql.push_str(&format!(
            ",\n            \"{}\" {}",
            f.name(),
            d.column_type(f.value_kind())
        ));
    }
    for f in model.fields().iter().filter(|f| f.pii()) {
        sql.push_str(&format!(
            ",\n            \"{}\" TEXT",
            blind_column(f.name().as_str())
        ));
    }
    sql.push_str(&format!(
        ");
        CREATE INDEX \"{}\" ON \"{m}\" (\"status\", \"created_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"created_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"updated_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"name\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"owner_id\");",
        d.index_name(m, "status_created"),
        d.index_name(m, "created"),
        d.index_name(m, "updated"),
        d.index_name(m, "name"),
        d.index_name(m, "owner")
    ));
    e.batch(&sql).await?;
    for f in model.fields() {
        create_field_indexes(e, model, f).await?;
    }
    Ok(())
}

async fn create_field_indexes<E: Exec>(
    e: &E,
    model: &ModelDef,
    f: &FieldDef,
) -> Result<(), StoreError> {
    create_index(e, model, f).await?;
    if matches!(f.ty(), FieldType::Reference { .. }) {
        // Purge looks up references to the record it removes.
        let (m, name) = (model.name().as_str(), f.name());
        let idx = E::DIALECT.index_name(m, &format!("{name}__ref"));
        e.batch(&format!(
            "CREATE INDEX IF NOT EXISTS \"{idx}\" ON \"{m}\" (\"{name}\");"
        ))
        .await?;
    }
    Ok(())
}

/// A field's index; a pii field's is on its blind index, and it always has one (equality
/// filters look values up through it).
async fn create_index<E: Exec>(e: &E, model: &ModelDef, f: &FieldDef) -> Result<(), StoreError> {
    let m = model.name().as_str();
    let idx = E::DIALECT.index_name(m, f.name().as_str());
    let blind;
    let (name, kind) = if f.pii() {
        blind = blind_column(f.name().as_str());
        let kind = match IndexKind::of_field(f) {
            IndexKind::None => IndexKind::Plain,
            other => other,
        };
        (blind.as_str(), kind)
    } else {
        (f.name().as_str(), IndexKind::of_field(f))
    };
    let sql = match kind {
        IndexKind::None => return Ok(()),
        IndexKind::Unique => format!("CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"{name}\");"),
        IndexKind::UniquePerOwner => {
            format!("CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"owner_id\", \"{name}\");")
        }
        IndexKind::Plain => format!("CREATE INDEX \"{idx}\" ON \"{m}\" (\"{name}\", \"id\");"),
    };
    e.batch(&sql).await
}

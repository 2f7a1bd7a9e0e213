//! The steps of a migration, written once: each engine runs them inside its own migration
//! transaction (which also reads and records the declarations, in its own types).

use super::{Dialect, Exec, Query, SqlRow, blind_column};
use crate::StoreError;
use plinth_core::ModelDef;
use plinth_core::migrate::{IndexKind, Step};
use plinth_core::schema::{FieldDef, FieldType, Unique};

// Plinth's own tables are in numbered versions: `sql::versions`.

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

    /// `ALTER TABLE … ADD COLUMN` in this dialect's types, for a version of Plinth's own
    /// tables (`ty` a placeholder of [`Dialect::render`]).
    pub(crate) fn add_column(self, table: &str, column: &str, ty: &str) -> String {
        let ty = self.render(ty);
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

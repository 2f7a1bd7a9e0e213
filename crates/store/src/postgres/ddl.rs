//! Schema migrations for PostgreSQL: Plinth's own tables and each model's table, columns
//! and indexes, changed in one transaction under an advisory lock, so instances starting
//! together migrate once.

use super::errors::map;
use crate::StoreError;
use crate::sql::ddl::{field, require, unique_failure};
use plinth_core::migrate::{IndexKind, Plan, Step};
use plinth_core::schema::{FieldDef, FieldType};
use plinth_core::{ModelDecl, ModelDef, Schema};
use tokio_postgres::Transaction;

fn column_type(kind: plinth_core::schema::ValueKind) -> &'static str {
    crate::sql::Dialect::Postgres.column_type(kind)
}

/// The advisory lock key migrations hold (any constant; "plinth" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_706c_696e_7468;

const INTERNAL: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_models (
        name TEXT NOT NULL PRIMARY KEY,
        decl JSONB NOT NULL,
        position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _plinth_idempotency (
        model TEXT NOT NULL,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        body_digest TEXT NOT NULL,
        record_id UUID NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model, scope, key)
    );
    CREATE TABLE IF NOT EXISTS _plinth_users (
        id UUID NOT NULL PRIMARY KEY,
        email TEXT NOT NULL,
        email_norm TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        password_hash TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        version BIGINT NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX IF NOT EXISTS _plinth_users__email ON _plinth_users (email_norm);
    CREATE TABLE IF NOT EXISTS _plinth_refresh_tokens (
        token_hash TEXT NOT NULL PRIMARY KEY,
        family UUID NOT NULL,
        user_id UUID NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        spent_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_family ON _plinth_refresh_tokens (family);
    CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_user ON _plinth_refresh_tokens (user_id);
    CREATE TABLE IF NOT EXISTS _plinth_api_keys (
        id UUID NOT NULL PRIMARY KEY,
        user_id UUID NOT NULL,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        expires_at TIMESTAMPTZ,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_api_keys_user ON _plinth_api_keys (user_id);";

/// Takes the migration lock for the rest of the transaction and creates Plinth's own tables.
pub(super) async fn lock_and_init(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map)?;
    tx.batch_execute(INTERNAL).await.map_err(map)
}

async fn applied(tx: &Transaction<'_>) -> Result<Vec<ModelDecl>, StoreError> {
    let rows = tx
        .query("SELECT decl FROM _plinth_models ORDER BY position", &[])
        .await
        .map_err(map)?;
    rows.iter()
        .map(|r| {
            serde_json::from_value(r.get::<_, serde_json::Value>(0)).map_err(StoreError::internal)
        })
        .collect()
}

/// The plan from the recorded schema to `schema`.
pub(super) async fn plan(tx: &Transaction<'_>, schema: &Schema) -> Result<Plan, StoreError> {
    Ok(Plan::new(&applied(tx).await?, schema))
}

/// Applies the plan inside `tx` (which holds the lock) and records the declarations.
pub(super) async fn migrate(
    tx: &Transaction<'_>,
    schema: &Schema,
    allow_destructive: bool,
) -> Result<Vec<String>, StoreError> {
    let old = applied(tx).await?;
    let plan = Plan::new(&old, schema);
    plan.check(allow_destructive)
        .map_err(StoreError::Migration)?;
    for step in &plan.steps {
        apply(tx, step).await?;
    }
    let decls: Vec<&ModelDecl> = schema.models().iter().map(|m| m.decl()).collect();
    if decls.iter().copied().ne(old.iter()) {
        tx.execute("DELETE FROM _plinth_models", &[])
            .await
            .map_err(map)?;
        for (position, decl) in decls.iter().enumerate() {
            let json = serde_json::to_value(decl).map_err(StoreError::internal)?;
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO _plinth_models (name, decl, position) VALUES ($1, $2, $3)",
                &[&decl.name, &json, &position],
            )
            .await
            .map_err(map)?;
        }
    }
    Ok(plan.steps.iter().map(Step::describe).collect())
}

async fn apply(tx: &Transaction<'_>, step: &Step) -> Result<(), StoreError> {
    match step {
        Step::CreateModel(model) => create_model(tx, model).await,
        Step::DropModel(name) => {
            tx.batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
                .await
                .map_err(map)?;
            tx.execute("DELETE FROM _plinth_idempotency WHERE model = $1", &[name])
                .await
                .map_err(map)?;
            Ok(())
        }
        Step::AddField { model, index } => {
            let f = field(model, *index)?;
            tx.batch_execute(&format!(
                "ALTER TABLE \"{}\" ADD COLUMN \"{}\" {}",
                model.name(),
                f.name(),
                column_type(f.value_kind())
            ))
            .await
            .map_err(map)?;
            create_field_indexes(tx, model, f).await
        }
        Step::DropField { model, field } => {
            // Dropping the column drops its indexes with it.
            tx.batch_execute(&format!("ALTER TABLE \"{model}\" DROP COLUMN \"{field}\""))
                .await
                .map_err(map)
        }
        Step::Reindex { model, index, from } => {
            let f = field(model, *index)?;
            if *from != IndexKind::None {
                tx.batch_execute(&format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    index_name(model.name().as_str(), f.name().as_str())
                ))
                .await
                .map_err(map)?;
            }
            create_index(tx, model, f)
                .await
                .map_err(|e| unique_failure(e, model, f))
        }
        Step::RequireField { model, field } => {
            let row = tx
                .query_one(
                    &format!("SELECT count(*) FROM \"{model}\" WHERE \"{field}\" IS NULL"),
                    &[],
                )
                .await
                .map_err(map)?;
            let missing: i64 = row.get(0);
            require(model, field, missing)
        }
    }
}

/// PostgreSQL identifiers longest length, in bytes; longer ones are silently truncated.
const MAX_IDENT: usize = 63;

/// The name of a model's index: `{model}__{suffix}`, or, when that is longer than PostgreSQL
/// keeps, its first 46 bytes and a hash of the whole, so distinct names stay distinct.
pub(super) fn index_name(model: &str, suffix: &str) -> String {
    let full = format!("{model}__{suffix}");
    if full.len() <= MAX_IDENT {
        return full;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in full.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}_{h:016x}", &full[..46])
}

async fn create_model(tx: &Transaction<'_>, model: &ModelDef) -> Result<(), StoreError> {
    let m = model.name();
    let mut sql = format!(
        "CREATE TABLE \"{m}\" (
            \"id\" UUID NOT NULL PRIMARY KEY,
            \"name\" TEXT NOT NULL CHECK (char_length(\"name\") BETWEEN 1 AND 255),
            \"status\" TEXT NOT NULL DEFAULT 'active' CHECK (\"status\" IN ('active', 'inactive', 'deleted')),
            \"created_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"updated_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"owner_id\" UUID,
            \"version\" BIGINT NOT NULL DEFAULT 1 CHECK (\"version\" >= 1)"
    );
    for f in model.fields() {
        sql.push_str(&format!(
            ",\n            \"{}\" {}",
            f.name(),
            column_type(f.value_kind())
        ));
    }
    sql.push_str(&format!(
        ");
        CREATE INDEX \"{}\" ON \"{m}\" (\"status\", \"created_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"created_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"updated_at\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"name\", \"id\");
        CREATE INDEX \"{}\" ON \"{m}\" (\"owner_id\");",
        index_name(m.as_str(), "status_created"),
        index_name(m.as_str(), "created"),
        index_name(m.as_str(), "updated"),
        index_name(m.as_str(), "name"),
        index_name(m.as_str(), "owner")
    ));
    tx.batch_execute(&sql).await.map_err(map)?;
    for f in model.fields() {
        create_field_indexes(tx, model, f).await?;
    }
    Ok(())
}

async fn create_field_indexes(
    tx: &Transaction<'_>,
    model: &ModelDef,
    f: &FieldDef,
) -> Result<(), StoreError> {
    create_index(tx, model, f).await?;
    if matches!(f.ty(), FieldType::Reference { .. }) {
        let (m, name) = (model.name(), f.name());
        tx.batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS \"{}\" ON \"{m}\" (\"{name}\")",
            index_name(m.as_str(), &format!("{name}__ref"))
        ))
        .await
        .map_err(map)?;
    }
    Ok(())
}

async fn create_index(
    tx: &Transaction<'_>,
    model: &ModelDef,
    f: &FieldDef,
) -> Result<(), StoreError> {
    let (m, name) = (model.name(), f.name());
    let sql = match IndexKind::of_field(f) {
        IndexKind::None => return Ok(()),
        IndexKind::Unique => {
            format!(
                "CREATE UNIQUE INDEX \"{}\" ON \"{m}\" (\"{name}\")",
                index_name(m.as_str(), name.as_str())
            )
        }
        IndexKind::Plain => {
            format!(
                "CREATE INDEX \"{}\" ON \"{m}\" (\"{name}\", \"id\")",
                index_name(m.as_str(), name.as_str())
            )
        }
    };
    tx.batch_execute(&sql).await.map_err(map)
}

//! Schema migrations for PostgreSQL: the versions of Plinth's own tables, and each model's table, columns
//! and indexes, changed in one transaction under an advisory lock, so instances starting
//! together migrate once.

use super::errors::map;
use super::exec::Pg;
use crate::StoreError;
use crate::sql::steps::apply;
use crate::sql::versions::{self, Stepped};
use deadpool_postgres::Transaction;
use plinth_core::Timestamp;
use plinth_core::migrate::{Plan, Step};
use plinth_core::{ModelDecl, Schema};

/// The advisory lock key migrations hold (any constant; "plinth" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_706c_696e_7468;

/// Takes the migration lock for the rest of the transaction.
pub(super) async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map)?;
    Ok(())
}

/// Takes the migration lock for the rest of the transaction and, when `upgrade`, applies
/// any pending version of Plinth's own tables in it (at open each version had its own
/// transaction: see [`upgrade`]; this catches a database restored or rolled back since).
/// With keys, also seals the emails of accounts from before emails were sealed (one
/// instance does, under the lock).
pub(super) async fn lock_and_init(
    tx: &Transaction<'_>,
    keys: &crate::Keys,
    upgrade: bool,
) -> Result<(), StoreError> {
    lock(tx).await?;
    if !upgrade {
        return Ok(());
    }
    let now = Timestamp::from_system(std::time::SystemTime::now());
    while let Stepped::Applied(version) = versions::step(&Pg(tx), now).await? {
        versions::applied_note(version);
    }
    if keys.present() {
        let sealed = crate::sql::accounts::seal_plain_emails(&Pg(tx), keys).await?;
        if sealed > 0 {
            tracing::info!(accounts = sealed, "sealed the emails of existing accounts");
        }
    }
    Ok(())
}

/// Brings Plinth's own tables to the latest version at open: one transaction per version,
/// each under the migration lock, so instances starting together apply each once (see
/// `sql::versions::step`).
pub(super) async fn upgrade(store: &super::PgStore) -> Result<(), StoreError> {
    let now = Timestamp::from_system(std::time::SystemTime::now());
    loop {
        let stepped = store
            .in_tx(async |tx| {
                lock(tx.0).await?;
                versions::step(tx, now).await
            })
            .await?;
        match stepped {
            Stepped::Applied(version) => versions::applied_note(version),
            Stepped::Current(unknown) => {
                versions::unknown_note(&unknown);
                return Ok(());
            }
        }
    }
}

/// Rolls Plinth's own tables back to version `to`: one transaction per version, each under
/// the migration lock.
pub(super) async fn down(
    store: &super::PgStore,
    to: u32,
    allow_destructive: bool,
) -> Result<Vec<u32>, StoreError> {
    let mut undone = Vec::new();
    while let Some(version) = store
        .in_tx(async |tx| {
            lock(tx.0).await?;
            versions::step_down(tx, to, allow_destructive).await
        })
        .await?
    {
        undone.push(version);
    }
    Ok(undone)
}

/// The declarations the last migration recorded.
pub(super) async fn applied(
    tx: &impl deadpool_postgres::GenericClient,
) -> Result<Vec<ModelDecl>, StoreError> {
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

/// Applies the plan inside `tx` (which holds the lock), after `check` accepts it, and
/// records the declarations.
pub(super) async fn migrate(
    tx: &Transaction<'_>,
    schema: &Schema,
    check: &(dyn Fn(&Plan) -> Result<(), StoreError> + Sync),
) -> Result<Vec<String>, StoreError> {
    // The steps' SQL spells declared values (defaults, enum values) as standard literals,
    // where a backslash is a character: so they mean that whatever the database's or the
    // role's setting says.
    tx.batch_execute("SET LOCAL standard_conforming_strings = on")
        .await
        .map_err(map)?;
    let old = applied(tx).await?;
    let plan = Plan::new(&old, schema);
    check(&plan)?;
    for step in &plan.steps {
        apply(&Pg(tx), step).await?;
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

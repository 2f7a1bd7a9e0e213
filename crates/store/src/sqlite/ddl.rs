//! Schema migrations for SQLite: the versions of Plinth's own tables, and each model's table, columns and
//! indexes, changed in one transaction.

use super::errors::map;
use crate::StoreError;
use crate::sql::ready;
use crate::sql::steps::apply;
use crate::sql::versions::{self, Stepped};
use plinth_core::Timestamp;
use plinth_core::migrate::{Plan, Step};
use plinth_core::{ModelDecl, Schema};
use rusqlite::{Connection, TransactionBehavior, params};

/// Brings Plinth's own tables to the latest version, one transaction per version (each
/// under the write lock, so a second process opening the file at the same moment finds it
/// applied), after refusing a database newer than this binary (see `sql::versions`).
/// With keys, also seals the emails of accounts from before emails were sealed.
pub(super) fn init_internal(conn: &Connection, keys: &crate::Keys) -> Result<(), StoreError> {
    let now = Timestamp::from_system(std::time::SystemTime::now());
    loop {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(map)?;
        let stepped = ready(versions::step(&*tx, now))?;
        tx.commit().map_err(map)?;
        match stepped {
            Stepped::Applied(version) => versions::applied_note(version),
            Stepped::Current(unknown) => {
                versions::unknown_note(&unknown);
                break;
            }
        }
    }
    if keys.present() {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(map)?;
        let sealed = ready(crate::sql::accounts::seal_plain_emails(&*tx, keys))?;
        tx.commit().map_err(map)?;
        if sealed > 0 {
            tracing::info!(accounts = sealed, "sealed the emails of existing accounts");
        }
    }
    Ok(())
}

/// Rolls Plinth's own tables back to version `to`, one transaction per version.
pub(super) fn down(
    conn: &Connection,
    to: u32,
    allow_destructive: bool,
) -> Result<Vec<u32>, StoreError> {
    let mut undone = Vec::new();
    loop {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(map)?;
        let stepped = ready(versions::step_down(&*tx, to, allow_destructive))?;
        tx.commit().map_err(map)?;
        match stepped {
            Some(version) => undone.push(version),
            None => return Ok(undone),
        }
    }
}

/// The declarations the last migration recorded.
pub(super) fn applied(conn: &Connection) -> Result<Vec<ModelDecl>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT decl FROM _plinth_models ORDER BY position")
        .map_err(map)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(map)?;
    let mut decls = Vec::new();
    for row in rows {
        let text = row.map_err(map)?;
        decls.push(serde_json::from_str(&text).map_err(StoreError::internal)?);
    }
    Ok(decls)
}

/// The plan from the recorded schema to `schema`.
pub(super) fn plan(conn: &Connection, schema: &Schema) -> Result<Plan, StoreError> {
    Ok(Plan::new(&applied(conn)?, schema))
}

/// Applies the plan to `schema` in one transaction and records the new declarations.
pub(super) fn migrate(
    conn: &mut Connection,
    schema: &Schema,
    allow_destructive: bool,
) -> Result<Vec<String>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    let steps = migrate_in(&tx, schema, &|plan: &Plan| {
        plan.check(allow_destructive).map_err(StoreError::Migration)
    })?;
    tx.commit().map_err(map)?;
    Ok(steps)
}

/// Applies the plan to `schema` inside the caller's transaction, after `check` accepts it,
/// and records the new declarations.
pub(super) fn migrate_in(
    tx: &Connection,
    schema: &Schema,
    check: &dyn Fn(&Plan) -> Result<(), StoreError>,
) -> Result<Vec<String>, StoreError> {
    let old = applied(tx)?;
    let plan = Plan::new(&old, schema);
    check(&plan)?;
    for step in &plan.steps {
        ready(apply(tx, step))?;
    }
    let decls: Vec<&ModelDecl> = schema.models().iter().map(|m| m.decl()).collect();
    if decls.iter().copied().ne(old.iter()) {
        tx.execute("DELETE FROM _plinth_models", []).map_err(map)?;
        for (position, decl) in decls.iter().enumerate() {
            let text = serde_json::to_string(decl).map_err(StoreError::internal)?;
            tx.execute(
                "INSERT INTO _plinth_models (name, decl, position) VALUES (?1, ?2, ?3)",
                params![decl.name, text, i64::try_from(position).unwrap_or(i64::MAX)],
            )
            .map_err(map)?;
        }
    }
    Ok(plan.steps.iter().map(Step::describe).collect())
}

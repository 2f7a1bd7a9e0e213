//! Schema migrations for SQLite: the internal tables, and each model's table, columns and
//! indexes, changed in one transaction.

use super::errors::map;
use crate::StoreError;
use crate::sql::ddl::apply;
use crate::sql::ready;
use plinth_core::migrate::{Plan, Step};
use plinth_core::{ModelDecl, Schema};
use rusqlite::{Connection, TransactionBehavior, params};

/// Creates Plinth's own tables if they are missing.
pub(super) fn init_internal(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _plinth_models (
            name TEXT NOT NULL PRIMARY KEY,
            decl TEXT NOT NULL,
            position INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS _plinth_idempotency (
            model TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            body_digest TEXT NOT NULL,
            record_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (model, scope, key)
        );
        CREATE TABLE IF NOT EXISTS _plinth_users (
            id TEXT NOT NULL PRIMARY KEY,
            email TEXT NOT NULL,
            email_norm TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE IF NOT EXISTS _plinth_refresh_tokens (
            token_hash TEXT NOT NULL PRIMARY KEY,
            family TEXT NOT NULL,
            user_id TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            spent_at INTEGER,
            revoked_at INTEGER,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_family ON _plinth_refresh_tokens (family);
        CREATE INDEX IF NOT EXISTS _plinth_refresh_tokens_user ON _plinth_refresh_tokens (user_id);
        CREATE TABLE IF NOT EXISTS _plinth_api_keys (
            id TEXT NOT NULL PRIMARY KEY,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
            expires_at INTEGER,
            last_used_at INTEGER,
            revoked_at INTEGER,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS _plinth_api_keys_user ON _plinth_api_keys (user_id);",
    )
    .map_err(map)
}

fn applied(conn: &Connection) -> Result<Vec<ModelDecl>, StoreError> {
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
    let old = applied(&tx)?;
    let plan = Plan::new(&old, schema);
    plan.check(allow_destructive)
        .map_err(StoreError::Migration)?;
    for step in &plan.steps {
        ready(apply(&*tx, step))?;
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
    tx.commit().map_err(map)?;
    Ok(plan.steps.iter().map(Step::describe).collect())
}

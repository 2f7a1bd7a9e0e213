//! What SQLite does per write: the inserts of a record and of its audit entry build no
//! temporary table. (A `CHECK (x IN (…))` over three or more values makes SQLite fill an
//! ephemeral table on every insert, about a tenth of the writer's work per create; the
//! checks are spelled with `OR` instead.)

use plinth_core::schema::{ModelDecl, Schema};
use plinth_store::{SqliteOptions, SqliteStore, Store};
use serde_json::json;

/// The opcodes of `EXPLAIN sql` with every parameter unbound.
fn opcodes(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).expect("explain");
    let mut rows = stmt.raw_query();
    let mut ops = Vec::new();
    while let Some(row) = rows.next().expect("a step") {
        ops.push(row.get::<_, String>(1).expect("an opcode"));
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_and_audit_inserts_open_no_ephemeral_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plinth.db");
    let store = SqliteStore::open(SqliteOptions::new(path.clone()))
        .await
        .expect("open");
    let decls = json!([{ "name": "thing", "fields": [{ "name": "n", "type": "integer" }] }]);
    let decls: Vec<ModelDecl> = serde_json::from_value(decls).expect("declarations");
    let schema = Schema::from_decls(&decls).expect("a schema");
    store.migrate(&schema, false).await.expect("migrate");
    store.close().await;
    let conn = rusqlite::Connection::open(&path).expect("reopen");
    for sql in [
        "INSERT INTO \"thing\" (\"id\", \"name\", \"status\", \"created_at\", \"updated_at\", \
         \"owner_id\", \"version\", \"n\") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO _plinth_audit (seq, at, actor_kind, actor_id, actor_label, action, model, \
         record_id, request_id, client_addr, changes, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ] {
        let ops = opcodes(&conn, sql);
        assert!(!ops.is_empty(), "no program for {sql}");
        assert!(
            !ops.iter().any(|o| o == "OpenEphemeral"),
            "{sql} builds a temporary table: {ops:?}"
        );
    }
}

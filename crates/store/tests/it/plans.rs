//! What SQLite does per write and per page: the inserts of a record and of its audit entry
//! build no temporary table, and a page after a cursor seeks its place in an index. (A
//! `CHECK (x IN (…))` over three or more values makes SQLite fill an ephemeral table on
//! every insert, about a tenth of the writer's work per create; the checks are spelled with
//! `OR` instead.)

use plinth_core::input::validate_draft;
use plinth_core::schema::{ModelDecl, Schema};
use plinth_core::{FieldAccess, ListQuery, ListScope, Principal};
use plinth_store::{SqliteOptions, SqliteStore, Store, WriteCtx};
use serde_json::json;
use std::sync::Arc;

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

/// A page deep in a sort on a nullable indexed field seeks its place in the field's index,
/// on either side of the NULLs, instead of reading every entry before it (SQLite's plan
/// says `SEARCH`, never `SCAN thing`): the statement `Store::explain_list` shows is the one
/// `Store::list` runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_after_a_cursor_in_a_nullable_sort_seek_the_index() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("plinth.db")))
        .await
        .expect("open");
    let decls = json!([{ "name": "thing", "fields": [
        { "name": "n", "type": "integer", "indexed": true }
    ] }]);
    let decls: Vec<ModelDecl> = serde_json::from_value(decls).expect("declarations");
    let schema = Schema::from_decls(&decls).expect("a schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = Arc::clone(schema.model("thing").expect("the model"));
    let ctx = WriteCtx::new(Principal::local_admin(), "plans");
    let mut made = Vec::new();
    for n in [json!(1), json!(2), json!(null)] {
        let body = json!({ "name": "t", "n": n });
        let draft = validate_draft(&model, &body, FieldAccess::All).expect("a draft");
        let created = store
            .create(&ctx, &model, draft, None)
            .await
            .expect("create");
        made.push(created.record);
    }
    let parse = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListQuery::parse(&model, &pairs, FieldAccess::All).expect("a query")
    };
    // After a value going up (the NULLs still follow), after a value going down, after a
    // NULL going down (the values still follow), after a NULL going up.
    for (sort, after) in [("n", 0), ("-n", 1), ("-n", 2), ("n", 2)] {
        let cursor = parse(&[("sort", sort), ("limit", "1")]).cursor_after(&made[after], None);
        let query = parse(&[("sort", sort), ("limit", "1"), ("cursor", &cursor)]);
        let plan = store
            .explain_list(&model, &query, ListScope::All)
            .await
            .expect("explain");
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH thing USING INDEX thing__n")),
            "sort {sort} after record {after}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|l| l.starts_with("SCAN thing")),
            "sort {sort} after record {after} reads the index from its start: {plan:?}"
        );
        // And the page is the right one.
        let page = store
            .list(&model, &query, ListScope::All)
            .await
            .expect("list");
        let expected = match (sort, after) {
            ("n", 0) => 1,
            ("-n", 1) => 0,
            ("-n", 2) => 1,
            _ => usize::MAX,
        };
        let got = page.records.first().map(|r| r.id);
        assert_eq!(
            got,
            made.get(expected).map(|r| r.id),
            "sort {sort} after {after}"
        );
    }
    store.close().await;
}

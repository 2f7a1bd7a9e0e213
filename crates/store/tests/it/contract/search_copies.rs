//! Full-text search in copies of a database: a backup restored, an export imported, and
//! purges before the copy (whose rows must not linger in the index).

use super::{Engine, admin, model, query, schema};
use plinth_core::{ListScope, ModelDef, Schema, Value};
use plinth_store::Store;
use plinth_store::transfer;
use serde_json::json;
use std::sync::Arc;

contract!(
    a_restored_backup_searches_as_the_original,
    an_imported_export_searches_as_the_original,
);

fn decls() -> Schema {
    schema(json!([{ "name": "book", "fields": [
        { "name": "title", "type": "string", "searchable": true },
        { "name": "price", "type": "integer" },
    ]}]))
}

/// 20 books, every third one purged and one updated, so row ids have gaps.
async fn populate(e: &Engine, schema: &Schema) {
    e.store.migrate(schema, false).await.expect("migrate");
    let m = model(schema, "book");
    for i in 0..20 {
        let title = format!("copy {i} {}", if i % 2 == 0 { "even" } else { "odd" });
        let rec = e
            .create(
                &admin(),
                &m,
                json!({ "name": "b", "title": title, "price": i }),
            )
            .await;
        if i % 3 == 0 {
            e.store
                .purge(&admin(), &m, rec.id, None)
                .await
                .expect("purge");
        }
        if i == 1 {
            e.store
                .update(
                    &admin(),
                    &m,
                    rec.id,
                    super::patch(&m, &json!({ "title": "renamed odd" })),
                    None,
                )
                .await
                .expect("update");
        }
    }
}

/// What searches find, as sorted titles, per query.
async fn searches(store: &dyn Store, m: &Arc<ModelDef>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in ["even", "odd", "copy", "renamed", "copy 3"] {
        let page = store
            .list(m, &query(m, &[("q", q), ("limit", "200")]), ListScope::All)
            .await
            .expect("search");
        let mut titles: Vec<String> = page
            .records
            .iter()
            .map(|r| match &r.fields[0] {
                Value::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        titles.sort();
        out.push(titles);
    }
    out
}

async fn a_restored_backup_searches_as_the_original(e: &Engine) {
    let schema = decls();
    populate(e, &schema).await;
    let m = model(&schema, "book");
    let before = searches(e.store.as_ref(), &m).await;
    assert_eq!(before[1].len(), 7, "{before:?}");
    assert!(before[4].is_empty(), "a purged record found: {before:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.backup");
    e.store.backup_to(&file).await.expect("backup");
    let target = e.another().await;
    target
        .store
        .restore_from(&file, false)
        .await
        .expect("restore");
    assert_eq!(searches(target.store.as_ref(), &m).await, before);
    // Writes after the restore are indexed as usual.
    target
        .create(
            &admin(),
            &m,
            json!({ "name": "n", "title": "after restore" }),
        )
        .await;
    let after = target
        .store
        .list(&m, &query(&m, &[("q", "restore")]), ListScope::All)
        .await
        .expect("search");
    assert_eq!(after.records.len(), 1);
    target.store.close().await;
}

async fn an_imported_export_searches_as_the_original(e: &Engine) {
    let schema = decls();
    populate(e, &schema).await;
    let m = model(&schema, "book");
    let before = searches(e.store.as_ref(), &m).await;
    let mut dump = Vec::new();
    transfer::export(e.store.as_ref(), &mut dump)
        .await
        .expect("export");
    let target = e.another().await;
    target.store.migrate(&schema, false).await.expect("migrate");
    transfer::import(target.store.as_ref(), &schema, &mut dump.as_slice())
        .await
        .expect("import");
    assert_eq!(searches(target.store.as_ref(), &m).await, before);
    target.store.close().await;
}

/// A SQLite backup whose search trigger does something else than Plinth's is refused, as
/// any code of the file's author is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_with_an_altered_search_trigger_is_refused() {
    use sha2::{Digest, Sha256};
    let e = Engine::sqlite().await;
    let schema = decls();
    populate(&e, &schema).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.backup");
    e.store.backup_to(&file).await.expect("backup");
    let db = rusqlite::Connection::open(&file).expect("open the copy");
    let sql: String = db
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_insert'",
            [],
            |r| r.get(0),
        )
        .expect("Plinth's insert trigger");
    db.execute_batch(&format!(
        "DROP TRIGGER \"_plinth_search_book_insert\"; {}",
        sql.replace("END", "DELETE FROM _plinth_audit; END")
    ))
    .expect("alter the trigger");
    drop(db);
    let bytes = std::fs::read(&file).expect("read");
    let sidecar = dir.path().join("b.backup.sha256");
    std::fs::write(
        &sidecar,
        format!(
            "{}  b.backup\n",
            base16ct::lower::encode_string(&Sha256::digest(&bytes))
        ),
    )
    .expect("sum");
    let target = e.another().await;
    let refused = target.store.restore_from(&file, false).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.to_string().contains("triggers or views")),
        "{refused:?}"
    );
    target.store.close().await;
    e.store.close().await;
}

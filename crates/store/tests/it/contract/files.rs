//! The file table: a record write adds the rows of the files it uploaded and drops those its
//! values no longer name, in its transaction; a name the record does not hold is refused
//! with nothing written; a purge drops the record's rows; `file_in_use` sees every holder;
//! `plinth export` and `plinth import` carry the rows with their records.

use super::{Engine, admin, draft, model, patch};
use plinth_core::Value;
use plinth_store::transfer;
use plinth_store::{NewFile, StoreError, WriteCtx};
use serde_json::json;

contract!(
    writes_keep_the_file_rows_in_step_with_the_values,
    a_name_the_record_does_not_hold_is_refused_and_nothing_is_written,
    a_purge_drops_the_rows_and_shared_content_stays_in_use,
    an_export_carries_the_file_rows_to_the_import,
);

fn decls() -> serde_json::Value {
    json!([{"name": "book", "fields": [
        {"name": "title", "type": "string"},
        {"name": "cover", "type": "file"},
        {"name": "pages", "type": "file", "multiple": true}
    ]}])
}

fn upload(field: &str, name: &str, hash: &str) -> NewFile {
    NewFile {
        field: field.to_owned(),
        name: name.to_owned(),
        hash: hash.repeat(64 / hash.len()),
        size: 3,
        mime: "image/png".to_owned(),
    }
}

fn with(files: Vec<NewFile>) -> WriteCtx {
    WriteCtx { files, ..admin() }
}

async fn writes_keep_the_file_rows_in_step_with_the_values(e: &Engine) {
    let s = e.migrate(decls()).await;
    let book = model(&s, "book");
    let ctx = with(vec![
        upload("cover", "c_1.png", "a"),
        upload("pages", "p_1.png", "b"),
        upload("pages", "p_2.png", "c"),
    ]);
    let body = json!({"name": "b", "cover": "c_1.png", "pages": ["p_1.png", "p_2.png"]});
    let created = e
        .store
        .create(&ctx, &book, draft(&book, &body), None)
        .await
        .expect("create with files")
        .record;
    let rows = e.store.files_of(&book, created.id).await.expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["c_1.png", "p_1.png", "p_2.png"]);
    let one = e
        .store
        .file(&book, created.id, "pages", "p_2.png")
        .await
        .expect("a read")
        .expect("the row");
    assert_eq!((one.size, one.mime.as_str()), (3, "image/png"));
    // Replacing the cover and keeping one page drops the other rows.
    let ctx = with(vec![upload("cover", "c_2.png", "d")]);
    let p = patch(&book, &json!({"cover": "c_2.png", "pages": ["p_2.png"]}));
    let updated = e
        .store
        .update(&ctx, &book, created.id, p, None)
        .await
        .expect("update");
    assert_eq!(updated.fields[1], Value::Text("c_2.png".to_owned()));
    let rows = e.store.files_of(&book, created.id).await.expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["c_2.png", "p_2.png"]);
    assert!(!e.store.file_in_use(&"a".repeat(64)).await.expect("a read"));
    assert!(e.store.file_in_use(&"d".repeat(64)).await.expect("a read"));
    // A write that does not touch the file fields leaves the rows.
    let p = patch(&book, &json!({"title": "t"}));
    e.store
        .update(&admin(), &book, created.id, p, None)
        .await
        .expect("update");
    assert_eq!(
        e.store
            .files_of(&book, created.id)
            .await
            .expect("rows")
            .len(),
        2
    );
}

async fn a_name_the_record_does_not_hold_is_refused_and_nothing_is_written(e: &Engine) {
    let s = e.migrate(decls()).await;
    let book = model(&s, "book");
    let other = e
        .store
        .create(
            &with(vec![upload("cover", "theirs.png", "e")]),
            &book,
            draft(&book, &json!({"name": "o", "cover": "theirs.png"})),
            None,
        )
        .await
        .expect("create")
        .record;
    let refused = e
        .store
        .create(
            &with(vec![upload("pages", "p.png", "f")]),
            &book,
            draft(
                &book,
                &json!({"name": "x", "cover": "theirs.png", "pages": ["p.png"]}),
            ),
            None,
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::UnknownFile { field }) if field == "cover"),
        "{refused:?}"
    );
    assert!(!e.store.file_in_use(&"f".repeat(64)).await.expect("a read"));
    let p = patch(&book, &json!({"pages": ["nowhere.png"]}));
    let refused = e.store.update(&admin(), &book, other.id, p, None).await;
    assert!(
        matches!(refused, Err(StoreError::UnknownFile { .. })),
        "{refused:?}"
    );
    assert_eq!(e.get(&book, other.id).await.version, 1, "nothing written");
}

async fn a_purge_drops_the_rows_and_shared_content_stays_in_use(e: &Engine) {
    let s = e.migrate(decls()).await;
    let book = model(&s, "book");
    let mut ids = Vec::new();
    for name in ["a.png", "b.png"] {
        let r = e
            .store
            .create(
                &with(vec![upload("cover", name, "9")]),
                &book,
                draft(&book, &json!({"name": "b", "cover": name})),
                None,
            )
            .await
            .expect("create")
            .record;
        ids.push(r.id);
    }
    e.store
        .delete(&admin(), &book, ids[0], None)
        .await
        .expect("delete");
    assert_eq!(
        e.store.files_of(&book, ids[0]).await.expect("rows").len(),
        1
    );
    e.store
        .purge(&admin(), &book, ids[0], None)
        .await
        .expect("purge");
    assert!(
        e.store
            .files_of(&book, ids[0])
            .await
            .expect("rows")
            .is_empty()
    );
    assert!(e.store.file_in_use(&"9".repeat(64)).await.expect("a read"));
    e.store
        .purge(&admin(), &book, ids[1], None)
        .await
        .expect("purge");
    assert!(!e.store.file_in_use(&"9".repeat(64)).await.expect("a read"));
}

/// An imported record holds its files as the exported one did: downloadable (its rows are
/// there), its contents in use, and a later write of another field still accepted.
async fn an_export_carries_the_file_rows_to_the_import(e: &Engine) {
    let s = e.migrate(decls()).await;
    let book = model(&s, "book");
    let ctx = with(vec![
        upload("cover", "c_1.png", "a"),
        upload("pages", "p_1.png", "b"),
    ]);
    let body = json!({"name": "b", "cover": "c_1.png", "pages": ["p_1.png"]});
    let created = e
        .store
        .create(&ctx, &book, draft(&book, &body), None)
        .await
        .expect("create with files")
        .record;
    let before = e.store.files_of(&book, created.id).await.expect("rows");
    let mut dump = Vec::new();
    transfer::export(e.store.as_ref(), &mut dump)
        .await
        .expect("export");
    let target = e.another().await;
    transfer::import(target.store.as_ref(), &s, &mut dump.as_slice())
        .await
        .expect("import");
    let after = target
        .store
        .files_of(&book, created.id)
        .await
        .expect("rows");
    assert_eq!(after, before, "the imported record holds its files");
    assert!(
        target
            .store
            .file_in_use(&"b".repeat(64))
            .await
            .expect("a read")
    );
    let p = patch(&book, &json!({"title": "t"}));
    target
        .store
        .update(&admin(), &book, created.id, p, None)
        .await
        .expect("a write of another field");
    target.store.close().await;
}

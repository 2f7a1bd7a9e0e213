//! Full-text search structures through migrations: made searchable or not, fields added,
//! renamed and dropped, models dropped and declared again; always rebuilt from the rows.

use super::{Engine, admin, model, query, schema};
use plinth_core::{ListScope, ModelDef, Schema, Value};
use serde_json::{Value as Json, json};
use std::sync::Arc;

contract!(
    making_fields_searchable_indexes_existing_records,
    renamed_and_dropped_searchable_fields_rebuild_the_index,
    a_dropped_model_takes_its_index_and_may_come_back,
    other_fields_change_type_and_index_beside_a_searchable_one,
    the_plan_shows_the_index_it_builds,
);

fn book(fields: Json) -> Json {
    json!([{ "name": "book", "fields": fields }])
}

async fn migrate(e: &Engine, decls: Json, allow_destructive: bool) -> Schema {
    let s = schema(decls);
    e.store
        .migrate(&s, allow_destructive)
        .await
        .expect("migrate");
    s
}

/// The values of field 0 of the records `q` finds.
async fn found(e: &Engine, m: &Arc<ModelDef>, q: &str) -> Vec<String> {
    let page = e
        .store
        .list(m, &query(m, &[("q", q)]), ListScope::All)
        .await
        .unwrap_or_else(|err| panic!("search {q:?}: {err:?}"));
    let mut out: Vec<String> = page
        .records
        .iter()
        .map(|r| match &r.fields[0] {
            Value::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    out.sort();
    out
}

async fn making_fields_searchable_indexes_existing_records(e: &Engine) {
    let plain = e
        .migrate(book(json!([
            { "name": "title", "type": "string" },
            { "name": "blurb", "type": "text" },
        ])))
        .await;
    let m = model(&plain, "book");
    for (title, blurb) in [("Walking", "hills"), ("Sailing", "walks by the sea")] {
        e.create(
            &admin(),
            &m,
            json!({ "name": title, "title": title, "blurb": blurb }),
        )
        .await;
    }
    let v2 = e
        .migrate(book(json!([
            { "name": "title", "type": "string", "searchable": true },
            { "name": "blurb", "type": "text" },
        ])))
        .await;
    let m = model(&v2, "book");
    assert_eq!(found(e, &m, "walk").await, ["Walking"]);
    // A second searchable field: the index is rebuilt over both.
    let v3 = e
        .migrate(book(json!([
            { "name": "title", "type": "string", "searchable": true },
            { "name": "blurb", "type": "text", "searchable": true },
        ])))
        .await;
    let m = model(&v3, "book");
    assert_eq!(found(e, &m, "walk").await, ["Sailing", "Walking"]);
    // Writes after the rebuild are indexed too.
    e.create(
        &admin(),
        &m,
        json!({ "name": "x", "title": "Walks", "blurb": "" }),
    )
    .await;
    assert_eq!(found(e, &m, "walk").await, ["Sailing", "Walking", "Walks"]);
    // No field searchable any more: the index goes; declared again, it is built afresh.
    e.migrate(book(json!([
        { "name": "title", "type": "string" },
        { "name": "blurb", "type": "text" },
    ])))
    .await;
    e.create(
        &admin(),
        &m,
        json!({ "name": "y", "title": "Walked", "blurb": "" }),
    )
    .await;
    let v5 = e
        .migrate(book(json!([
            { "name": "title", "type": "string" },
            { "name": "blurb", "type": "text", "searchable": true },
        ])))
        .await;
    let m = model(&v5, "book");
    assert_eq!(found(e, &m, "walk").await, ["Sailing"]);
}

async fn renamed_and_dropped_searchable_fields_rebuild_the_index(e: &Engine) {
    let v1 = e
        .migrate(book(json!([
            { "name": "title", "type": "string", "searchable": true },
            { "name": "blurb", "type": "text", "searchable": true },
            { "name": "extra", "type": "string" },
        ])))
        .await;
    let m = model(&v1, "book");
    e.create(
        &admin(),
        &m,
        json!({ "name": "a", "title": "Rivers", "blurb": "mountains", "extra": "x" }),
    )
    .await;
    let v2 = e
        .migrate(book(json!([
            { "name": "heading", "type": "string", "searchable": true, "renamed_from": "title" },
            { "name": "blurb", "type": "text", "searchable": true },
            { "name": "extra", "type": "string" },
        ])))
        .await;
    let m = model(&v2, "book");
    assert_eq!(found(e, &m, "river").await, ["Rivers"]);
    assert_eq!(found(e, &m, "mountain").await, ["Rivers"]);
    // Dropping a searchable field and a plain one: the rest is still found.
    let v3 = migrate(
        e,
        book(json!([
            { "name": "heading", "type": "string", "searchable": true },
        ])),
        true,
    )
    .await;
    let m = model(&v3, "book");
    assert_eq!(found(e, &m, "river").await, ["Rivers"]);
    assert!(found(e, &m, "mountain").await.is_empty());
    // Renaming a field that is not searchable keeps the index as it is.
    let v4 = e
        .migrate(book(json!([
            { "name": "heading", "type": "string", "searchable": true },
            { "name": "other", "type": "string" },
        ])))
        .await;
    let m = model(&v4, "book");
    e.create(
        &admin(),
        &m,
        json!({ "name": "b", "heading": "Lakes", "other": "o" }),
    )
    .await;
    let v5 = e
        .migrate(book(json!([
            { "name": "heading", "type": "string", "searchable": true },
            { "name": "renamed", "type": "string", "renamed_from": "other" },
        ])))
        .await;
    let m = model(&v5, "book");
    assert_eq!(found(e, &m, "lake").await, ["Lakes"]);
    e.store
        .update(
            &admin(),
            &m,
            e.store
                .list(&m, &query(&m, &[("q", "lakes")]), ListScope::All)
                .await
                .expect("list")
                .records[0]
                .id,
            super::patch(&m, &json!({ "heading": "Ponds", "renamed": "r" })),
            None,
        )
        .await
        .expect("update");
    assert_eq!(found(e, &m, "pond").await, ["Ponds"]);
    assert!(found(e, &m, "lake").await.is_empty());
}

async fn a_dropped_model_takes_its_index_and_may_come_back(e: &Engine) {
    let decls = json!([
        { "name": "keep", "fields": [{ "name": "t", "type": "string", "searchable": true }] },
        { "name": "book", "fields": [{ "name": "t", "type": "string", "searchable": true }] },
    ]);
    let v1 = e.migrate(decls.clone()).await;
    let m = model(&v1, "book");
    e.create(&admin(), &m, json!({ "name": "a", "t": "old words" }))
        .await;
    migrate(
        e,
        json!([{ "name": "keep", "fields": [{ "name": "t", "type": "string", "searchable": true }] }]),
        true,
    )
    .await;
    let v3 = e.migrate(decls).await;
    let m = model(&v3, "book");
    assert!(found(e, &m, "old").await.is_empty());
    e.create(&admin(), &m, json!({ "name": "b", "t": "new words" }))
        .await;
    assert_eq!(found(e, &m, "words").await, ["new words"]);
}

async fn the_plan_shows_the_index_it_builds(e: &Engine) {
    e.migrate(book(json!([{ "name": "title", "type": "string" }])))
        .await;
    let v2 = schema(book(
        json!([{ "name": "title", "type": "string", "searchable": true }]),
    ));
    let shown = e.store.plan_sql(&v2).await.expect("plan sql");
    let described: Vec<&str> = shown.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        described,
        ["build the search index of book over title, from its records"]
    );
    let sql = shown[0].1.join(";\n");
    let expected = if e.is_postgres() {
        "tsvector GENERATED ALWAYS AS (to_tsvector('english'"
    } else {
        "USING fts5(\"title\", content='book', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')"
    };
    assert!(sql.contains(expected), "{sql}");
    let applied = e.store.migrate(&v2, false).await.expect("migrate");
    assert_eq!(applied, described);
    let v3 = schema(book(json!([{ "name": "title", "type": "string" }])));
    let shown = e.store.plan_sql(&v3).await.expect("plan sql");
    assert_eq!(shown[0].0, "drop the search index of book");
}

async fn other_fields_change_type_and_index_beside_a_searchable_one(e: &Engine) {
    let v1 = e
        .migrate(book(json!([
            { "name": "title", "type": "string", "searchable": true },
            { "name": "qty", "type": "integer" },
        ])))
        .await;
    let m = model(&v1, "book");
    e.create(
        &admin(),
        &m,
        json!({ "name": "a", "title": "Harbours", "qty": 3 }),
    )
    .await;
    let v2 = e
        .migrate(book(json!([
            { "name": "title", "type": "text", "searchable": true, "indexed": true },
            { "name": "qty", "type": "float", "indexed": true },
        ])))
        .await;
    let m = model(&v2, "book");
    assert_eq!(found(e, &m, "harbour").await, ["Harbours"]);
    let rec = e
        .create(
            &admin(),
            &m,
            json!({ "name": "b", "title": "Bridges", "qty": 1.5 }),
        )
        .await;
    e.store
        .update(
            &admin(),
            &m,
            rec.id,
            super::patch(&m, &json!({ "qty": 2.5 })),
            None,
        )
        .await
        .expect("update");
    assert_eq!(found(e, &m, "bridge").await, ["Bridges"]);
}

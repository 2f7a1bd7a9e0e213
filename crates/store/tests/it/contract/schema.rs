//! Migrations (planned, applied, refused when destructive), `ping` and `close`.

use super::{Engine, admin, model, schema};
use plinth_core::Value;
use plinth_store::StoreError;
use serde_json::json;

contract!(
    additive_changes_are_planned_applied_once_and_keep_the_data,
    destructive_changes_are_refused_unless_allowed,
    ping_answers_until_the_store_is_closed,
);

fn v1() -> serde_json::Value {
    json!([{"name": "book", "fields": [
        {"name": "title", "type": "string", "required": true},
        {"name": "isbn", "type": "string", "unique": true},
        {"name": "pages", "type": "integer", "indexed": true}
    ]}])
}

fn v2() -> serde_json::Value {
    json!([
        {"name": "book", "fields": [
            {"name": "title", "type": "string", "required": true},
            {"name": "isbn", "type": "string", "unique": true},
            {"name": "pages", "type": "integer", "indexed": true},
            {"name": "subtitle", "type": "string", "indexed": true}
        ]},
        {"name": "note"}
    ])
}

async fn additive_changes_are_planned_applied_once_and_keep_the_data(e: &Engine) {
    let first = schema(v1());
    let plan = e.store.plan(&first).await.expect("plan v1");
    assert!(
        !plan.steps.is_empty(),
        "a fresh database has steps to apply"
    );
    assert!(plan.steps.iter().all(|s| !s.is_destructive()));
    let steps = e.store.migrate(&first, false).await.expect("migrate v1");
    assert_eq!(steps, ["create model book"]);
    let book = model(&first, "book");
    let old = e
        .create(
            &admin(),
            &book,
            json!({"name": "Emma", "title": "Emma", "pages": 474}),
        )
        .await;

    let second = schema(v2());
    let plan = e.store.plan(&second).await.expect("plan v2");
    assert_eq!(plan.steps.len(), 2, "{:?}", plan.steps);
    let steps = e.store.migrate(&second, false).await.expect("migrate v2");
    assert_eq!(steps, ["add field book.subtitle", "create model note"]);
    // Applied once: nothing is left to do.
    assert!(e.store.plan(&second).await.expect("plan").steps.is_empty());
    assert!(
        e.store
            .migrate(&second, false)
            .await
            .expect("again")
            .is_empty()
    );

    let book = model(&second, "book");
    let read = e.get(&book, old.id).await;
    assert_eq!((read.name.as_str(), read.version), ("Emma", 1));
    assert_eq!(read.fields[..3], old.fields[..]);
    assert_eq!(read.fields[3], Value::Null);
    // The new field and the new model are usable.
    let with = e
        .create(
            &admin(),
            &book,
            json!({"name": "P", "title": "P", "subtitle": "a novel"}),
        )
        .await;
    assert_eq!(with.fields[3], Value::Text("a novel".to_owned()));
    e.create(&admin(), &model(&second, "note"), json!({"name": "n"}))
        .await;
}

async fn destructive_changes_are_refused_unless_allowed(e: &Engine) {
    let full = schema(v2());
    e.store.migrate(&full, false).await.expect("migrate v2");
    let book = model(&full, "book");
    let kept = e
        .create(
            &admin(),
            &book,
            json!({"name": "P", "title": "P", "subtitle": "a novel"}),
        )
        .await;
    let without_field = schema(json!([
        {"name": "book", "fields": [
            {"name": "title", "type": "string", "required": true},
            {"name": "isbn", "type": "string", "unique": true},
            {"name": "pages", "type": "integer", "indexed": true}
        ]},
        {"name": "note"}
    ]));
    let mut without_model = v2();
    without_model
        .as_array_mut()
        .expect("an array")
        .retain(|m| m["name"] != "note");
    let without_model = schema(without_model);
    for (target, step) in [
        (&without_field, "drop field book.subtitle"),
        (&without_model, "drop model note"),
    ] {
        let plan = e.store.plan(target).await.expect("plan");
        assert!(plan.steps.iter().any(|s| s.is_destructive()), "{step}");
        match e.store.migrate(target, false).await {
            Err(StoreError::Migration(msg)) => assert!(msg.contains(step), "{msg}"),
            other => panic!("{step} without allowing: {other:?}"),
        }
    }
    // Nothing changed.
    assert_eq!(e.get(&book, kept.id).await, kept);
    assert!(e.store.plan(&full).await.expect("plan").steps.is_empty());

    let steps = e
        .store
        .migrate(&without_field, true)
        .await
        .expect("the destructive change, allowed");
    assert_eq!(steps, ["drop field book.subtitle and its values"]);
    let book = model(&without_field, "book");
    let read = e.get(&book, kept.id).await;
    assert_eq!(read.fields.len(), 3);
    assert_eq!(read.fields[..], kept.fields[..3]);
}

async fn ping_answers_until_the_store_is_closed(e: &Engine) {
    e.store.ping().await.expect("ping");
    let s = e.migrate(json!([])).await;
    e.store.close().await;
    let err = e.store.ping().await.expect_err("ping after close");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = e
        .store
        .get(&model(&s, "resource"), plinth_core::RecordId::new_v7())
        .await
        .expect_err("a read after close");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

//! Schema evolution keeping data: renames (a pii and a unique field too), defaults filling
//! existing records (written exactly, whatever PostgreSQL's string settings), integer to
//! float and back (with a new index, and refused beyond ±2^53), looser constraints, tighter
//! ones refused while records break them (naming them), and the SQL shown equal to the SQL
//! run.

use super::{Engine, admin, model, schema};
use plinth_core::Value;
use plinth_store::StoreError;
use serde_json::{Value as Json, json};

contract!(
    a_rename_keeps_values_and_their_indexes,
    a_default_fills_existing_records_and_a_new_required_field_needs_one,
    a_default_with_a_backslash_and_a_quote_is_written_exactly,
    integer_to_float_and_back_keep_values,
    a_type_change_may_add_an_index_or_a_unique_one,
    integer_to_float_is_refused_for_values_a_float_would_round,
    looser_constraints_keep_data_and_accept_new_values,
    tighter_constraints_are_refused_naming_records_until_they_are_fixed,
    the_sql_shown_is_the_sql_run,
);

fn item(fields: Json) -> Json {
    json!([{ "name": "item", "fields": fields }])
}

async fn refusal(e: &Engine, decls: Json) -> String {
    match e.store.migrate(&schema(decls), false).await {
        Err(StoreError::Migration(m)) => m,
        other => panic!("migration not refused: {other:?}"),
    }
}

async fn a_rename_keeps_values_and_their_indexes(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "email", "type": "string", "pii": true, "unique": true },
            { "name": "code", "type": "string", "unique": true },
            { "name": "n", "type": "integer", "indexed": true },
        ])))
        .await;
    let a = e
        .create(
            &admin(),
            &model(&v1, "item"),
            json!({ "name": "a", "email": "a@example.com", "code": "A1", "n": 7 }),
        )
        .await;
    let v2 = item(json!([
        { "name": "email", "type": "string", "pii": true, "unique": true },
        { "name": "sku", "type": "string", "unique": true, "renamed_from": "code" },
        { "name": "total", "type": "integer", "indexed": true, "renamed_from": "n" },
    ]));
    let plan = e.store.plan(&schema(v2.clone())).await.expect("plan");
    assert!(plan.steps.iter().all(|s| !s.is_destructive()), "{plan:?}");
    let v2 = e.migrate(v2.clone()).await;
    let item = model(&v2, "item");
    let read = e.get(&item, a.id).await;
    assert_eq!(
        read.fields,
        [
            Value::Text("a@example.com".to_owned()),
            Value::Text("A1".to_owned()),
            Value::Integer(7)
        ]
    );
    // The unique index moved with the column.
    for body in [json!({ "name": "b", "email": "b@example.com", "sku": "A1" })] {
        let draft = super::draft(&item, &body);
        let dup = e.store.create(&admin(), &item, draft, None).await;
        assert!(
            matches!(dup, Err(StoreError::Conflict { .. })),
            "{body}: {dup:?}"
        );
    }
    // The declaration may stay: a restart plans nothing.
    assert!(e.store.plan(&v2).await.expect("plan").is_empty());

    // A pii field's sealed values are bound to its name: its rename is refused.
    let why = refusal(
        e,
        json!([{ "name": "item", "fields": [
            { "name": "contact", "type": "string", "pii": true, "unique": true, "renamed_from": "email" },
            { "name": "sku", "type": "string", "unique": true },
            { "name": "total", "type": "integer", "indexed": true },
        ] }]),
    )
    .await;
    assert!(
        why.contains("a pii field cannot be renamed in place"),
        "{why}"
    );
    assert_eq!(e.get(&item, a.id).await.fields, read.fields);
}

async fn a_default_fills_existing_records_and_a_new_required_field_needs_one(e: &Engine) {
    let v1 = e.migrate(item(json!([]))).await;
    let a = e
        .create(&admin(), &model(&v1, "item"), json!({ "name": "a" }))
        .await;
    let why = refusal(
        e,
        item(json!([{ "name": "qty", "type": "integer", "required": true }])),
    )
    .await;
    assert!(
        why.contains("1 record(s)") && why.contains(&a.id.to_string()) && why.contains("default"),
        "{why}"
    );
    let v2 = e
        .migrate(item(json!([
            { "name": "qty", "type": "integer", "required": true, "default": 5 },
            { "name": "at", "type": "datetime", "default": "2024-01-02T03:04:05Z" },
            { "name": "on", "type": "boolean", "default": true },
            { "name": "meta", "type": "json", "default": { "it's": [1] } },
            { "name": "kind", "type": "enum", "values": ["x", "y"], "default": "y" },
        ])))
        .await;
    let item = model(&v2, "item");
    let expected = item
        .fields()
        .iter()
        .map(|f| f.default().cloned().expect("a default"))
        .collect::<Vec<_>>();
    assert_eq!(e.get(&item, a.id).await.fields, expected);
    // A create that leaves the fields out takes the defaults too.
    let b = e.create(&admin(), &item, json!({ "name": "b" })).await;
    assert_eq!(e.get(&item, b.id).await.fields, expected);
}

/// A declared default is a literal in the migration's SQL: on PostgreSQL it must mean the
/// same whatever the database's `standard_conforming_strings` (off, `\'` would end it).
async fn a_default_with_a_backslash_and_a_quote_is_written_exactly(e: &Engine) {
    let v1 = e.migrate(item(json!([]))).await;
    let a = e
        .create(&admin(), &model(&v1, "item"), json!({ "name": "a" }))
        .await;
    if e.is_postgres() {
        e.raw(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings = off', \
             current_database()); END $$",
        )
        .await;
    }
    // A new store: its connections start with the database's settings.
    let store = e.reopen(true).await.expect("open again");
    let tricky = r"it\'s \\ '' \";
    let v2 = schema(item(
        json!([{ "name": "t", "type": "string", "default": tricky }]),
    ));
    store.migrate(&v2, false).await.expect("migrate");
    store.close().await;
    let item = model(&v2, "item");
    assert_eq!(
        e.get(&item, a.id).await.fields,
        [Value::Text(tricky.to_owned())]
    );
}

async fn integer_to_float_and_back_keep_values(e: &Engine) {
    let v1 = e
        .migrate(item(
            json!([{ "name": "n", "type": "integer", "indexed": true }]),
        ))
        .await;
    let a = e
        .create(
            &admin(),
            &model(&v1, "item"),
            json!({ "name": "a", "n": 9_007_199_254_i64 }),
        )
        .await;
    let v2 = e
        .migrate(item(
            json!([{ "name": "n", "type": "float", "indexed": true }]),
        ))
        .await;
    let item = model(&v2, "item");
    assert_eq!(
        e.get(&item, a.id).await.fields,
        [Value::Float(9_007_199_254.0)]
    );
    let b = e
        .create(&admin(), &item, json!({ "name": "b", "n": 2.5 }))
        .await;
    let back = item_int();
    let why = refusal(e, back.clone()).await;
    assert!(
        why.contains("a whole number")
            && why.contains(&b.id.to_string())
            && !why.contains(&a.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"n\" = 3 WHERE \"id\" = '{}'",
        b.id
    ))
    .await;
    let v3 = e.migrate(back).await;
    let item = model(&v3, "item");
    assert_eq!(
        e.get(&item, a.id).await.fields,
        [Value::Integer(9_007_199_254)]
    );
    assert_eq!(e.get(&item, b.id).await.fields, [Value::Integer(3)]);
}

async fn a_type_change_may_add_an_index_or_a_unique_one(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "n", "type": "float" },
            { "name": "u", "type": "integer" },
        ])))
        .await;
    let a = e
        .create(
            &admin(),
            &model(&v1, "item"),
            json!({ "name": "a", "n": 4.0, "u": 7 }),
        )
        .await;
    let v2 = e
        .migrate(item(json!([
            { "name": "n", "type": "integer", "indexed": true },
            { "name": "u", "type": "float", "unique": true },
        ])))
        .await;
    let item = model(&v2, "item");
    assert_eq!(
        e.get(&item, a.id).await.fields,
        [Value::Integer(4), Value::Float(7.0)]
    );
    // The unique index is built on the new column.
    let dup = super::draft(&item, &json!({ "name": "b", "n": 1, "u": 7.0 }));
    let dup = e.store.create(&admin(), &item, dup, None).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    assert!(e.store.plan(&v2).await.expect("plan").is_empty());
}

async fn integer_to_float_is_refused_for_values_a_float_would_round(e: &Engine) {
    const EXACT: i64 = 9_007_199_254_740_992; // 2^53
    let v1 = e.migrate(item_int()).await;
    let m = model(&v1, "item");
    let top = e
        .create(&admin(), &m, json!({ "name": "top", "n": EXACT }))
        .await;
    let bottom = e
        .create(&admin(), &m, json!({ "name": "bottom", "n": -EXACT }))
        .await;
    let over = e
        .create(&admin(), &m, json!({ "name": "over", "n": EXACT + 1 }))
        .await;
    let to_float = item(json!([{ "name": "n", "type": "float", "indexed": true }]));
    for beyond in [EXACT + 1, -EXACT - 1] {
        e.raw(&format!(
            "UPDATE \"item\" SET \"n\" = {beyond} WHERE \"id\" = '{}'",
            over.id
        ))
        .await;
        let why = refusal(e, to_float.clone()).await;
        assert!(
            why.contains("item.n must be between -9007199254740992 and 9007199254740992")
                && why.contains("1 record(s)")
                && why.contains(&over.id.to_string())
                && !why.contains(&top.id.to_string())
                && !why.contains(&bottom.id.to_string()),
            "{why}"
        );
        // Nothing was converted.
        assert_eq!(e.get(&m, over.id).await.fields, [Value::Integer(beyond)]);
    }
    e.raw(&format!(
        "UPDATE \"item\" SET \"n\" = {} WHERE \"id\" = '{}'",
        EXACT - 1,
        over.id
    ))
    .await;
    let v2 = e.migrate(to_float).await;
    let item = model(&v2, "item");
    #[allow(clippy::cast_precision_loss)] // Exact below 2^53, the point of the test.
    for (id, n) in [(top.id, EXACT), (bottom.id, -EXACT), (over.id, EXACT - 1)] {
        assert_eq!(e.get(&item, id).await.fields, [Value::Float(n as f64)]);
    }
}

fn item_int() -> Json {
    item(json!([{ "name": "n", "type": "integer", "indexed": true }]))
}

async fn looser_constraints_keep_data_and_accept_new_values(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "t", "type": "string", "max_length": 3 },
            { "name": "k", "type": "enum", "values": ["a"] },
            { "name": "n", "type": "integer", "min": 0, "max": 5 },
            { "name": "r", "type": "boolean", "required": true },
        ])))
        .await;
    let a = e
        .create(
            &admin(),
            &model(&v1, "item"),
            json!({ "name": "a", "t": "abc", "k": "a", "n": 5, "r": true }),
        )
        .await;
    let looser = item(json!([
        { "name": "t", "type": "text" },
        { "name": "k", "type": "enum", "values": ["a", "b"] },
        { "name": "n", "type": "integer", "min": -5 },
        { "name": "r", "type": "boolean" },
    ]));
    let plan = e.store.plan(&schema(looser.clone())).await.expect("plan");
    assert!(plan.is_empty(), "{plan:?}");
    let v2 = e.migrate(looser).await;
    let item = model(&v2, "item");
    assert_eq!(e.get(&item, a.id).await.fields, a.fields);
    e.create(
        &admin(),
        &item,
        json!({ "name": "b", "t": "abcdef", "k": "b", "n": -5 }),
    )
    .await;
}

async fn tighter_constraints_are_refused_naming_records_until_they_are_fixed(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "t", "type": "string" },
            { "name": "k", "type": "enum", "values": ["a", "b"] },
            { "name": "x", "type": "float" },
        ])))
        .await;
    let m = model(&v1, "item");
    let ok = e
        .create(
            &admin(),
            &m,
            json!({ "name": "ok", "t": "ab", "k": "a", "x": 1.0 }),
        )
        .await;
    let long = e
        .create(
            &admin(),
            &m,
            json!({ "name": "long", "t": "abcdef", "k": "a" }),
        )
        .await;
    let gone = e
        .create(&admin(), &m, json!({ "name": "b", "k": "b", "x": 99.0 }))
        .await;
    // A soft-deleted record counts: a restore would bring it back.
    e.store
        .delete(&admin(), &m, gone.id, None)
        .await
        .expect("delete");
    let tight = item(json!([
        { "name": "t", "type": "string", "max_length": 3 },
        { "name": "k", "type": "enum", "values": ["a"] },
        { "name": "x", "type": "float", "max": 10, "required": true },
    ]));
    let why = refusal(e, tight.clone()).await;
    assert!(
        why.contains("item.t must be at most 3 characters")
            && why.contains("1 record(s)")
            && why.contains(&long.id.to_string())
            && !why.contains(&ok.id.to_string()),
        "{why}"
    );
    // Nothing was applied: the old declarations still plan the same steps.
    e.raw(&format!(
        "UPDATE \"item\" SET \"t\" = 'abc' WHERE \"id\" = '{}'",
        long.id
    ))
    .await;
    let why = refusal(e, tight.clone()).await;
    assert!(
        why.contains("one of a") && why.contains(&gone.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"k\" = 'a', \"x\" = 10 WHERE \"id\" = '{}'",
        gone.id
    ))
    .await;
    let why = refusal(e, tight.clone()).await;
    assert!(
        why.contains("item.x required") && why.contains(&long.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"x\" = 2 WHERE \"id\" = '{}'",
        long.id
    ))
    .await;
    let v2 = e.migrate(tight).await;
    let item = model(&v2, "item");
    assert_eq!(
        e.get(&item, long.id).await.fields,
        [
            Value::Text("abc".to_owned()),
            Value::Text("a".to_owned()),
            Value::Float(2.0)
        ]
    );
}

async fn the_sql_shown_is_the_sql_run(e: &Engine) {
    let v1 = e
        .migrate(item(
            json!([{ "name": "code", "type": "string", "unique": true }]),
        ))
        .await;
    let a = e
        .create(
            &admin(),
            &model(&v1, "item"),
            json!({ "name": "a", "code": "A" }),
        )
        .await;
    let v2 = schema(item(json!([
        { "name": "sku", "type": "string", "unique": true, "renamed_from": "code" },
        { "name": "qty", "type": "integer", "default": 1 },
    ])));
    let shown = e.store.plan_sql(&v2).await.expect("plan sql");
    let described: Vec<&str> = shown.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        described,
        [
            "rename field item.code to item.sku, keeping its values",
            "add field item.qty"
        ]
    );
    let statements: Vec<String> = shown.into_iter().flat_map(|(_, s)| s).collect();
    assert!(
        statements
            .iter()
            .any(|s| s == "UPDATE \"item\" SET \"qty\" = 1"),
        "{statements:?}"
    );
    e.store.migrate(&v2, false).await.expect("migrate");
    let item = model(&v2, "item");
    let page = e.raw_contents("item").await;
    if e.is_postgres() {
        let indexes = e.raw_contents("pg_indexes").await;
        assert!(
            indexes.contains("item__sku") && !indexes.contains("item__code"),
            "{indexes}"
        );
    } else {
        // SQLite keeps each statement's text: the index is the one shown.
        let index = statements
            .iter()
            .find(|s| s.starts_with("CREATE UNIQUE INDEX"))
            .expect("the unique index is rebuilt");
        assert!(page.contains(index.as_str()), "{index}");
    }
    assert_eq!(
        e.get(&item, a.id).await.fields,
        [Value::Text("A".to_owned()), Value::Integer(1)]
    );
}

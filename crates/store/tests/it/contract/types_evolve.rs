//! Migrations of the field types `date`, `decimal`, `array`, `email` and `url`: added with a
//! default that fills existing records, text becoming `email` / `url` checked value by value,
//! a decimal's scale changed keeping values (refused when one would lose a digit or
//! overflow), tighter bounds and `max_items` checked, and `unique_among` changed as an
//! index change.

use super::{Engine, admin, model, schema};
use plinth_core::{Date, Decimal, Value};
use plinth_store::StoreError;
use serde_json::{Value as Json, json};

contract!(
    new_typed_fields_take_their_defaults,
    text_becomes_email_or_url_only_when_every_value_has_the_format,
    a_decimal_scale_changes_keeping_values_that_fit,
    tighter_dates_decimals_and_arrays_are_checked,
    unique_among_changes_as_the_data_allows,
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

fn dec(s: &str, scale: u8) -> Value {
    Value::Decimal(Decimal::parse(s, scale).expect("a decimal"))
}

async fn new_typed_fields_take_their_defaults(e: &Engine) {
    let v1 = e.migrate(item(json!([]))).await;
    let old = e
        .create(&admin(), &model(&v1, "item"), json!({"name": "old"}))
        .await;
    let v2 = e
        .migrate(item(json!([
            { "name": "price", "type": "decimal", "default": "1.5" },
            { "name": "day", "type": "date", "default": "2026-01-31", "indexed": true },
            { "name": "tags", "type": "array", "items": "string", "default": ["a", "it's"] },
            { "name": "ns", "type": "array", "items": "integer", "default": [1, -2] },
            { "name": "mail", "type": "email", "default": "o'hara@example.com" },
            { "name": "site", "type": "url" },
        ])))
        .await;
    let m = model(&v2, "item");
    assert_eq!(
        e.get(&m, old.id).await.fields,
        [
            dec("1.50", 2),
            Value::Date(Date::parse("2026-01-31").expect("a date")),
            Value::Array(vec![
                Value::Text("a".to_owned()),
                Value::Text("it's".to_owned())
            ]),
            Value::Array(vec![Value::Integer(1), Value::Integer(-2)]),
            Value::Text("o'hara@example.com".to_owned()),
            Value::Null,
        ]
    );
}

async fn text_becomes_email_or_url_only_when_every_value_has_the_format(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "mail", "type": "string" },
            { "name": "site", "type": "text" },
        ])))
        .await;
    let m = model(&v1, "item");
    let good = e
        .create(
            &admin(),
            &m,
            json!({"name": "g", "mail": "ada@example.com", "site": "https://x.org"}),
        )
        .await;
    let bad = e
        .create(
            &admin(),
            &m,
            json!({"name": "b", "mail": "not an address", "site": "ftp://x.org"}),
        )
        .await;
    let none = e.create(&admin(), &m, json!({"name": "n"})).await;
    let typed = item(json!([
        { "name": "mail", "type": "email" },
        { "name": "site", "type": "url" },
    ]));
    let why = refusal(e, typed.clone()).await;
    assert!(
        why.contains("every item.mail must be an email address")
            && why.contains(&bad.id.to_string())
            && !why.contains(&good.id.to_string())
            && !why.contains(&none.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"mail\" = 'bad@example.com' WHERE \"id\" = '{}'",
        bad.id
    ))
    .await;
    let why = refusal(e, typed.clone()).await;
    assert!(
        why.contains("item.site must be an absolute http or https URL")
            && why.contains(&bad.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"site\" = 'http://x.org' WHERE \"id\" = '{}'",
        bad.id
    ))
    .await;
    let v2 = e.migrate(typed).await;
    let m2 = model(&v2, "item");
    assert_eq!(
        e.get(&m2, bad.id).await.fields[0],
        Value::Text("bad@example.com".to_owned())
    );
    // Back to plain text: nothing to check.
    e.migrate(item(json!([
        { "name": "mail", "type": "string" },
        { "name": "site", "type": "text" },
    ])))
    .await;
}

async fn a_decimal_scale_changes_keeping_values_that_fit(e: &Engine) {
    let at = |scale: u32| {
        item(json!([{ "name": "p", "type": "decimal", "scale": scale, "indexed": true }]))
    };
    let v2 = e.migrate(at(2)).await;
    let m = model(&v2, "item");
    let a = e
        .create(&admin(), &m, json!({"name": "a", "p": "12.50"}))
        .await;
    let b = e
        .create(&admin(), &m, json!({"name": "b", "p": "-0.05"}))
        .await;
    let n = e.create(&admin(), &m, json!({"name": "n"})).await;
    let v4 = e.migrate(at(4)).await;
    let m4 = model(&v4, "item");
    assert_eq!(e.get(&m4, a.id).await.fields, [dec("12.5", 4)]);
    assert_eq!(e.get(&m4, b.id).await.fields, [dec("-0.05", 4)]);
    assert_eq!(e.get(&m4, n.id).await.fields, [Value::Null]);
    // Down to one place: -0.05 would lose a digit.
    let why = refusal(e, at(1)).await;
    assert!(
        why.contains("from 4 to 1")
            && why.contains(&b.id.to_string())
            && !why.contains(&a.id.to_string()),
        "{why}"
    );
    e.raw(&format!(
        "UPDATE \"item\" SET \"p\" = -1000 WHERE \"id\" = '{}'",
        b.id
    ))
    .await;
    let v1 = e.migrate(at(1)).await;
    let m1 = model(&v1, "item");
    assert_eq!(e.get(&m1, a.id).await.fields, [dec("12.5", 1)]);
    assert_eq!(e.get(&m1, b.id).await.fields, [dec("-0.1", 1)]);
    // Up by nine places: a value of 12 digits would pass 18.
    let big = e
        .create(&admin(), &m1, json!({"name": "big", "p": "12345678901.5"}))
        .await;
    let why = refusal(e, at(9)).await;
    assert!(
        why.contains("at most 18 digits") && why.contains(&big.id.to_string()),
        "{why}"
    );
    assert_eq!(e.get(&m1, big.id).await.fields, [dec("12345678901.5", 1)]);
}

async fn tighter_dates_decimals_and_arrays_are_checked(e: &Engine) {
    let v1 = e
        .migrate(item(json!([
            { "name": "d", "type": "date" },
            { "name": "p", "type": "decimal" },
            { "name": "tags", "type": "array", "items": "string" },
        ])))
        .await;
    let m = model(&v1, "item");
    let early = e
        .create(
            &admin(),
            &m,
            json!({"name": "early", "d": "1999-12-31", "p": "5"}),
        )
        .await;
    let dear = e
        .create(
            &admin(),
            &m,
            json!({"name": "dear", "d": "2026-01-01", "p": "100.01"}),
        )
        .await;
    let many = e
        .create(
            &admin(),
            &m,
            json!({"name": "many", "tags": ["a", "b", "c"]}),
        )
        .await;
    let long = e
        .create(&admin(), &m, json!({"name": "long", "tags": ["abcdef"]}))
        .await;
    let why = refusal(
        e,
        item(json!([
            { "name": "d", "type": "date", "min": "2000-01-01" },
            { "name": "p", "type": "decimal" },
            { "name": "tags", "type": "array", "items": "string" },
        ])),
    )
    .await;
    assert!(
        why.contains("at least 2000-01-01")
            && why.contains(&early.id.to_string())
            && !why.contains(&dear.id.to_string()),
        "{why}"
    );
    let why = refusal(
        e,
        item(json!([
            { "name": "d", "type": "date" },
            { "name": "p", "type": "decimal", "max": "100" },
            { "name": "tags", "type": "array", "items": "string" },
        ])),
    )
    .await;
    assert!(
        why.contains("at most 100.00")
            && why.contains(&dear.id.to_string())
            && !why.contains(&early.id.to_string()),
        "{why}"
    );
    let why = refusal(
        e,
        item(json!([
            { "name": "d", "type": "date" },
            { "name": "p", "type": "decimal" },
            { "name": "tags", "type": "array", "items": "string", "max_items": 2 },
        ])),
    )
    .await;
    assert!(
        why.contains("at most 2 items")
            && why.contains(&many.id.to_string())
            && !why.contains(&long.id.to_string()),
        "{why}"
    );
    let why = refusal(
        e,
        item(json!([
            { "name": "d", "type": "date" },
            { "name": "p", "type": "decimal" },
            { "name": "tags", "type": "array", "items": "string", "max_length": 5 },
        ])),
    )
    .await;
    assert!(
        why.contains("at most 5 characters")
            && why.contains(&long.id.to_string())
            && !why.contains(&many.id.to_string()),
        "{why}"
    );
    // Bounds every value meets apply.
    e.migrate(item(json!([
        { "name": "d", "type": "date", "min": "1999-01-01", "max": "2026-12-31" },
        { "name": "p", "type": "decimal", "min": 0, "max": 100.5 },
        { "name": "tags", "type": "array", "items": "string", "max_items": 3, "max_length": 6 },
    ])))
    .await;
}

async fn unique_among_changes_as_the_data_allows(e: &Engine) {
    let among = |among: &str| {
        item(json!([{ "name": "code", "type": "string", "unique": true, "unique_among": among }]))
    };
    let v1 = e.migrate(among("all")).await;
    let m = model(&v1, "item");
    let first = e
        .create(&admin(), &m, json!({"name": "a", "code": "X"}))
        .await;
    e.store
        .delete(&admin(), &m, first.id, None)
        .await
        .expect("delete");
    let v2 = e.migrate(among("live")).await;
    let m2 = model(&v2, "item");
    e.create(&admin(), &m2, json!({"name": "b", "code": "X"}))
        .await;
    // Back to all records: the deleted one shares the live one's value.
    let why = refusal(e, among("all")).await;
    assert!(
        why.contains("cannot make item.code unique") && why.contains("share values"),
        "{why}"
    );
    e.store
        .purge(&admin(), &m2, first.id, None)
        .await
        .expect("purge");
    e.migrate(among("all")).await;
}

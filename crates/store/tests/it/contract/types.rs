//! The field types `date`, `decimal`, `array`, `email` and `url`: values round-trip exactly,
//! dates and decimals filter and sort by the calendar and by value (not as text), arrays
//! answer `has` / `has_any`, and a unique field with `unique_among = "live"` lets a
//! soft-deleted record's value be taken again (a restore onto it is a conflict).

use super::{Engine, admin, draft, model, query, schema, walk};
use plinth_core::{Date, Decimal, ListScope, ModelDef, Record, Value};
use plinth_store::StoreError;
use serde_json::json;
use std::sync::Arc;

contract!(
    values_of_each_type_round_trip_exactly,
    decimals_and_dates_filter_and_sort_by_value,
    arrays_answer_has_and_has_any,
    unique_among_live_ignores_soft_deleted_records,
);

fn books() -> Arc<ModelDef> {
    model(
        &schema(json!([{ "name": "book", "fields": [
            { "name": "price", "type": "decimal", "scale": 2, "indexed": true },
            { "name": "published", "type": "date", "indexed": true },
            { "name": "tags", "type": "array", "items": "string" },
            { "name": "sizes", "type": "array", "items": "integer" },
            { "name": "contact", "type": "email" },
            { "name": "site", "type": "url" },
        ]}])),
        "book",
    )
}

async fn migrated(e: &Engine) -> Arc<ModelDef> {
    let m = books();
    let s = schema(json!([m.decl()]));
    e.store.migrate(&s, false).await.expect("migrate");
    model(&s, "book")
}

fn price(s: &str) -> Value {
    Value::Decimal(Decimal::parse(s, 2).expect("a decimal"))
}

fn day(s: &str) -> Value {
    Value::Date(Date::parse(s).expect("a date"))
}

fn names(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.name.as_str()).collect()
}

async fn values_of_each_type_round_trip_exactly(e: &Engine) {
    let m = migrated(e).await;
    let body = json!({
        "name": "b", "price": "-1234567890123456.05", "published": "0001-01-01",
        "tags": ["rust", "", "ünï ' \" \\ ,"], "sizes": [-9223372036854775808i64, 0, 9223372036854775807i64],
        "contact": "ada@example.com", "site": "https://example.com/a?b=c#d",
    });
    let created = e.create(&admin(), &m, body.clone()).await;
    let read = e.get(&m, created.id).await;
    assert_eq!(read, created);
    assert_eq!(read.fields[0], price("-1234567890123456.05"));
    assert_eq!(read.fields[1], day("0001-01-01"));
    assert_eq!(
        read.fields[2],
        Value::Array(vec![
            Value::Text("rust".to_owned()),
            Value::Text(String::new()),
            Value::Text("ünï ' \" \\ ,".to_owned()),
        ])
    );
    assert_eq!(
        read.fields[3],
        Value::Array(vec![
            Value::Integer(i64::MIN),
            Value::Integer(0),
            Value::Integer(i64::MAX)
        ])
    );
    let json: Vec<serde_json::Value> = read.fields.iter().map(Value::to_json).collect();
    assert_eq!(json[0], json!("-1234567890123456.05"));
    assert_eq!(json[1], json!("0001-01-01"));
    assert_eq!(json[2], body["tags"]);
    assert_eq!(json[3], body["sizes"]);
    // Empty arrays and nulls stay what they are.
    let empty = e
        .create(&admin(), &m, json!({"name": "e", "tags": [], "price": "9999999999999999.99", "published": "9999-12-31"}))
        .await;
    let read = e.get(&m, empty.id).await;
    assert_eq!(read.fields[2], Value::Array(Vec::new()));
    assert_eq!(read.fields[3], Value::Null);
    assert_eq!(read.fields[0], price("9999999999999999.99"));
    assert_eq!(read.fields[1], day("9999-12-31"));
}

async fn decimals_and_dates_filter_and_sort_by_value(e: &Engine) {
    let m = migrated(e).await;
    for (name, p, d) in [
        ("nine", Some("9.50"), Some("2026-09-30")),
        ("ten", Some("10.00"), Some("2026-10-01")),
        ("minus", Some("-0.01"), Some("1999-12-31")),
        ("hundred", Some("100"), Some("2026-02-01")),
        ("none", None, None),
    ] {
        e.create(
            &admin(),
            &m,
            json!({"name": name, "price": p, "published": d}),
        )
        .await;
    }
    let all = ListScope::All;
    let up = walk(&*e.store, &m, &[("sort", "price"), ("limit", "2")], all).await;
    // As text "10.00" < "100.00" < "9.50"; as numbers they are not.
    assert_eq!(names(&up), ["minus", "nine", "ten", "hundred", "none"]);
    let down = walk(
        &*e.store,
        &m,
        &[("sort", "-published"), ("limit", "2")],
        all,
    )
    .await;
    assert_eq!(names(&down), ["none", "ten", "nine", "hundred", "minus"]);
    let some = walk(
        &*e.store,
        &m,
        &[
            ("price[gte]", "9.5"),
            ("price[lt]", "100"),
            ("sort", "price"),
        ],
        all,
    )
    .await;
    assert_eq!(names(&some), ["nine", "ten"]);
    let in_2026 = walk(
        &*e.store,
        &m,
        &[
            ("published[gte]", "2026-01-01"),
            ("published[lte]", "2026-09-30"),
            ("sort", "published"),
        ],
        all,
    )
    .await;
    assert_eq!(names(&in_2026), ["hundred", "nine"]);
    let listed = walk(
        &*e.store,
        &m,
        &[("price[in]", "10,-0.01"), ("sort", "price")],
        all,
    )
    .await;
    assert_eq!(names(&listed), ["minus", "ten"]);
    let exact = walk(&*e.store, &m, &[("published", "2026-10-01")], all).await;
    assert_eq!(names(&exact), ["ten"]);
    let not = walk(
        &*e.store,
        &m,
        &[("price[ne]", "10"), ("sort", "price")],
        all,
    )
    .await;
    assert_eq!(names(&not), ["minus", "nine", "hundred", "none"]);
    // The change feed's in-memory filters agree with the SQL.
    let every = walk(&*e.store, &m, &[], all).await;
    for pairs in [
        vec![("price[gte]", "9.5"), ("price[lt]", "100")],
        vec![("published[gt]", "2026-02-01")],
        vec![("price[ne]", "10")],
    ] {
        let q = query(&m, &pairs);
        let listed = walk(&*e.store, &m, &pairs, all).await;
        let kept: Vec<&Record> = every
            .iter()
            .filter(|r| q.filters.iter().all(|f| f.matches(r)))
            .collect();
        assert_eq!(kept.len(), listed.len(), "{pairs:?}");
    }
}

async fn arrays_answer_has_and_has_any(e: &Engine) {
    let m = migrated(e).await;
    for (name, tags, sizes) in [
        ("a", json!(["rust", "web"]), json!([1, 2])),
        ("b", json!(["go", "Rust"]), json!([2, 30])),
        ("c", json!([]), json!([])),
        ("d", json!(null), json!(null)),
        ("e", json!(["rust,web", "a'b"]), json!([-5])),
    ] {
        e.create(
            &admin(),
            &m,
            json!({"name": name, "tags": tags, "sizes": sizes}),
        )
        .await;
    }
    let all = ListScope::All;
    let find = |pairs: Vec<(&'static str, &'static str)>| {
        let m = Arc::clone(&m);
        async move {
            let mut pairs = pairs;
            pairs.push(("sort", "name"));
            names(&walk(&*e.store, &m, &pairs, all).await)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find(vec![("tags[has]", "rust")]).await, ["a"]);
    assert_eq!(find(vec![("tags[has]", "a'b")]).await, ["e"]);
    assert_eq!(find(vec![("tags[has_any]", "go,web")]).await, ["a", "b"]);
    assert_eq!(
        find(vec![("tags[has_any]", "nothing")]).await,
        Vec::<String>::new()
    );
    assert_eq!(find(vec![("sizes[has]", "2")]).await, ["a", "b"]);
    assert_eq!(find(vec![("sizes[has_any]", "30,-5")]).await, ["b", "e"]);
    assert_eq!(
        find(vec![("sizes[has]", "2"), ("tags[has]", "go")]).await,
        ["b"]
    );
}

async fn unique_among_live_ignores_soft_deleted_records(e: &Engine) {
    let s = schema(json!([
        { "name": "member", "fields": [
            { "name": "email", "type": "email", "unique": true, "unique_among": "live" }
        ]},
        { "name": "strict", "fields": [
            { "name": "email", "type": "email", "unique": true }
        ]},
    ]));
    e.store.migrate(&s, false).await.expect("migrate");
    let (member, strict) = (model(&s, "member"), model(&s, "strict"));
    let body = json!({"name": "m", "email": "ada@example.com"});
    for m in [&member, &strict] {
        let first = e.create(&admin(), m, body.clone()).await;
        e.store
            .delete(&admin(), m, first.id, None)
            .await
            .expect("delete");
        let again = e.store.create(&admin(), m, draft(m, &body), None).await;
        if m.name().as_str() == "strict" {
            assert!(
                matches!(&again, Err(StoreError::Conflict { field: Some(f), .. }) if f == "email"),
                "{again:?}"
            );
            continue;
        }
        let again = again
            .expect("a deleted record's value is free again")
            .record;
        // Restoring the first would make two live records share the value.
        let err = e
            .store
            .restore(&admin(), m, first.id)
            .await
            .expect_err("restored onto a taken value");
        assert!(
            matches!(&err, StoreError::Conflict { field: Some(f), .. } if f == "email"),
            "{err:?}"
        );
        // Once the second is deleted, the first comes back.
        e.store
            .delete(&admin(), m, again.id, None)
            .await
            .expect("delete");
        e.store
            .restore(&admin(), m, first.id)
            .await
            .expect("restore once the value is free");
    }
}

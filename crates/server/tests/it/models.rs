//! Declared models: typed fields, constraints (required, unique, range, length, pattern,
//! enum), references between models, and nothing half-written when a write is refused.

use crate::helpers::{MISSING_ID, TestApp, assert_error, decls, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn shop() -> TestApp {
    TestApp::spawn_with(decls(json!([
        {
            "name": "customer",
            "fields": [
                {"name": "email", "type": "string", "required": true, "unique": true},
                {"name": "tier", "type": "enum", "values": ["free", "pro"], "indexed": true},
                {"name": "code", "type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                {"name": "age", "type": "integer", "min": 0, "max": 150},
                {"name": "score", "type": "float", "min": 0, "max": 1},
                {"name": "nick", "type": "string", "min_length": 2, "max_length": 5},
                {"name": "counter", "type": "integer"},
                {"name": "born", "type": "datetime"},
                {"name": "vip", "type": "boolean"},
                {"name": "meta", "type": "json"}
            ]
        },
        {
            "name": "order",
            "fields": [
                {"name": "customer", "type": "reference", "model": "customer", "required": true},
                {"name": "note", "type": "text"}
            ]
        }
    ])))
    .await
}

async fn customer(app: &TestApp, email: &str) -> Value {
    app.create_ok("customer", &json!({"name": "c", "email": email}))
        .await
}

fn field_set(fields: Vec<String>) -> BTreeSet<String> {
    fields.into_iter().collect()
}

#[tokio::test]
async fn typed_values_round_trip() {
    let app = shop().await;
    let meta = json!({"nested": [1, 2.5, "x", null, {"deep": true}], "empty": {}});
    let body = json!({
        "name": "full", "email": "a@example.com", "tier": "pro", "code": "ABC-12",
        "age": 0, "score": 0.1, "nick": "ab", "counter": i64::MAX, "vip": false,
        "born": "2026-01-02T03:04:05.1234567+01:00", "meta": meta
    });
    let created = app.create_ok("customer", &body).await;
    for (field, expected) in [
        ("email", json!("a@example.com")),
        ("tier", json!("pro")),
        ("code", json!("ABC-12")),
        ("age", json!(0)),
        ("score", json!(0.1)),
        ("nick", json!("ab")),
        ("counter", json!(i64::MAX)),
        ("vip", json!(false)),
        ("born", json!("2026-01-02T02:04:05.123456Z")),
        ("meta", meta.clone()),
    ] {
        assert_eq!(created[field], expected, "{field}");
    }
    assert_eq!(app.get_ok("customer", &id_of(&created)).await, created);

    // Optional fields left out are null.
    let bare = customer(&app, "b@example.com").await;
    for field in [
        "tier", "code", "age", "score", "nick", "counter", "born", "vip", "meta",
    ] {
        assert_eq!(bare[field], json!(null), "{field}");
    }
}

#[tokio::test]
async fn a_duplicate_unique_value_is_409_naming_the_field_and_writes_nothing() {
    let app = shop().await;
    let first = customer(&app, "same@example.com").await;
    let r = app
        .create_resp(
            "customer",
            &json!({"name": "dup", "email": "same@example.com"}),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    assert_eq!(app.count_all("customer").await, 1);

    // Updating another record onto the taken value is refused the same way.
    let other = customer(&app, "other@example.com").await;
    let oid = id_of(&other);
    let r = app
        .patch_resp(
            "customer",
            &oid,
            &json!({"email": "same@example.com"}),
            None,
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    let r = app
        .put_resp(
            "customer",
            &oid,
            &json!({"name": "o", "email": "same@example.com"}),
            None,
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    assert_eq!(app.get_ok("customer", &oid).await, other);
    assert_eq!(app.get_ok("customer", &id_of(&first)).await, first);

    // A record keeps its own value without conflicting with itself.
    let (status, body) = app
        .patch(
            "customer",
            &oid,
            &json!({"email": "other@example.com", "nick": "oo"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.count_all("customer").await, 2);
}

#[tokio::test]
async fn references_must_name_an_existing_record_of_the_target_model() {
    let app = shop().await;
    let c = id_of(&customer(&app, "c@example.com").await);
    let order = app
        .create_ok("order", &json!({"name": "o1", "customer": c}))
        .await;
    assert_eq!(order["customer"], json!(c));

    let r = app
        .create_resp("order", &json!({"name": "o2", "customer": MISSING_ID}))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["customer"]
    );
    // An id of the wrong model is no better.
    let r = app
        .create_resp("order", &json!({"name": "o3", "customer": id_of(&order)}))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["customer"]
    );
    for bad in [json!("not-a-uuid"), json!(5), json!({"id": c}), json!(null)] {
        let r = app
            .create_resp("order", &json!({"name": "o4", "customer": bad}))
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["customer"],
            "{bad}"
        );
    }
    assert_eq!(app.count_all("order").await, 1);

    let r = app
        .patch_resp(
            "order",
            &id_of(&order),
            &json!({"customer": MISSING_ID}),
            None,
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["customer"]
    );
    assert_eq!(app.get_ok("order", &id_of(&order)).await, order);

    // Filtering by a reference.
    assert_eq!(
        app.ids("order", &[("customer", &c)]).await,
        vec![id_of(&order)]
    );
}

#[tokio::test]
async fn purging_a_referenced_record_is_409_until_the_reference_is_gone() {
    let app = shop().await;
    let c = customer(&app, "ref@example.com").await;
    let cid = id_of(&c);
    let order = id_of(
        &app.create_ok("order", &json!({"name": "o", "customer": cid}))
            .await,
    );

    let r = app.purge_resp("customer", &cid).await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(app.get_ok("customer", &cid).await, c);

    // A soft-deleted order still references the customer.
    let (status, _) = app.delete("order", &order).await;
    assert_eq!(status, StatusCode::OK);
    let r = app.purge_resp("customer", &cid).await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(app.get_ok("customer", &cid).await, c);

    assert_eq!(
        app.purge_resp("order", &order).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.purge_resp("customer", &cid).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.count_all("customer").await, 0);
}

#[tokio::test]
async fn required_fields_must_be_present_and_non_null() {
    let app = shop().await;
    for body in [json!({"name": "c"}), json!({"name": "c", "email": null})] {
        let r = app.create_resp("customer", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["email"],
            "{body}"
        );
    }
    let r = app.create_resp("customer", &json!({})).await;
    assert_eq!(
        field_set(assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT")),
        field_set(vec!["name".to_owned(), "email".to_owned()])
    );
    assert_eq!(app.count_all("customer").await, 0);

    let c = customer(&app, "req@example.com").await;
    let id = id_of(&c);
    let r = app
        .put_resp("customer", &id, &json!({"name": "c"}), None)
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email"]
    );
    let r = app
        .patch_resp("customer", &id, &json!({"email": null}), None)
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email"]
    );
    assert_eq!(app.get_ok("customer", &id).await, c);
}

#[tokio::test]
async fn enum_pattern_range_and_length_violations_are_400_naming_the_field() {
    let app = shop().await;
    let cases = [
        ("tier", json!("gold")),
        ("tier", json!("PRO")),
        ("tier", json!(1)),
        ("code", json!("abc-12")),
        ("code", json!("ABC-123")),
        ("code", json!("xABC-12")),
        ("age", json!(-1)),
        ("age", json!(151)),
        ("score", json!(1.5)),
        ("score", json!(-0.01)),
        ("nick", json!("a")),
        ("nick", json!("abcdef")),
        ("email", json!("e".repeat(256))),
    ];
    for (field, value) in cases {
        let mut body = json!({"name": "c", "email": "x@example.com"});
        body[field] = value.clone();
        let r = app.create_fail("customer", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{field}={value}"
        );
    }
    assert_eq!(app.count_all("customer").await, 0);

    // The edges are accepted.
    app.create_ok(
        "customer",
        &json!({"name": "edge", "email": "e@example.com", "age": 150, "score": 1, "nick": "abcde", "code": "XYZ-00"}),
    )
    .await;
}

#[tokio::test]
async fn wrong_types_per_field_are_400_naming_every_field() {
    let app = shop().await;
    let c = customer(&app, "t@example.com").await;
    let id = id_of(&c);
    let cases = [
        ("email", json!(5)),
        ("age", json!("5")),
        ("age", json!(1.5)),
        ("counter", json!(9_223_372_036_854_775_808_u64)),
        ("counter", json!(true)),
        ("score", json!("0.5")),
        ("vip", json!("true")),
        ("vip", json!(1)),
        ("born", json!("yesterday")),
        ("born", json!("2026-13-01T00:00:00Z")),
        ("born", json!(1_700_000_000)),
        ("born", json!("10000-01-01T00:00:00Z")),
        ("nick", json!(["ab"])),
    ];
    let mut all = json!({"name": "c", "email": "t2@example.com"});
    for (field, value) in &cases {
        let mut body = json!({"name": "c", "email": "t2@example.com"});
        body[*field] = value.clone();
        all[*field] = value.clone();
        let r = app.create_resp("customer", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [*field],
            "{field}={value}"
        );
        let r = app
            .patch_resp("customer", &id, &json!({*field: value}), None)
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [*field]
        );
    }
    // One answer names every bad field.
    let r = app.create_resp("customer", &all).await;
    let expected: BTreeSet<String> = cases.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(
        field_set(assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT")),
        expected
    );

    assert_eq!(app.count_all("customer").await, 1);
    assert_eq!(app.get_ok("customer", &id).await, c);
}

/// The longest names a declaration accepts (48 characters each) still get distinct indexes
/// and a conflict that names the field, on every engine (PostgreSQL keeps only 63 bytes of
/// an identifier).
#[tokio::test]
async fn the_longest_model_and_field_names_keep_distinct_indexes_and_named_conflicts() {
    let model = format!("m{}", "x".repeat(47));
    let first = format!("a{}", "y".repeat(47));
    let second = format!("a{}", "z".repeat(47));
    let app = TestApp::spawn_with(decls(json!([{
        "name": model,
        "fields": [
            {"name": first, "type": "string", "unique": true},
            {"name": second, "type": "string", "unique": true}
        ]
    }])))
    .await;
    app.create_ok(
        &model,
        &json!({"name": "one", first.as_str(): "p", second.as_str(): "q"}),
    )
    .await;
    for (field, body) in [
        (
            &first,
            json!({"name": "two", first.as_str(): "p", second.as_str(): "other"}),
        ),
        (
            &second,
            json!({"name": "three", first.as_str(): "other", second.as_str(): "q"}),
        ),
    ] {
        let r = app
            .send(
                app.request(reqwest::Method::POST, &format!("/api/v1/{model}"))
                    .json(&body),
            )
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
            vec![field.to_string()],
            "{}",
            r.body
        );
    }
    assert_eq!(app.count_all(&model).await, 1, "nothing else was written");
}

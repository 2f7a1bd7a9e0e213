//! `GET /api/v1/{m}`: filters with every operator on every filterable type, status, and
//! refused queries.

use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A model with one field of each filterable type (indexed ones can be sort keys).
pub(crate) async fn items() -> (TestApp, Vec<Value>) {
    let app = TestApp::spawn_with(decls(json!([{
        "name": "item",
        "fields": [
            {"name": "qty", "type": "integer", "indexed": true},
            {"name": "price", "type": "float", "indexed": true},
            {"name": "ok", "type": "boolean"},
            {"name": "due", "type": "datetime", "indexed": true},
            {"name": "tier", "type": "enum", "values": ["free", "pro", "team"], "indexed": true},
            {"name": "label", "type": "string", "indexed": true},
            {"name": "info", "type": "json"}
        ]
    }])))
    .await;
    let bodies = [
        json!({"name": "apple", "qty": 1, "price": 1.5, "ok": true,
               "due": "2026-01-01T00:00:00Z", "tier": "free", "label": "Red Apple", "info": {"k": 1}}),
        json!({"name": "banana", "qty": 2, "price": 0.25, "ok": false,
               "due": "2026-02-01T00:00:00Z", "tier": "pro", "label": "yellow"}),
        json!({"name": "cherry", "qty": 3, "price": 10.0, "ok": true,
               "due": "2026-03-01T00:00:00Z", "tier": "team", "label": "dark red"}),
        json!({"name": "date"}),
    ];
    let mut records = Vec::new();
    for b in &bodies {
        records.push(app.create_ok("item", b).await);
    }
    (app, records)
}

/// The names a query returns, all pages, in the order returned.
pub(crate) async fn names(app: &TestApp, query: &[(&str, &str)]) -> Vec<String> {
    app.list_all("item", query)
        .await
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Checks one filter against the expected names (in creation order).
async fn expect(app: &TestApp, key: &str, value: &str, expected: &[&str]) {
    let got = names(app, &[(key, value), ("sort", "created_at")]).await;
    assert_eq!(got, expected, "{key}={value}");
}

#[tokio::test]
async fn integer_filters_with_every_operator() {
    let (app, _) = items().await;
    expect(&app, "qty", "2", &["banana"]).await;
    expect(&app, "qty[eq]", "2", &["banana"]).await;
    // A missing value is "not equal" too.
    expect(&app, "qty[ne]", "2", &["apple", "cherry", "date"]).await;
    expect(&app, "qty[lt]", "2", &["apple"]).await;
    expect(&app, "qty[lte]", "2", &["apple", "banana"]).await;
    expect(&app, "qty[gt]", "2", &["cherry"]).await;
    expect(&app, "qty[gte]", "2", &["banana", "cherry"]).await;
    expect(&app, "qty[in]", "1,3,99", &["apple", "cherry"]).await;
    expect(
        &app,
        "qty[gt]",
        "-9223372036854775808",
        &["apple", "banana", "cherry"],
    )
    .await;
}

#[tokio::test]
async fn float_boolean_and_datetime_filters() {
    let (app, _) = items().await;
    expect(&app, "price[gt]", "1", &["apple", "cherry"]).await;
    expect(&app, "price[lte]", "0.25", &["banana"]).await;
    expect(&app, "price", "10", &["cherry"]).await;
    expect(&app, "price[in]", "1.5,0.25", &["apple", "banana"]).await;
    expect(&app, "ok", "true", &["apple", "cherry"]).await;
    expect(&app, "ok[eq]", "false", &["banana"]).await;
    expect(&app, "ok[ne]", "true", &["banana", "date"]).await;
    expect(&app, "due[lt]", "2026-02-01T00:00:00Z", &["apple"]).await;
    expect(
        &app,
        "due[gte]",
        "2026-02-01T00:00:00Z",
        &["banana", "cherry"],
    )
    .await;
    expect(&app, "due", "2026-01-01T01:00:00+01:00", &["apple"]).await;
    expect(&app, "due[gt]", "2026-02-01T00:00:00.000001Z", &["cherry"]).await;
}

#[tokio::test]
async fn enum_and_string_filters() {
    let (app, _) = items().await;
    expect(&app, "tier", "pro", &["banana"]).await;
    expect(&app, "tier[ne]", "pro", &["apple", "cherry", "date"]).await;
    expect(&app, "tier[in]", "free,team", &["apple", "cherry"]).await;
    expect(&app, "label[like]", "*red*", &["apple", "cherry"]).await;
    expect(&app, "label[like]", "RED APPLE", &["apple"]).await;
    expect(&app, "label[like]", "red", &[]).await;
    expect(&app, "label[like]", "%", &[]).await;
    expect(&app, "label[like]", "_ellow", &[]).await;
    expect(&app, "label", "yellow", &["banana"]).await;
    expect(&app, "label[gt]", "a", &["banana", "cherry"]).await;
}

#[tokio::test]
async fn like_is_case_insensitive_beyond_ascii() {
    let (app, _) = items().await;
    let id = id_of(
        &app.create_ok("item", &json!({"name": "dessert", "label": "Crème Brûlée"}))
            .await,
    );
    assert_eq!(
        app.ids("item", &[("label[like]", "*brûlée*")]).await,
        vec![id.clone()]
    );
    assert_eq!(
        app.ids("item", &[("label[like]", "CRÈME*")]).await,
        vec![id]
    );
}

#[tokio::test]
async fn base_field_filters() {
    let (app, records) = items().await;
    expect(&app, "name[like]", "b*", &["banana"]).await;
    expect(&app, "name[in]", "apple,date", &["apple", "date"]).await;
    expect(&app, "name[gt]", "banana", &["cherry", "date"]).await;
    expect(&app, "id", &id_of(&records[1]), &["banana"]).await;
    let after = records[0]["created_at"].as_str().expect("created_at");
    expect(&app, "created_at[gt]", after, &["banana", "cherry", "date"]).await;
    expect(&app, "version", "1", &["apple", "banana", "cherry", "date"]).await;
    expect(
        &app,
        "status",
        "active",
        &["apple", "banana", "cherry", "date"],
    )
    .await;
}

#[tokio::test]
async fn filters_combine_with_and() {
    let (app, _) = items().await;
    let got = names(
        &app,
        &[("qty[gte]", "1"), ("ok", "true"), ("sort", "created_at")],
    )
    .await;
    assert_eq!(got, ["apple", "cherry"]);
    let got = names(
        &app,
        &[("qty[gte]", "1"), ("qty[lte]", "2"), ("sort", "name")],
    )
    .await;
    assert_eq!(got, ["apple", "banana"]);
}

#[tokio::test]
async fn default_lists_exclude_deleted_records() {
    let (app, records) = items().await;
    let (status, _) = app.delete("item", &id_of(&records[1])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch(
            "item",
            &id_of(&records[2]),
            &json!({"status": "inactive"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let sorted = ("sort", "created_at");
    assert_eq!(names(&app, &[sorted]).await, ["apple", "cherry", "date"]);
    assert_eq!(
        names(&app, &[("status", "deleted"), sorted]).await,
        ["banana"]
    );
    assert_eq!(
        names(&app, &[("status", "inactive"), sorted]).await,
        ["cherry"]
    );
    assert_eq!(
        names(&app, &[("status[ne]", "active"), sorted]).await,
        ["banana", "cherry"]
    );
    // A filter on another field does not bring deleted records back.
    assert_eq!(
        names(&app, &[("qty[gte]", "1"), sorted]).await,
        ["apple", "cherry"]
    );
}

#[tokio::test]
async fn the_page_reports_its_limit_and_cursor() {
    let (app, _) = items().await;
    let (status, body) = app.list("item", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["page"]["limit"], json!(20));
    assert_eq!(body["page"]["next_cursor"], json!(null));
    assert_eq!(body["data"].as_array().map(Vec::len), Some(4));

    // A page that ends exactly at the last record has no next cursor.
    let (_, body) = app.list("item", &[("limit", "4")]).await;
    assert_eq!(body["page"]["limit"], json!(4));
    assert_eq!(body["page"]["next_cursor"], json!(null));

    let (_, first) = app.list("item", &[("limit", "3"), ("sort", "name")]).await;
    assert_eq!(first["page"]["limit"], json!(3));
    let cursor = first["page"]["next_cursor"].as_str().expect("a cursor");
    let (status, second) = app
        .list(
            "item",
            &[("limit", "3"), ("sort", "name"), ("cursor", cursor)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["data"][0]["name"], json!("date"));
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["page"]["next_cursor"], json!(null));
}

#[tokio::test]
async fn unknown_fields_and_operators_are_400_naming_them() {
    let (app, _) = items().await;
    let cases: [(&str, &[&str]); 7] = [
        ("nope=1", &["nope"]),
        ("qty[foo]=1", &["qty[foo]"]),
        ("qty[eq=1", &["qty[eq"]),
        ("nope[eq]=1", &["nope[eq]"]),
        ("password=x", &["password"]),
        ("nope=1&other=2&limit=0", &["nope", "other", "limit"]),
        ("qty[=1", &["qty["]),
    ];
    for (query, fields) in cases {
        let r = app.list_raw("item", query).await;
        let got = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(got, fields, "{query}");
    }
}

#[tokio::test]
async fn filter_values_of_the_wrong_type_are_400_naming_the_field() {
    let (app, _) = items().await;
    let cases = [
        ("qty", "abc"),
        ("qty", "1.5"),
        ("qty", "99999999999999999999"),
        ("price", "abc"),
        ("price", "inf"),
        ("price", "NaN"),
        ("ok", "yes"),
        ("due", "yesterday"),
        ("tier", "gold"),
        ("tier[in]", "free,gold"),
        ("id", "xyz"),
        ("status", "gone"),
        ("ok[gt]", "true"),
        ("id[lt]", "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d"),
        ("qty[like]", "1"),
        ("info", "1"),
    ];
    for (key, value) in cases {
        let r = app.list_resp("item", &[(key, value)]).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, [key], "{key}={value}");
    }
}

#[tokio::test]
async fn a_cursor_only_resumes_its_own_query() {
    let (app, _) = items().await;
    let (_, first) = app
        .list(
            "item",
            &[("limit", "1"), ("qty[gte]", "1"), ("sort", "qty")],
        )
        .await;
    let cursor = first["page"]["next_cursor"].as_str().expect("a cursor");

    let same = app
        .list_resp(
            "item",
            &[
                ("qty[gte]", "1"),
                ("sort", "qty"),
                ("cursor", cursor),
                ("limit", "1"),
            ],
        )
        .await;
    assert_eq!(same.data(StatusCode::OK)[0]["name"], json!("banana"));

    let others: [&[(&str, &str)]; 4] = [
        &[("qty[gte]", "2"), ("sort", "qty")],
        &[("sort", "qty")],
        &[("qty[gte]", "1"), ("sort", "-qty")],
        &[("qty[gte]", "1"), ("sort", "qty"), ("ok", "true")],
    ];
    for other in others {
        let mut q = other.to_vec();
        q.push(("cursor", cursor));
        let r = app.list_resp("item", &q).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, ["cursor"], "{other:?}");
    }
}

#[tokio::test]
async fn repeated_limit_sort_or_cursor_is_400() {
    let (app, _) = items().await;
    for query in ["limit=1&limit=2", "sort=name&sort=qty", "cursor=a&cursor=b"] {
        let r = app.list_raw("item", query).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
}

//! List order: every sort key in both directions, NULLs, and keyset pages that agree with
//! the unpaginated order.

use crate::helpers::{TestApp, assert_error, id_of};
use crate::list::{items, names};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn default_order_is_newest_first() {
    let (app, _) = items().await;
    assert_eq!(
        names(&app, &[]).await,
        ["date", "cherry", "banana", "apple"]
    );
    assert_eq!(
        names(&app, &[("sort", "-created_at")]).await,
        ["date", "cherry", "banana", "apple"]
    );
    assert_eq!(
        names(&app, &[("sort", "created_at")]).await,
        ["apple", "banana", "cherry", "date"]
    );
}

#[tokio::test]
async fn sort_by_name_and_updated_at() {
    let (app, records) = items().await;
    assert_eq!(
        names(&app, &[("sort", "name")]).await,
        ["apple", "banana", "cherry", "date"]
    );
    assert_eq!(
        names(&app, &[("sort", "+name")]).await,
        ["apple", "banana", "cherry", "date"]
    );
    assert_eq!(
        names(&app, &[("sort", "-name")]).await,
        ["date", "cherry", "banana", "apple"]
    );

    let (status, _) = app
        .patch("item", &id_of(&records[1]), &json!({"qty": 20}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch("item", &id_of(&records[0]), &json!({"qty": 10}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        names(&app, &[("sort", "updated_at")]).await,
        ["cherry", "date", "banana", "apple"]
    );
    assert_eq!(
        names(&app, &[("sort", "-updated_at")]).await,
        ["apple", "banana", "date", "cherry"]
    );
}

#[tokio::test]
async fn sort_by_indexed_fields_with_missing_values_last_going_up() {
    let (app, _) = items().await;
    let cases: [(&str, [&str; 4]); 10] = [
        ("qty", ["apple", "banana", "cherry", "date"]),
        ("-qty", ["date", "cherry", "banana", "apple"]),
        ("price", ["banana", "apple", "cherry", "date"]),
        ("-price", ["date", "cherry", "apple", "banana"]),
        ("due", ["apple", "banana", "cherry", "date"]),
        ("-due", ["date", "cherry", "banana", "apple"]),
        ("tier", ["apple", "banana", "cherry", "date"]),
        ("-tier", ["date", "cherry", "banana", "apple"]),
        // Byte order: "Red Apple" < "dark red" < "yellow".
        ("label", ["apple", "cherry", "banana", "date"]),
        ("-label", ["date", "banana", "cherry", "apple"]),
    ];
    for (sort, expected) in cases {
        assert_eq!(
            names(&app, &[("sort", sort)]).await,
            expected,
            "sort={sort}"
        );
    }
}

#[tokio::test]
async fn pages_of_one_follow_the_full_order_for_every_sort_key() {
    let (app, _) = items().await;
    for i in 0..4 {
        // Ties and more missing values, so the id tie-break and NULL handling are exercised.
        app.create_ok(
            "item",
            &json!({"name": format!("tie{i}"), "qty": 2, "tier": "pro"}),
        )
        .await;
        app.create_ok("item", &json!({"name": format!("null{i}")}))
            .await;
    }
    for sort in [
        "created_at",
        "-created_at",
        "name",
        "-name",
        "updated_at",
        "-updated_at",
        "qty",
        "-qty",
        "price",
        "-price",
        "due",
        "-due",
        "tier",
        "-tier",
        "label",
        "-label",
    ] {
        let full = names(&app, &[("sort", sort)]).await;
        assert_eq!(full.len(), 12, "sort={sort}");
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("sort", sort), ("limit", "1")];
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let r = app.list_resp("item", &q).await;
            let page = r.data(StatusCode::OK).as_array().expect("a list").clone();
            assert!(page.len() <= 1);
            paged.extend(
                page.iter()
                    .map(|p| p["name"].as_str().expect("name").to_owned()),
            );
            match r.body["page"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(paged.len() <= 12, "sort={sort}: the walk does not end");
        }
        assert_eq!(paged, full, "sort={sort}");
    }
}

#[tokio::test]
async fn unsortable_keys_are_400() {
    let (app, _) = items().await;
    for sort in [
        "ok",
        "-ok",
        "info",
        "id",
        "version",
        "status",
        "owner_id",
        "nope",
        "",
        "-",
        "--name",
        "name desc",
        "name,qty",
        "'; DROP TABLE item; --",
    ] {
        let r = app.list_resp("item", &[("sort", sort)]).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, ["sort"], "sort={sort:?}");
    }
    assert_eq!(app.count_all("item").await, 4);
}

#[tokio::test]
async fn the_default_model_sorts_by_its_base_keys_only() {
    let app = TestApp::spawn().await;
    for sort in [
        "created_at",
        "-created_at",
        "name",
        "-name",
        "updated_at",
        "-updated_at",
    ] {
        let (status, _) = app.list("resource", &[("sort", sort)]).await;
        assert_eq!(status, StatusCode::OK, "sort={sort}");
    }
    let r = app.list_resp("resource", &[("sort", "qty")]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
}

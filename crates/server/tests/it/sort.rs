//! List order: every sort key in both directions, NULLs, and keyset pages that agree with
//! the unpaginated order.

use crate::helpers::{TestApp, assert_error, id_of};
use crate::list::{items, names};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

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
        let paged: Vec<String> = walk(&app, sort, "1", 13)
            .await
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(paged, full, "sort={sort}");
    }
}

/// Walks every page of `GET /api/v1/item?sort={sort}&limit={limit}`; at most `bound` pages.
async fn walk(app: &TestApp, sort: &str, limit: &str, bound: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..bound {
        let mut q = vec![("sort", sort), ("limit", limit)];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = app.list_resp("item", &q).await;
        let page = r.data(StatusCode::OK).as_array().expect("a list");
        assert!(
            page.len() <= limit.parse().expect("a number"),
            "sort={sort} limit={limit}: {} records on a page",
            page.len()
        );
        out.extend(page.iter().cloned());
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("sort={sort} limit={limit}: still a next page after {bound} pages");
}

#[tokio::test]
async fn pages_through_equal_sort_values_see_each_record_once_in_id_order() {
    let (app, records) = items().await;
    // Many records that tie on every sort key but the timestamps: the same name, and the
    // same value as banana in each indexed field. Only the id tells them apart, so a page
    // boundary inside a run of equal values must continue by id.
    let twin = json!({"name": "twin", "qty": 2, "price": 0.25, "tier": "pro",
                      "due": "2026-02-01T00:00:00Z", "label": "yellow"});
    let banana = id_of(&records[1]);
    let mut twins = Vec::new();
    let mut stored = Value::Null;
    for _ in 0..9 {
        stored = app.create_ok("item", &twin).await;
        twins.push(id_of(&stored));
    }
    let total = records.len() + twins.len();
    for sort in [
        "name", "-name", "qty", "-qty", "price", "-price", "due", "-due", "tier", "-tier", "label",
        "-label",
    ] {
        let key = sort.trim_start_matches('-');
        // The records equal to the twins on this key: banana too, except for the name.
        let mut expected = twins.clone();
        if key != "name" {
            expected.push(banana.clone());
        }
        expected.sort();
        if sort.starts_with('-') {
            expected.reverse();
        }
        for limit in ["1", "2", "4"] {
            let seen = walk(&app, sort, limit, total + 1).await;
            let ids: Vec<String> = seen.iter().map(id_of).collect();
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(
                unique.len(),
                ids.len(),
                "sort={sort} limit={limit}: a record was listed twice"
            );
            assert_eq!(
                ids.len(),
                total,
                "sort={sort} limit={limit}: records were skipped"
            );
            // Equal keys come in id order: up when the sort goes up, down when it goes down.
            let tied: Vec<String> = seen
                .iter()
                .filter(|r| r[key] == stored[key])
                .map(id_of)
                .collect();
            assert_eq!(
                tied, expected,
                "sort={sort} limit={limit}: equal keys out of id order"
            );
        }
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
    let mut made = Vec::new();
    for name in ["b", "c", "a"] {
        let draft = json!({"name": format!("{name} draft")});
        made.push((name, id_of(&app.create_ok("resource", &draft).await)));
    }
    // Renamed in the order a, b, c: updated_at's order is not created_at's.
    for i in [2, 0, 1] {
        let (name, id) = &made[i];
        let (status, body) = app
            .patch("resource", id, &json!({"name": name}), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let cases: [(&str, [&str; 3]); 6] = [
        ("created_at", ["b", "c", "a"]),
        ("-created_at", ["a", "c", "b"]),
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("updated_at", ["a", "b", "c"]),
        ("-updated_at", ["c", "b", "a"]),
    ];
    for (sort, expected) in cases {
        let got: Vec<String> = app
            .list_all("resource", &[("sort", sort)])
            .await
            .iter()
            .map(|r| r["name"].as_str().expect("a name").to_owned())
            .collect();
        assert_eq!(got, expected, "sort={sort}");
    }
    let r = app.list_resp("resource", &[("sort", "qty")]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
}

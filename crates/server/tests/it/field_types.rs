//! The field types `date`, `decimal`, `array`, `email` and `url` over HTTP on the engine of
//! the run: the issue's `book` declaration round-trips, each constraint answers 400 naming
//! its field, filters and sorts work by value, `unique_among = "live"` frees a deleted
//! record's value (and a restore onto it is 409; on a pii email too), and the access policy
//! holds for filters on the new types and for a change stream filtered on them.

use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The declaration without the file field: `author` and `book`.
fn library() -> Value {
    json!([
        {"name": "author", "fields": [
            {"name": "email", "type": "email", "unique": true, "unique_among": "live", "pii": true},
            {"name": "site", "type": "url"}
        ]},
        {"name": "book", "user_read": "own", "guest_read": false, "fields": [
            {"name": "title", "type": "string"},
            {"name": "price", "type": "decimal", "scale": 2, "min": "0", "indexed": true},
            {"name": "published", "type": "date", "indexed": true},
            {"name": "tags", "type": "array", "items": "string", "max_items": 5},
            {"name": "author", "type": "reference", "model": "author"}
        ]}
    ])
}

async fn app() -> TestApp {
    TestApp::spawn_with(decls(library())).await
}

fn names(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["name"].as_str()).collect()
}

#[tokio::test]
async fn a_book_round_trips_with_every_type() {
    let app = app().await;
    let author = app
        .create_ok(
            "author",
            &json!({"name": "Ada", "email": "ada@example.com", "site": "https://ada.example/"}),
        )
        .await;
    assert_eq!(author["email"], "ada@example.com");
    assert_eq!(author["site"], "https://ada.example/");
    let book = app
        .create_ok(
            "book",
            &json!({"name": "b", "title": "Rust", "price": "12.5", "published": "2026-01-31",
                    "tags": ["rust", "systems"], "author": id_of(&author)}),
        )
        .await;
    // A decimal comes back as a string with exactly its scale's digits.
    assert_eq!(book["price"], "12.50");
    assert_eq!(book["published"], "2026-01-31");
    assert_eq!(book["tags"], json!(["rust", "systems"]));
    let read = app.get_ok("book", &id_of(&book)).await;
    assert_eq!(read["price"], "12.50");
    let (status, patched) = app
        .patch(
            "book",
            &id_of(&book),
            &json!({"price": "0.1", "tags": []}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["data"]["price"], "0.10");
    assert_eq!(patched["data"]["tags"], json!([]));
}

#[tokio::test]
async fn each_constraint_is_a_400_naming_its_field() {
    let app = app().await;
    for (body, field, reason) in [
        (
            json!({"price": "1.005"}),
            "price",
            "at most 2 decimal places",
        ),
        (
            json!({"price": 12.5}),
            "price",
            "must be a decimal as a string",
        ),
        (json!({"price": "-1"}), "price", "must be at least 0.00"),
        (
            json!({"price": "99999999999999999"}),
            "price",
            "at most 18 digits",
        ),
        (json!({"published": "2026-02-30"}), "published", "no day 30"),
        (
            json!({"published": "31/01/2026"}),
            "published",
            "YYYY-MM-DD",
        ),
        (
            json!({"tags": ["a", "b", "c", "d", "e", "f"]}),
            "tags",
            "at most 5 items",
        ),
        (json!({"tags": ["a", 2]}), "tags", "item 1 must be a string"),
        (json!({"tags": "a"}), "tags", "must be an array of strings"),
    ] {
        let mut body = body;
        body["name"] = json!("b");
        let r = app.create_fail("book", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{body}"
        );
        assert!(
            r.body["error"]["details"][0]["reason"]
                .as_str()
                .is_some_and(|s| s.contains(reason)),
            "{body}: {}",
            r.body
        );
    }
    for (body, field) in [
        (json!({"name": "a", "email": "not-an-email"}), "email"),
        (json!({"name": "a", "site": "javascript:alert(1)"}), "site"),
        (json!({"name": "a", "site": "example.com"}), "site"),
    ] {
        let r = app.create_fail("author", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{body}"
        );
    }
    // Nothing was written.
    assert_eq!(app.count_all("book").await, 0);
    assert_eq!(app.count_all("author").await, 0);
}

#[tokio::test]
async fn filters_and_sorts_go_by_value() {
    let app = app().await;
    for (name, price, published, tags) in [
        ("nine", "9.50", "2026-09-30", json!(["rust", "web"])),
        ("ten", "10.00", "2026-10-01", json!(["go"])),
        ("hundred", "100", "1999-12-31", json!(["rust"])),
    ] {
        app.create_ok(
            "book",
            &json!({"name": name, "price": price, "published": published, "tags": tags}),
        )
        .await;
    }
    let list = |q: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move { app.list_all("book", q).await }
    };
    assert_eq!(
        names(&list(&[("sort", "price")]).await),
        ["nine", "ten", "hundred"]
    );
    assert_eq!(
        names(&list(&[("sort", "-published")]).await),
        ["ten", "nine", "hundred"]
    );
    assert_eq!(
        names(&list(&[("price[lt]", "10"), ("sort", "price")]).await),
        ["nine"]
    );
    assert_eq!(
        names(&list(&[("published[gte]", "2026-01-01"), ("sort", "published")]).await),
        ["nine", "ten"]
    );
    assert_eq!(
        names(&list(&[("tags[has]", "rust"), ("sort", "price")]).await),
        ["nine", "hundred"]
    );
    assert_eq!(
        names(&list(&[("tags[has_any]", "go,web"), ("sort", "price")]).await),
        ["nine", "ten"]
    );
    for (key, value, reason) in [
        ("tags", "rust", "only has and has_any"),
        ("tags[like]", "r*", "only has and has_any"),
        ("price[has]", "1", "array fields only"),
        ("price", "1.001", "at most 2 decimal places"),
        ("published[lt]", "tomorrow", "YYYY-MM-DD"),
    ] {
        let r = app.list_resp("book", &[(key, value)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [key]
        );
        assert!(r.body.to_string().contains(reason), "{key}: {}", r.body);
    }
    let r = app.list_resp("book", &[("sort", "tags")]).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["sort"]
    );
}

#[tokio::test]
async fn a_deleted_records_unique_value_can_be_taken_again() {
    let app = app().await;
    let body = json!({"name": "Ada", "email": "ada@example.com"});
    let first = app.create_ok("author", &body).await;
    let (status, deleted) = app.delete("author", &id_of(&first)).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, second) = app.create("author", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    // Restoring the first would make two live authors share the address.
    let r = app.restore_resp("author", &id_of(&first)).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    // While live, the value is taken.
    let r = app.create_fail("author", &body).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    // The address is pii: sealed at rest, still found by equality.
    assert_eq!(
        app.ids("author", &[("email", "ada@example.com")]).await,
        [id_of(&second["data"])]
    );
    let r = app.list_resp("author", &[("email[like]", "ada*")]).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email[like]"]
    );

    // Without `unique_among = "live"`, a deleted record keeps its value.
    let strict = TestApp::spawn_with(decls(json!([{"name": "author", "fields": [
        {"name": "email", "type": "email", "unique": true}
    ]}])))
    .await;
    let first = strict.create_ok("author", &body).await;
    strict.delete("author", &id_of(&first)).await;
    let r = strict.create_fail("author", &body).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
}

#[tokio::test]
async fn filters_on_the_new_types_never_reach_past_the_policy() {
    let app = app().await;
    let (_, alice) = app.user("alice@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let body = json!({"name": "secret", "price": "5.00", "published": "2026-01-01",
                      "tags": ["private"]});
    let r = app
        .call_as(Method::POST, "/api/v1/book", Some(&alice), Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for path in [
        "/api/v1/book?tags[has]=private",
        "/api/v1/book?price[gte]=0",
        "/api/v1/book?published=2026-01-01",
    ] {
        // Bob reads his own books only: the filter finds nothing of Alice's.
        let r = app.call_as(Method::GET, path, Some(&bob), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(r.body["data"], json!([]), "{path}");
        let r = app.call_as(Method::GET, path, Some(&alice), None).await;
        assert_eq!(r.body["data"].as_array().map(Vec::len), Some(1), "{path}");
        // No credential, a forged one.
        let r = app.call_as(Method::GET, path, None, None).await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{path}: {}",
            r.body
        );
        assert!(!r.body.to_string().contains("private"));
        let r = app.call_as(Method::GET, path, Some("forged"), None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    // Hostile filter values are 400s or empty pages, never a server error.
    for (key, value) in [
        ("tags[has]", "' OR 1=1 --"),
        ("tags[has_any]", "\"]}, {\"a"),
        ("price[lt]", "1e999"),
        ("price[in]", "1,,2"),
        ("published", "9999-99-99"),
        ("tags[has]", "\u{0}"),
    ] {
        let r = app.list_resp("book", &[(key, value)]).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{key}={value:?}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn a_change_stream_filters_on_dates_decimals_and_arrays() {
    let app = app().await;
    let (mut sse, _) = app
        .subscribe("/api/v1/book/events?price[gte]=10&published[lt]=2026-06-01&tags[has]=rust")
        .await;
    for (name, price, published, tags) in [
        ("cheap", "9.99", "2026-01-01", json!(["rust"])),
        ("late", "10", "2026-06-01", json!(["rust"])),
        ("other", "10", "2026-01-01", json!(["go"])),
        ("match", "10.00", "2026-05-31", json!(["go", "rust"])),
        ("dear", "100", "1999-01-01", json!(["rust"])),
    ] {
        app.create_ok(
            "book",
            &json!({"name": name, "price": price, "published": published, "tags": tags}),
        )
        .await;
    }
    let events = sse.changes(2).await;
    let got: Vec<&Value> = events.iter().map(|e| &e.data["record"]).collect();
    assert_eq!(
        names(&got.into_iter().cloned().collect::<Vec<_>>()),
        ["match", "dear"]
    );
    assert_eq!(events[0].data["record"]["price"], "10.00");
    assert_eq!(events[1].data["record"]["published"], "1999-01-01");
    // A bad typed filter is refused before the stream opens.
    let r = app.get_path("/api/v1/book/events?price[gte]=1.234").await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["price[gte]"]
    );
}

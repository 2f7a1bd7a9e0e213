//! `filter=`: boolean expressions over a list (and a stream), on the engine of the run:
//! the grammar's operators, NULLs and `!`, pii equality, `admin_only` fields, errors with
//! columns, hostile text, the read policy's scope, and cursors bound to the expression.

use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Books: text, a decimal, an integer, a date, an array, an enum, a pii field and an
/// admin-only one; "Café Rust" deleted.
async fn books() -> TestApp {
    let app = TestApp::spawn_with(decls(json!([{"name": "book", "fields": [
        {"name": "title", "type": "string"},
        {"name": "price", "type": "decimal", "scale": 2},
        {"name": "pages", "type": "integer"},
        {"name": "published", "type": "date"},
        {"name": "tags", "type": "array", "items": "string"},
        {"name": "kind", "type": "enum", "values": ["paper", "ebook"]},
        {"name": "isbn", "type": "string", "pii": true},
        {"name": "note", "type": "string", "admin_only": true}
    ]}])))
    .await;
    for body in [
        json!({"name": "a", "title": "Rust in Action", "price": "30.00", "pages": 400,
               "kind": "paper", "isbn": "111", "note": "n1", "published": "2019-07-01",
               "tags": ["rust", "systems"]}),
        json!({"name": "b", "title": "rust for rustaceans", "price": "5.00", "pages": 300,
               "kind": "ebook", "isbn": "222", "published": "2021-12-01", "tags": ["rust"]}),
        json!({"name": "c", "title": "Go Programming", "price": "8.00", "tags": ["go"]}),
        json!({"name": "d", "title": "Café Rust", "price": "50.00", "pages": 10}),
        json!({"name": "e", "title": "The C Book", "pages": 100, "published": "1978-02-22"}),
    ] {
        app.create_ok("book", &body).await;
    }
    let d = app.list_all("book", &[("name", "d")]).await;
    assert!(app.delete("book", &id_of(&d[0])).await.0.is_success());
    app
}

/// The names `filter` selects (all pages, creation order), with extra pairs.
async fn names(app: &TestApp, filter: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let mut q = vec![("filter", filter), ("sort", "created_at")];
    q.extend_from_slice(extra);
    app.list_all("book", &q)
        .await
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[track_caller]
fn refused(r: &crate::helpers::Resp, reason: &str) {
    assert_eq!(
        assert_error(r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["filter"]
    );
    assert_eq!(
        r.body["error"]["details"][0]["reason"],
        json!(reason),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn comparisons_combine_with_and_or_not_and_parentheses() {
    let app = books().await;
    let cases: &[(&str, &[&str])] = &[
        // The example of the API guide: `status` named, so deleted records may match.
        (
            r#"(status = "active" || price < 10) && title ~ "rust""#,
            &["a", "b"],
        ),
        (r#"status = "deleted" || price < 10"#, &["b", "c", "d"]),
        ("price < 10 || pages > 350", &["a", "b", "c"]),
        ("price >= 8 && price <= 30", &["a", "c"]),
        ("price > 5 && !(pages = 400)", &["c"]),
        // A missing price satisfies no comparison; `!` makes that true.
        ("!(price < 10)", &["a", "e"]),
        ("!price < 10 && !price >= 10", &["e"]),
        ("price = null", &["e"]),
        ("pages != null", &["a", "b", "e"]),
        ("pages != 400", &["b", "c", "e"]),
        ("title ~ \"RUST\"", &["a", "b"]),
        ("title !~ \"rust\"", &["c", "e"]),
        ("!title ~ \"rust\" || kind = \"paper\"", &["a", "c", "e"]),
        (
            "kind = 'ebook' || (kind != \"ebook\" && pages < 200)",
            &["b", "e"],
        ),
        (
            "name = \"a\" || name = \"b\" || name = \"e\"",
            &["a", "b", "e"],
        ),
        ("title ~ \"%\" || title ~ \"_\" || title ~ \"*\"", &[]),
        (
            "version = 1 && created_at > \"2000-01-01T00:00:00Z\"",
            &["a", "b", "c", "e"],
        ),
        // Decimals compare by value, whatever the scale written.
        ("price < 8 || price > \"29.99\"", &["a", "b"]),
        ("price = 8.0 || price = \"5\"", &["b", "c"]),
        (
            "published >= \"2019-07-01\" || published < \"1980-01-01\"",
            &["a", "b", "e"],
        ),
        ("!published > \"2000-01-01\"", &["c", "e"]),
        ("tags ?= \"rust\" && !tags ?= \"systems\"", &["b"]),
        ("tags ?= \"go\" || tags = null", &["c", "e"]),
        ("!tags ?= \"rust\"", &["c", "e"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(names(&app, filter, &[]).await, *expected, "{filter}");
    }
}

#[tokio::test]
async fn pii_fields_compare_by_equality_only() {
    let app = books().await;
    assert_eq!(
        names(&app, "isbn = \"111\" || isbn = \"222\"", &[]).await,
        ["a", "b"]
    );
    assert_eq!(names(&app, "isbn != \"111\"", &[]).await, ["b", "c", "e"]);
    assert_eq!(names(&app, "!isbn = \"111\"", &[]).await, ["b", "c", "e"]);
    assert_eq!(names(&app, "isbn = null", &[]).await, ["c", "e"]);
    let r = app.list_resp("book", &[("filter", "isbn ~ \"1\"")]).await;
    refused(
        &r,
        "column 8: `isbn` is pii (stored encrypted): only = and != apply to it",
    );
    let r = app.list_resp("book", &[("filter", "isbn < \"2\"")]).await;
    refused(
        &r,
        "column 8: `isbn` is pii (stored encrypted): only = and != apply to it",
    );
}

#[tokio::test]
async fn admin_only_fields_are_unknown_to_users() {
    let app = books().await;
    assert_eq!(names(&app, "note ~ \"n\"", &[]).await, ["a"]);
    let (_, user) = app.user("reader@example.com").await;
    let path = format!(
        "/api/v1/book?{}",
        serde_urlencoded::to_string([("filter", "price > 1 || note = \"n1\"")]).expect("encode")
    );
    let r = app.call_as(Method::GET, &path, Some(&user), None).await;
    refused(&r, "column 14: unknown field `note`");
}

#[tokio::test]
async fn errors_name_the_filter_and_the_column() {
    let app = books().await;
    for (filter, reason) in [
        (
            "price < ",
            "column 9: expected a value after `<`, found the end",
        ),
        ("(price < 10 || pages > 1", "column 1: `(` is never closed"),
        (
            "price < 10 pages",
            "column 12: expected `&&`, `||` or the end, found `pages`",
        ),
        ("pages = 1.5", "column 9: `pages` must be an integer"),
        (
            "kind = \"comic\"",
            "column 8: `kind` must be one of paper, ebook",
        ),
        ("pages ~ \"1\"", "column 9: `~` applies to text fields only"),
        (
            "title = \"never closed",
            "column 9: the string is never closed",
        ),
        ("nope = 1", "column 1: unknown field `nope`"),
    ] {
        let r = app.list_resp("book", &[("filter", filter)]).await;
        refused(&r, reason);
    }
    let r = app
        .list_resp("book", &[("filter", "pages = 1"), ("filter", "pages = 2")])
        .await;
    refused(&r, "given more than once");
    let long = vec!["pages = 1"; 300].join(" || ");
    let r = app.list_resp("book", &[("filter", &long)]).await;
    refused(&r, "column 2049: an expression is at most 2048 characters");
    let deep = format!("{}pages = 1{}", "(".repeat(40), ")".repeat(40));
    let r = app.list_resp("book", &[("filter", &deep)]).await;
    refused(&r, "column 17: nested more than 16 deep");
}

#[tokio::test]
async fn hostile_text_is_matched_literally_or_refused() {
    let app = books().await;
    for hostile in [
        "\"; DROP TABLE \"book\"; --",
        "' OR 1=1 --",
        "x') UNION SELECT * FROM _plinth_users --",
        "?1 $1 %_\\",
        "ünï ✓ 🦀",
    ] {
        let quoted = format!("\"{}\"", hostile.replace('\\', "\\\\").replace('"', "\\\""));
        for op in ["=", "~", "<"] {
            let filter = format!("title {op} {quoted} || name {op} {quoted}");
            let got = names(&app, &filter, &[]).await;
            // `<` compares: "' OR…" and "?1…" sort before every title; nothing is injected.
            assert!(op == "<" || got.is_empty(), "{filter}: {got:?}");
        }
        let r = app
            .list_resp("book", &[("filter", &format!("title = {hostile}"))])
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    // NUL compared for equality: SQLite compares it whole; PostgreSQL text cannot hold it,
    // refused as it is in a `field=value` filter.
    let r = app
        .list_resp("book", &[("filter", "title = \"a\0b\"")])
        .await;
    if r.status == StatusCode::OK {
        assert_eq!(r.body["data"], json!([]));
    } else {
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let r = app
        .list_resp("book", &[("filter", "title ~ \"a\0b\"")])
        .await;
    refused(&r, "column 9: the text of `~` must not contain NUL");
    let r = app
        .list_resp("book", &[("filter", "title = 1; DROP TABLE book")])
        .await;
    refused(&r, "column 9: `title` takes a string, in quotes");
    let r = app
        .list_resp("book", &[("filter", "title = \"x\"; DROP TABLE book")])
        .await;
    refused(&r, "column 12: unexpected character ';'");
    // Everything is still there.
    assert_eq!(
        names(&app, "price > 0 || price = null", &[]).await,
        ["a", "b", "c", "e"]
    );
}

#[tokio::test]
async fn the_filter_combines_with_field_filters_and_pages_with_its_cursor() {
    let app = books().await;
    assert_eq!(
        names(&app, "price < 10 || pages > 350", &[("kind", "paper")]).await,
        ["a"]
    );
    assert_eq!(
        names(&app, "price < 10 || pages > 350", &[("title[like]", "*o*")]).await,
        ["a", "b", "c"]
    );
    let filter = "price > 1 || pages > 1";
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("filter", filter), ("sort", "created_at"), ("limit", "1")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = app.list_resp("book", &q).await;
        let page = r.data(StatusCode::OK).as_array().expect("a page").clone();
        seen.extend(
            page.iter()
                .map(|b| b["name"].as_str().expect("name").to_owned()),
        );
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() < 10, "{seen:?}");
    }
    assert_eq!(seen, ["a", "b", "c", "e"]);
    // A cursor resumes only its own expression.
    let first = app
        .list_resp(
            "book",
            &[("filter", filter), ("sort", "created_at"), ("limit", "1")],
        )
        .await;
    let cursor = first.body["page"]["next_cursor"]
        .as_str()
        .expect("a cursor");
    let other = [
        ("filter", "price > 2 || pages > 1"),
        ("sort", "created_at"),
        ("cursor", cursor),
    ];
    let r = app.list_resp("book", &other).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["cursor"]
    );
}

#[tokio::test]
async fn an_or_cannot_widen_the_read_scope() {
    let app = TestApp::spawn_with(decls(json!([{
        "name": "diary", "user_read": "own",
        "fields": [{"name": "mood", "type": "string"}]
    }])))
    .await;
    let (a_user, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    app.create_as("diary", &a, &json!({"name": "a1", "mood": "happy"}))
        .await;
    let mine = app
        .create_as("diary", &b, &json!({"name": "b1", "mood": "sad"}))
        .await;
    let as_b = |filter: String| {
        let path = format!(
            "/api/v1/diary?{}",
            serde_urlencoded::to_string([("filter", filter)]).expect("encode")
        );
        let app = &app;
        let b = b.clone();
        async move { app.call_as(Method::GET, &path, Some(&b), None).await }
    };
    for filter in [
        "mood = \"happy\" || mood != \"happy\"".to_owned(),
        "!(owner_id = null) || owner_id = null".to_owned(),
        format!("owner_id = \"{}\" || name ~ \"\"", a_user.id),
        "status = \"active\" || status != \"active\"".to_owned(),
    ] {
        let r = as_b(filter.clone()).await;
        let data: Vec<Value> = r.data(StatusCode::OK).as_array().expect("a list").clone();
        let ids: Vec<String> = data.iter().map(id_of).collect();
        assert_eq!(ids, [id_of(&mine)], "{filter}");
    }
    // Without a credential the answer is what it is without the filter.
    let path = "/api/v1/diary?filter=mood%20%3D%20%22happy%22";
    let guest = app.call_as(Method::GET, path, None, None).await;
    let plain = app.call_as(Method::GET, "/api/v1/diary", None, None).await;
    assert_eq!(guest.status, plain.status);
    assert!(!guest.status.is_success(), "{}", guest.body);
}

#[tokio::test]
async fn a_stream_sends_only_the_changes_its_filter_selects() {
    let app = books().await;
    let query =
        serde_urlencoded::to_string([("filter", "price < 10 || title ~ \"go\"")]).expect("encode");
    let (mut sse, _) = app.subscribe(&format!("/api/v1/book/events?{query}")).await;
    for (name, title, price) in [
        ("x", "Nothing", "50.00"),
        ("y", "Cheap", "5.00"),
        ("z", "Go Further", "99.00"),
        ("w", "Last", "1.00"),
    ] {
        app.create_ok(
            "book",
            &json!({"name": name, "title": title, "price": price}),
        )
        .await;
    }
    let events = sse.changes(3).await;
    let got: Vec<&str> = events
        .iter()
        .map(|e| e.data["record"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(got, ["y", "z", "w"]);
    let bad = format!(
        "/api/v1/book/events?{}",
        serde_urlencoded::to_string([("filter", "price <")]).expect("encode")
    );
    let r = app
        .call_as(Method::GET, &bad, Some(&app.admin_token), None)
        .await;
    refused(&r, "column 8: expected a value after `<`, found the end");
}

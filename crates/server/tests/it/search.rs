//! Full-text search over HTTP (`?q=`, `sort=-relevance`): with filters and cursor pages,
//! the owner scope, guests, soft deletes, hostile text, `admin_only` fields and the change
//! feed, which refuses it.

use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

/// The issue's `book` model (the field types that exist), `title` searchable, with an
/// `admin_only` note.
async fn library() -> TestApp {
    TestApp::spawn_with(decls(json!([
        { "name": "author" },
        { "name": "book", "fields": [
            { "name": "title", "type": "string", "searchable": true },
            { "name": "blurb", "type": "text", "searchable": true },
            { "name": "price", "type": "integer", "indexed": true },
            { "name": "note", "type": "string", "admin_only": true },
            { "name": "author", "type": "reference", "model": "author" },
        ]},
    ])))
    .await
}

/// Every page of `query` (plus `limit`), as `(id, title)`, following the cursors.
async fn walk(app: &TestApp, token: Option<&str>, query: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let qs = serde_urlencoded::to_string(&q).expect("encode");
        let r = app
            .call_as(Method::GET, &format!("/api/v1/book?{qs}"), token, None)
            .await;
        for rec in r.data(StatusCode::OK).as_array().expect("a list") {
            out.push((id_of(rec), rec["title"].as_str().unwrap_or("").to_owned()));
        }
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("{query:?}: the pages do not end");
}

#[tokio::test]
async fn search_with_filters_walks_every_match_once_best_first() {
    let app = library().await;
    let best = app
        .create_ok(
            "book",
            &json!({"name": "b", "title": "Rust, rust and more rust", "price": 5}),
        )
        .await;
    let mut expected = HashSet::from([id_of(&best)]);
    for i in 0..13 {
        let rec = app
            .create_ok(
                "book",
                &json!({"name": "r", "title": format!("Volume {i}"), "blurb": format!("running rust programs, part {i}"), "price": i}),
            )
            .await;
        if i < 10 {
            expected.insert(id_of(&rec));
        }
    }
    for i in 0..5 {
        app.create_ok(
            "book",
            &json!({"name": "o", "title": format!("Gardening {i}"), "price": i}),
        )
        .await;
    }
    let query = [
        ("q", "Rust"),
        ("price[lt]", "10"),
        ("sort", "-relevance"),
        ("limit", "3"),
    ];
    let pages = walk(&app, None, &query).await;
    let ids: Vec<&String> = pages.iter().map(|(id, _)| id).collect();
    let unique: HashSet<String> = ids.iter().map(|s| (*s).clone()).collect();
    assert_eq!(ids.len(), unique.len(), "a record twice: {pages:?}");
    assert_eq!(unique, expected, "a gap or a stranger");
    assert_eq!(pages[0].1, "Rust, rust and more rust", "the best first");
    // Stemming: "run" finds "running"; the default sort stays newest first.
    let runs = walk(&app, None, &[("q", "run"), ("limit", "5")]).await;
    assert_eq!(runs.len(), 13);
    assert_eq!(runs[0].1, "Volume 12");
    // A search within another sort.
    let by_price = walk(
        &app,
        None,
        &[("q", "rust"), ("sort", "-price"), ("limit", "4")],
    )
    .await;
    let titles: Vec<&str> = by_price.iter().take(2).map(|(_, t)| t.as_str()).collect();
    assert_eq!(titles, ["Volume 12", "Volume 11"]);
}

#[tokio::test]
async fn relevance_needs_q_and_q_needs_searchable_fields() {
    let app = library().await;
    for sort in ["-relevance", "relevance"] {
        let r = app.list_resp("book", &[("sort", sort)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["sort"]
        );
    }
    let r = app.list_resp("author", &[("q", "anything")]).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["q"]
    );
    assert_eq!(
        r.body["error"]["details"][0]["reason"],
        json!("model author has no searchable fields to search")
    );
    // A cursor of one search does not resume another.
    for i in 0..3 {
        app.create_ok("book", &json!({"name": "x", "title": format!("rust {i}")}))
            .await;
    }
    let first = app
        .list_resp(
            "book",
            &[("q", "rust"), ("sort", "-relevance"), ("limit", "1")],
        )
        .await;
    let cursor = first.body["page"]["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let r = app
        .list_resp(
            "book",
            &[
                ("q", "go"),
                ("sort", "-relevance"),
                ("limit", "1"),
                ("cursor", &cursor),
            ],
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["cursor"]
    );
}

#[tokio::test]
async fn hostile_q_answers_a_page_or_a_400_naming_q() {
    let app = library().await;
    app.create_ok("book", &json!({"name": "x", "title": "NEAR the OR gate"}))
        .await;
    let long = "a".repeat(257);
    let many = vec!["w"; 17].join(" ");
    let refused = [
        "",
        "   ",
        "\"",
        "*",
        "()",
        "\0",
        long.as_str(),
        many.as_str(),
    ];
    for q in refused {
        let r = app.list_resp("book", &[("q", q)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["q"],
            "q {q:?}"
        );
    }
    let r = app.list_resp("book", &[("q", "a"), ("q", "b")]).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["q"]
    );
    let answered = [
        "near\0gate",
        "NEAR(gate, 2)",
        "title:near",
        "near OR gate",
        "\"near\" -gate",
        "near*",
        "'; DROP TABLE book; --",
        "{title}: near",
        "日本語 near",
        "\u{202e}near\u{200b}",
        "near) AND (1=1",
    ];
    for q in answered {
        let r = app
            .list_resp("book", &[("q", q), ("sort", "-relevance")])
            .await;
        assert_eq!(r.status, StatusCode::OK, "q {q:?}: {}", r.body);
    }
    let r = app.list_resp("book", &[("q", "near gate")]).await;
    assert_eq!(r.data(StatusCode::OK).as_array().expect("a list").len(), 1);
    // The raw query string: NUL and invalid percent-encoding.
    for raw in ["q=%00", "q=%ff%fe", "q=%", "q=near%00gate"] {
        let r = app.list_raw("book", raw).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{raw}: {} {}",
            r.status,
            r.body
        );
    }
}

#[tokio::test]
async fn soft_deleted_records_are_not_found_and_edits_show_at_once() {
    let app = library().await;
    let rec = app
        .create_ok("book", &json!({"name": "x", "title": "Ephemeral"}))
        .await;
    let id = id_of(&rec);
    assert_eq!(
        app.ids("book", &[("q", "ephemeral")]).await,
        std::slice::from_ref(&id)
    );
    let r = app
        .patch_resp("book", &id, &json!({"title": "Permanent"}), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(app.ids("book", &[("q", "ephemeral")]).await.is_empty());
    assert_eq!(
        app.ids("book", &[("q", "permanent")]).await,
        std::slice::from_ref(&id)
    );
    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/book/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert!(app.ids("book", &[("q", "permanent")]).await.is_empty());
    // As an admin may: asking for deleted records by status.
    assert_eq!(
        app.ids("book", &[("q", "permanent"), ("status", "deleted")])
            .await,
        [id]
    );
}

#[tokio::test]
async fn own_scope_users_find_only_their_records_and_guests_are_refused() {
    let app = TestApp::spawn_with(decls(json!([{
        "name": "diary",
        "user_read": "own",
        "guest_read": false,
        "fields": [{ "name": "entry", "type": "text", "searchable": true }]
    }])))
    .await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    let mine = app
        .create_as("diary", &a, &json!({"name": "a", "entry": "a secret plan"}))
        .await;
    app.create_as(
        "diary",
        &b,
        &json!({"name": "b", "entry": "another secret plan"}),
    )
    .await;
    let search = |token: Option<String>, q: &'static str| {
        let app = &app;
        async move {
            let qs = serde_urlencoded::to_string([("q", q), ("sort", "-relevance")]).expect("qs");
            app.call_as(
                Method::GET,
                &format!("/api/v1/diary?{qs}"),
                token.as_deref(),
                None,
            )
            .await
        }
    };
    let r = search(Some(a.clone()), "secret plan").await;
    let found: Vec<String> = r
        .data(StatusCode::OK)
        .as_array()
        .expect("list")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(found, [id_of(&mine)]);
    let r = search(Some(a.clone()), "another").await;
    assert!(
        r.data(StatusCode::OK).as_array().expect("list").is_empty(),
        "b's words found"
    );
    let r = search(None, "secret").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = search(Some("not-a-token".to_owned()), "secret").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = search(Some(app.admin_token.clone()), "secret").await;
    assert_eq!(r.data(StatusCode::OK).as_array().expect("list").len(), 2);
}

#[tokio::test]
async fn words_of_an_admin_only_field_find_nothing() {
    let app = library().await;
    app.create_ok(
        "book",
        &json!({"name": "x", "title": "Public title", "note": "confidential zanzibar"}),
    )
    .await;
    let (_, user) = app.user("u@example.com").await;
    for token in [Some(user.as_str()), Some(app.admin_token.as_str()), None] {
        let r = app
            .call_as(Method::GET, "/api/v1/book?q=zanzibar", token, None)
            .await;
        let data: &Value = r.data(StatusCode::OK);
        assert!(data.as_array().expect("list").is_empty(), "{data}");
    }
    let r = app
        .call_as(Method::GET, "/api/v1/book?q=public", Some(&user), None)
        .await;
    let data = r.data(StatusCode::OK).as_array().expect("list").clone();
    assert_eq!(data.len(), 1);
    assert!(
        data[0].get("note").is_none(),
        "an admin_only field shown: {:?}",
        data[0]
    );
}

#[tokio::test]
async fn the_change_feed_refuses_q() {
    let app = library().await;
    let r = app
        .call_as(
            Method::GET,
            "/api/v1/book/events?q=rust",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["q"]
    );
}

#[tokio::test]
async fn the_document_offers_q_and_relevance_where_fields_are_searchable() {
    let app = library().await;
    let r = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json", None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body.clone();
    let params = |model: &str| -> Vec<Value> {
        doc["paths"][format!("/api/v1/{model}")]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .clone()
    };
    let named = |ps: &[Value], name: &str| ps.iter().find(|p| p["name"] == name).cloned();
    let book = params("book");
    let q = named(&book, "q").expect("q on book");
    assert_eq!(q["schema"]["maxLength"], json!(256));
    assert!(
        q["description"]
            .as_str()
            .is_some_and(|d| d.contains("title, blurb"))
    );
    let sort = named(&book, "sort").expect("sort");
    for key in ["-relevance", "relevance"] {
        assert!(
            sort["schema"]["enum"]
                .as_array()
                .is_some_and(|e| e.contains(&json!(key))),
            "{sort}"
        );
    }
    let author = params("author");
    assert!(named(&author, "q").is_none());
    assert!(
        !named(&author, "sort")
            .expect("sort")
            .to_string()
            .contains("relevance")
    );
}

//! `expand=`: a reference replaced by the record it names, as `GET` gives that record to
//! the caller, one and two levels deep, on lists and reads; one store read per referenced
//! model and level whatever the page size; a reference the caller may not read stays an id;
//! paths that are not visible references, or deeper than two, are refused.

use crate::helpers::{Resp, TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `publisher` ← `author` (an `admin_only` secret) ← `book` (`author`, `editor`); `vault`
/// refuses guests, `diary` shows users their own, and `memo` references both.
async fn app() -> TestApp {
    TestApp::spawn_with(decls(json!([
        {"name": "publisher", "fields": [{"name": "country", "type": "string"}]},
        {"name": "author", "fields": [
            {"name": "publisher", "type": "reference", "model": "publisher"},
            {"name": "secret", "type": "string", "admin_only": true},
            {"name": "mentor", "type": "reference", "model": "author", "admin_only": true},
        ]},
        {"name": "book", "fields": [
            {"name": "title", "type": "string"},
            {"name": "author", "type": "reference", "model": "author"},
            {"name": "editor", "type": "reference", "model": "author"},
        ]},
        {"name": "vault", "guest_read": false},
        {"name": "diary", "user_read": "own"},
        {"name": "memo", "fields": [
            {"name": "vault", "type": "reference", "model": "vault"},
            {"name": "diary", "type": "reference", "model": "diary"},
        ]},
    ])))
    .await
}

async fn get_as(app: &TestApp, credential: Option<&str>, path: &str) -> Resp {
    app.call_as(Method::GET, path, credential, None).await
}

/// A publisher, an author at it, and a book by that author: their ids.
async fn chain(app: &TestApp) -> (String, String, String) {
    let p = id_of(
        &app.create_ok("publisher", &json!({"name": "p", "country": "NO"}))
            .await,
    );
    let a = app
        .create_ok(
            "author",
            &json!({"name": "a", "publisher": p, "secret": "s"}),
        )
        .await;
    let a = id_of(&a);
    let b = id_of(
        &app.create_ok("book", &json!({"name": "b", "title": "t", "author": a}))
            .await,
    );
    (p, a, b)
}

#[tokio::test]
async fn expand_inlines_one_level_and_two_as_get_shows_them() {
    let app = app().await;
    let (p, a, b) = chain(&app).await;
    let (_, user) = app.user("u@example.com").await;
    let author_as_user = get_as(&app, Some(&user), &format!("/api/v1/author/{a}")).await;
    let author_as_user = author_as_user.data(StatusCode::OK).clone();
    assert!(author_as_user.get("secret").is_none());
    let list = get_as(&app, Some(&user), "/api/v1/book?expand=author").await;
    let book = &list.data(StatusCode::OK)[0];
    assert_eq!(
        book["author"], author_as_user,
        "the record as GET gives it to the caller"
    );
    assert_eq!(book["author"]["publisher"], json!(p), "one level only");
    assert_eq!(book["editor"], Value::Null, "an empty reference stays null");
    let read = get_as(
        &app,
        Some(&user),
        &format!("/api/v1/book/{b}?expand=author.publisher"),
    )
    .await;
    let book = read.data(StatusCode::OK);
    assert_eq!(book["author"]["id"], json!(a));
    assert_eq!(book["author"]["publisher"]["id"], json!(p));
    assert_eq!(book["author"]["publisher"]["country"], json!("NO"));
    // Admins see the admin_only fields of what they expand.
    let admin = get_as(
        &app,
        Some(&app.admin_token),
        &format!("/api/v1/book/{b}?expand=author"),
    )
    .await;
    assert_eq!(admin.data(StatusCode::OK)["author"]["secret"], json!("s"));
    // `fields` and `expand` together. An expanded read has no validators: the book's ETag
    // does not follow its author, so a cache must not revalidate it into a stale author.
    let plain = app.get_resp("book", &b, None).await;
    let r = app
        .get_path(&format!("/api/v1/book/{b}?fields=id,author&expand=author"))
        .await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data.as_object().map(|o| o.len()), Some(2));
    assert_eq!(data["author"]["id"], json!(a));
    assert_eq!(r.header("etag"), None);
    assert_eq!(r.header("last-modified"), None);
    let etag = plain.header("etag").expect("an ETag").to_owned();
    let r = app
        .send(
            app.request(Method::GET, &format!("/api/v1/book/{b}?expand=author"))
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "an expanded read is never 304");
    // Several paths, duplicates and a shared prefix.
    let r = app
        .list_resp(
            "book",
            &[("expand", "editor,author,author.publisher,author")],
        )
        .await;
    assert_eq!(
        r.data(StatusCode::OK)[0]["author"]["publisher"]["id"],
        json!(p)
    );
}

/// The count of `get_many` store calls so far, from `/metrics`.
async fn get_many_calls(app: &TestApp) -> f64 {
    let r = app
        .send(app.request_as(Method::GET, "/metrics", None))
        .await;
    let text = String::from_utf8_lossy(&r.raw).into_owned();
    text.lines()
        .find(|l| l.contains("store_operation_duration_seconds_count{operation=\"get_many\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no get_many count in {text}"))
}

#[tokio::test]
async fn expand_reads_once_per_model_and_level_whatever_the_page() {
    let app = app().await;
    let mut publishers = Vec::new();
    for i in 0..2 {
        publishers.push(id_of(
            &app.create_ok("publisher", &json!({"name": format!("p{i}")}))
                .await,
        ));
    }
    let mut authors = Vec::new();
    for i in 0..5 {
        let body = json!({"name": format!("a{i}"), "publisher": publishers[i % 2]});
        authors.push(id_of(&app.create_ok("author", &body).await));
    }
    for i in 0..30 {
        let body = json!({"name": format!("b{i}"), "author": authors[i % 5], "editor": authors[(i + 1) % 5]});
        app.create_ok("book", &body).await;
    }
    let before = get_many_calls(&app).await;
    let r = app
        .list_resp(
            "book",
            &[("limit", "30"), ("expand", "author.publisher,editor")],
        )
        .await;
    let data = r.data(StatusCode::OK).as_array().expect("a page").clone();
    assert_eq!(data.len(), 30);
    for book in &data {
        assert!(book["author"]["publisher"]["id"].is_string(), "{book}");
        assert!(book["editor"]["id"].is_string(), "{book}");
    }
    // Level one: `author` and `editor` both name authors, read at once; level two: publishers.
    assert_eq!(get_many_calls(&app).await - before, 2.0);
    let before = get_many_calls(&app).await;
    app.list_resp("book", &[("limit", "30")]).await;
    assert_eq!(
        get_many_calls(&app).await - before,
        0.0,
        "no expand, no read"
    );
}

#[tokio::test]
async fn references_the_caller_may_not_read_stay_ids() {
    let app = app().await;
    let (_, ann) = app.user("ann@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let vault = id_of(&app.create_ok("vault", &json!({"name": "v"})).await);
    let diary = id_of(&app.create_as("diary", &ann, &json!({"name": "dear"})).await);
    let memo = json!({"name": "m", "vault": vault, "diary": diary});
    let memo = id_of(&app.create_ok("memo", &memo).await);
    let path = format!("/api/v1/memo/{memo}?expand=vault,diary");
    // A guest may not read vaults (nor diaries, whose users read only their own).
    let guest = get_as(&app, None, &path).await;
    let data = guest.data(StatusCode::OK);
    assert_eq!(
        (data["vault"].clone(), data["diary"].clone()),
        (json!(vault), json!(diary))
    );
    // Bob may read vaults but not Ann's diary; Ann both; the list answers as the read does.
    for (who, diary_expanded) in [(&bob, false), (&ann, true)] {
        for p in [path.clone(), "/api/v1/memo?expand=vault,diary".to_owned()] {
            let r = get_as(&app, Some(who), &p).await;
            let data = r.data(StatusCode::OK);
            let data = if data.is_array() { &data[0] } else { data };
            assert_eq!(data["vault"]["id"], json!(vault), "{p}");
            assert_eq!(data["diary"].is_object(), diary_expanded, "{p}: {data}");
        }
    }
    // A soft-deleted target is expanded as GET by id still shows it, deleted.
    app.delete("vault", &vault).await;
    let r = get_as(&app, Some(&bob), &path).await;
    let shown = get_as(&app, Some(&bob), &format!("/api/v1/vault/{vault}")).await;
    assert_eq!(
        r.data(StatusCode::OK)["vault"],
        shown.data(StatusCode::OK).clone()
    );
    assert_eq!(r.data(StatusCode::OK)["vault"]["status"], json!("deleted"));
}

#[tokio::test]
async fn paths_that_are_not_visible_references_or_too_deep_are_refused() {
    let app = app().await;
    let (_, _, b) = chain(&app).await;
    let (_, user) = app.user("u@example.com").await;
    for (query, names) in [
        ("expand=title", "title"),
        ("expand=nope", "nope"),
        ("expand=author.nope", "nope"),
        ("expand=author.publisher.country", "at most 2"),
        ("expand=author.mentor", "mentor"),
        ("expand=id", "id"),
        ("fields=id&expand=author", "not among"),
    ] {
        for path in [
            format!("/api/v1/book?{query}"),
            format!("/api/v1/book/{b}?{query}"),
        ] {
            let r = get_as(&app, Some(&user), &path).await;
            assert_eq!(
                assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
                ["expand"],
                "{path}"
            );
            let reason = r.body["error"]["details"][0]["reason"]
                .as_str()
                .unwrap_or_default();
            assert!(reason.contains(names), "{path}: {reason}");
        }
    }
    // Hidden to users, a field of admins: `author.mentor` is an admin's to expand.
    let r = get_as(
        &app,
        Some(&app.admin_token),
        "/api/v1/book?expand=author.mentor",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for bad in [
        "expand=",
        "expand=author,",
        "expand=author..publisher",
        "expand=author&expand=editor",
    ] {
        let r = app.list_raw("book", bad).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["expand"],
            "{bad}"
        );
    }
    let r = app
        .list_raw("book", &format!("expand={}", "a.".repeat(5_000)))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert!(
        r.body.to_string().len() < 2_000,
        "the path is not echoed whole"
    );
    // A guest on a model that refuses guests is refused before any path is looked at.
    let r = get_as(&app, None, "/api/v1/vault?expand=nope").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

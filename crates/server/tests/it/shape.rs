//! `count=true` (`page.total`) and `fields=` on lists and reads: totals follow the filters,
//! the status default and the owner scope, never the cursor or limit; a projection keeps
//! only the fields named, each one the caller can see; neither changes a read's `ETag` or
//! what a cursor resumes, and the change feed refuses both.

use crate::helpers::{Resp, TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `book` (with an `admin_only` note), and `diary`, whose users read only their own.
async fn app() -> TestApp {
    TestApp::spawn_with(decls(json!([
        {"name": "book", "fields": [
            {"name": "title", "type": "string", "indexed": true},
            {"name": "pages", "type": "integer"},
            {"name": "note", "type": "string", "admin_only": true},
        ]},
        {"name": "diary", "user_read": "own", "fields": [
            {"name": "mood", "type": "string"},
        ]},
    ])))
    .await
}

async fn list_as(app: &TestApp, credential: Option<&str>, path: &str) -> Resp {
    app.call_as(Method::GET, path, credential, None).await
}

/// The `details[].reason`s of a refusal, each with its field.
fn reasons(r: &Resp) -> Vec<(String, String)> {
    r.body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (s("field"), s("reason"))
        })
        .collect()
}

fn keys(record: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = record
        .as_object()
        .expect("a record")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn count_totals_the_filters_and_status_whatever_the_limit_and_cursor() {
    let app = app().await;
    for i in 0..7 {
        let title = if i < 3 {
            format!("rust {i}")
        } else {
            format!("go {i}")
        };
        app.create_ok(
            "book",
            &json!({"name": format!("b{i}"), "title": title, "pages": i}),
        )
        .await;
    }
    let gone = app.create_ok("book", &json!({"name": "gone"})).await;
    app.delete("book", &id_of(&gone)).await;
    let total = |r: &Resp| r.body["page"]["total"].clone();
    let r = app
        .list_resp("book", &[("count", "true"), ("limit", "2")])
        .await;
    assert_eq!(r.data(StatusCode::OK).as_array().map(Vec::len), Some(2));
    assert_eq!(total(&r), json!(7), "deleted left out, limit ignored");
    let cursor = r.body["page"]["next_cursor"]
        .as_str()
        .expect("more")
        .to_owned();
    // The cursor resumes the same list with or without `count`, and the total stays whole.
    let next = app
        .list_resp(
            "book",
            &[("count", "true"), ("limit", "2"), ("cursor", &cursor)],
        )
        .await;
    assert_eq!(total(&next), json!(7));
    let plain = app
        .list_resp("book", &[("limit", "2"), ("cursor", &cursor)])
        .await;
    assert_eq!(plain.data(StatusCode::OK), next.data(StatusCode::OK));
    assert!(
        plain.body["page"].get("total").is_none(),
        "no count, no total"
    );
    for (pairs, want) in [
        (&[("title[like]", "rust*")][..], 3),
        (&[("pages[gte]", "5")][..], 2),
        (&[("status", "deleted")][..], 1),
        (&[("title", "none")][..], 0),
    ] {
        let mut q = pairs.to_vec();
        q.push(("count", "true"));
        assert_eq!(
            total(&app.list_resp("book", &q).await),
            json!(want),
            "{pairs:?}"
        );
    }
    let off = app.list_resp("book", &[("count", "false")]).await;
    assert_eq!(off.status, StatusCode::OK);
    assert!(off.body["page"].get("total").is_none());
    for bad in ["count=yes", "count=", "count=TRUE", "count=true&count=true"] {
        let r = app.list_raw("book", bad).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["count"],
            "{bad}"
        );
    }
}

#[tokio::test]
async fn count_counts_only_what_the_caller_may_list() {
    let app = app().await;
    let (_, ann) = app.user("ann@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    for i in 0..3 {
        app.create_as(
            "diary",
            &ann,
            &json!({"name": format!("a{i}"), "mood": "ok"}),
        )
        .await;
    }
    for i in 0..2 {
        app.create_as(
            "diary",
            &bob,
            &json!({"name": format!("b{i}"), "mood": "ok"}),
        )
        .await;
    }
    let total = |r: Resp| r.body["page"]["total"].clone();
    let path = "/api/v1/diary?count=true&limit=1";
    assert_eq!(total(list_as(&app, Some(&ann), path).await), json!(3));
    assert_eq!(total(list_as(&app, Some(&bob), path).await), json!(2));
    assert_eq!(
        total(list_as(&app, Some(&app.admin_token), path).await),
        json!(5)
    );
    // Filtering on another owner counts nothing: the scope applies first.
    let theirs = "/api/v1/diary?count=true&name=b0";
    assert_eq!(total(list_as(&app, Some(&ann), theirs).await), json!(0));
    // A guest may not list at all; a bad credential is a 401, never a guest's count.
    assert_error(
        &list_as(&app, None, path).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &list_as(&app, Some("not-a-token"), path).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn fields_keep_only_the_named_keys_of_lists_and_reads() {
    let app = app().await;
    let book = app
        .create_ok(
            "book",
            &json!({"name": "b", "title": "t", "pages": 3, "note": "n"}),
        )
        .await;
    let id = id_of(&book);
    let r = app.list_resp("book", &[("fields", "title,id,title")]).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(keys(&data[0]), ["id", "title"], "duplicates kept once");
    assert_eq!(data[0]["title"], json!("t"));
    let r = app
        .get_path(&format!("/api/v1/book/{id}?fields=version,note,owner_id"))
        .await;
    assert_eq!(
        keys(r.data(StatusCode::OK)),
        ["note", "owner_id", "version"]
    );
    // The ETag stays the record's, and a copy the client holds is still current.
    let whole = app.get_resp("book", &id, None).await;
    assert_eq!(r.header("etag"), whole.header("etag"));
    let etag = whole.header("etag").expect("an ETag").to_owned();
    let again = app
        .send(
            app.request(Method::GET, &format!("/api/v1/book/{id}?fields=name"))
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn fields_refuse_unknown_hidden_and_empty_names() {
    let app = app().await;
    let book = app
        .create_ok("book", &json!({"name": "b", "note": "secret"}))
        .await;
    let id = id_of(&book);
    let (_, user) = app.user("u@example.com").await;
    for path in [
        "/api/v1/book?fields=id,nope".to_owned(),
        format!("/api/v1/book/{id}?fields=id,nope"),
    ] {
        let r = list_as(&app, Some(&user), &path).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["fields"]
        );
        assert!(reasons(&r)[0].1.contains("`nope`"), "{:?}", reasons(&r));
    }
    // A field the caller cannot see is as unknown as a missing one, on lists and reads.
    for path in [
        "/api/v1/book?fields=note".to_owned(),
        format!("/api/v1/book/{id}?fields=note"),
    ] {
        let hidden = list_as(&app, Some(&user), &path).await;
        assert_error(&hidden, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(
            reasons(&hidden),
            [("fields".to_owned(), "unknown field `note`".to_owned())]
        );
        let admin = list_as(&app, Some(&app.admin_token), &path).await;
        assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
        assert!(admin.body.to_string().contains("secret"));
    }
    for bad in [
        "fields=",
        "fields=id,",
        "fields=,id",
        "fields=id&fields=name",
    ] {
        let r = app.list_raw("book", bad).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["fields"],
            "{bad}"
        );
    }
    let long = format!("fields={}", "x".repeat(10_000));
    let r = app.list_raw("book", &long).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert!(
        r.body.to_string().len() < 2_000,
        "the name is not echoed whole"
    );
    let many = format!("fields={}", vec!["id"; 65].join(","));
    assert_error(
        &app.list_raw("book", &many).await,
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
    );
    // Every bad parameter in one answer: filters and shape alike.
    let r = app
        .list_raw("book", "pages=x&fields=nope&count=maybe")
        .await;
    let mut fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    fields.sort();
    assert_eq!(fields, ["count", "fields", "pages"]);
}

#[tokio::test]
async fn the_change_feed_refuses_count_fields_and_expand() {
    let app = app().await;
    for (query, field) in [
        ("count=true", "count"),
        ("fields=id", "fields"),
        ("expand=x", "expand"),
    ] {
        let r = app.get_path(&format!("/api/v1/book/events?{query}")).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field]
        );
        let r = app
            .get_path(&format!("/api/v1/events?models=book&{query}"))
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field]
        );
    }
}

#[tokio::test]
async fn the_document_describes_count_fields_expand_and_the_total() {
    let app = app().await;
    let doc = app.get_path("/api/v1/openapi.json").await.body;
    let names = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    for p in ["count", "fields", "expand"] {
        assert!(names("/api/v1/book").iter().any(|n| n == p), "list: {p}");
    }
    for p in ["fields", "expand"] {
        assert!(
            names("/api/v1/book/{id}").iter().any(|n| n == p),
            "read: {p}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Page"]["properties"]["total"]["type"],
        json!("integer")
    );
    assert!(
        schemas["Shaped.book"]["required"].is_null(),
        "fields may leave any key out"
    );
    assert!(schemas["Record.book"]["required"].is_array());
}

//! Per-model policy overrides: `user_read = "own"` (by id, by list filter, by guessing),
//! `hide_forbidden = false`, `guest_read = false`, and `admin_only` fields.

use crate::helpers::{MISSING_ID, Resp, TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A model whose users read only their own records, with an indexed field to filter on.
async fn diary(hide_forbidden: bool) -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "diary",
        "user_read": "own",
        "hide_forbidden": hide_forbidden,
        "fields": [{"name": "mood", "type": "string", "indexed": true}]
    }])))
    .await
}

fn at(id: &str) -> String {
    format!("/api/v1/diary/{id}")
}

/// The error body without its request id.
fn body_without_id(r: &Resp) -> Value {
    let mut b = r.body.clone();
    if let Some(e) = b["error"].as_object_mut() {
        e.remove("request_id");
    }
    b
}

async fn ids_as(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let r = app
        .call_as(
            Method::GET,
            &format!("/api/v1/diary?{query}"),
            Some(token),
            None,
        )
        .await;
    let data = r.data(StatusCode::OK);
    data.as_array().expect("a list").iter().map(id_of).collect()
}

#[tokio::test]
async fn own_read_hides_others_records_by_id_as_if_they_did_not_exist() {
    let app = diary(true).await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    let rec = app
        .create_as("diary", &a, &json!({"name": "secret", "mood": "sad"}))
        .await;
    let id = id_of(&rec);
    let mine = app.call_as(Method::GET, &at(&id), Some(&a), None).await;
    assert_eq!(mine.data(StatusCode::OK)["name"], json!("secret"));
    let theirs = app.call_as(Method::GET, &at(&id), Some(&b), None).await;
    assert_error(&theirs, StatusCode::NOT_FOUND, "NOT_FOUND");
    let missing = app
        .call_as(Method::GET, &at(MISSING_ID), Some(&b), None)
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        body_without_id(&theirs),
        body_without_id(&missing),
        "existence leaks"
    );
    let writes: [(Method, String, Option<Value>); 5] = [
        (Method::PUT, at(&id), Some(json!({"name": "x"}))),
        (Method::PATCH, at(&id), Some(json!({"mood": "x"}))),
        (Method::DELETE, at(&id), None),
        (Method::DELETE, format!("{}?purge=true", at(&id)), None),
        (Method::POST, format!("{}/restore", at(&id)), None),
    ];
    for (method, target, body) in writes {
        let r = app
            .call_as(method.clone(), &target, Some(&b), body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {target}: {}",
            r.body
        );
        assert_eq!(
            body_without_id(&r),
            body_without_id(&missing),
            "{method} {target}"
        );
    }
    assert_eq!(app.get_ok("diary", &id).await, rec);
    // Guessing ids next to a known one finds nothing either.
    let own = app.create_as("diary", &b, &json!({"name": "b's"})).await;
    let known = id_of(&own);
    for guess in [id.clone(), format!("{}0000", &known[..known.len() - 4])] {
        let r = app.call_as(Method::GET, &at(&guess), Some(&b), None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn own_read_lists_only_the_callers_records_whatever_the_filter() {
    let app = diary(true).await;
    let (a_user, a) = app.user("a@example.com").await;
    let (b_user, b) = app.user("b@example.com").await;
    let mut a_ids = Vec::new();
    for i in 0..3 {
        let r = app
            .create_as("diary", &a, &json!({"name": format!("a{i}"), "mood": "x"}))
            .await;
        a_ids.push(id_of(&r));
    }
    let b_rec = app
        .create_as("diary", &b, &json!({"name": "b0", "mood": "x"}))
        .await;
    let b_id = id_of(&b_rec);
    let deleted = app
        .call_as(Method::DELETE, &at(&a_ids[2]), Some(&a), None)
        .await;
    deleted.data(StatusCode::OK);
    app.create_ok("diary", &json!({"name": "admin's", "mood": "x"}))
        .await;
    let (aid, bid) = (a_user.id.to_string(), b_user.id.to_string());
    // Each query, and whether B's own record matches it. Each also matches others' records
    // (the admin sees them), so only the policy keeps them from B.
    let queries = [
        (String::new(), true),
        (format!("id={}", a_ids[0]), false),
        (format!("id[in]={},{},{b_id}", a_ids[0], a_ids[1]), true),
        (format!("owner_id={aid}"), false),
        (format!("owner_id[ne]={bid}"), false),
        (format!("owner_id[in]={aid},{bid}"), true),
        ("name=a0".to_owned(), false),
        ("name[like]=a*".to_owned(), false),
        ("mood=x".to_owned(), true),
        ("status=deleted".to_owned(), false),
        ("status[in]=active,inactive,deleted".to_owned(), true),
        ("sort=mood".to_owned(), true),
        ("limit=1".to_owned(), true),
    ];
    for (q, own) in &queries {
        let everyone = ids_as(&app, &app.admin_token, q).await;
        assert!(
            everyone.iter().any(|id| *id != b_id),
            "with {q:?} the admin sees no one else's records: {everyone:?}"
        );
        let got = ids_as(&app, &b, q).await;
        let expected = if *own { vec![b_id.clone()] } else { Vec::new() };
        assert_eq!(got, expected, "B's list with {q:?}");
    }
    assert_eq!(ids_as(&app, &b, "").await, std::slice::from_ref(&b_id));
    assert_eq!(
        ids_as(&app, &b, &format!("owner_id[in]={aid},{bid}")).await,
        [b_id]
    );
    // Paging one at a time to the end still shows only the caller's own.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "the walk does not end: {seen:?}");
        let mut q = "limit=1".to_owned();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let r = app
            .call_as(Method::GET, &format!("/api/v1/diary?{q}"), Some(&a), None)
            .await;
        seen.extend(
            r.data(StatusCode::OK)
                .as_array()
                .expect("a list")
                .iter()
                .map(id_of),
        );
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // A's two live records, newest first; not the deleted one, nobody else's.
    assert_eq!(seen, [a_ids[1].clone(), a_ids[0].clone()]);
    assert_eq!(
        app.ids("diary", &[]).await.len(),
        4,
        "the admin sees every live record"
    );
    let guest = app.call_as(Method::GET, "/api/v1/diary", None, None).await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn without_hide_forbidden_others_records_are_403() {
    let app = diary(false).await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    let rec = app.create_as("diary", &a, &json!({"name": "secret"})).await;
    let id = id_of(&rec);
    let read = app.call_as(Method::GET, &at(&id), Some(&b), None).await;
    assert_error(&read, StatusCode::FORBIDDEN, "FORBIDDEN");
    let write = app
        .call_as(
            Method::PATCH,
            &at(&id),
            Some(&b),
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_error(&write, StatusCode::FORBIDDEN, "FORBIDDEN");
    let missing = app
        .call_as(Method::GET, &at(MISSING_ID), Some(&b), None)
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.get_ok("diary", &id).await, rec);
}

#[tokio::test]
async fn guest_read_false_refuses_guests_and_does_not_reveal_ids() {
    let app = TestApp::spawn_with(decls(json!([{"name": "ledger", "guest_read": false}]))).await;
    let (_, u) = app.user("u@example.com").await;
    let rec = app.create_ok("ledger", &json!({"name": "entry"})).await;
    let id = id_of(&rec);
    let list = app.call_as(Method::GET, "/api/v1/ledger", None, None).await;
    assert_error(&list, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let one = app
        .call_as(Method::GET, &format!("/api/v1/ledger/{id}"), None, None)
        .await;
    assert_error(&one, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // A guest may not learn which ids exist: a missing id answers like an existing one.
    let missing = app
        .call_as(
            Method::GET,
            &format!("/api/v1/ledger/{MISSING_ID}"),
            None,
            None,
        )
        .await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let users = app
        .call_as(Method::GET, &format!("/api/v1/ledger/{id}"), Some(&u), None)
        .await;
    assert_eq!(users.data(StatusCode::OK)["id"], json!(id));
}

/// A model with a field only admins see.
async fn accounts() -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "account",
        "fields": [
            {"name": "note", "type": "string"},
            {"name": "credit", "type": "integer", "admin_only": true, "indexed": true}
        ]
    }])))
    .await
}

#[tokio::test]
async fn admin_only_fields_do_not_exist_for_non_admins() {
    let app = accounts().await;
    let (_, u) = app.user("u@example.com").await;
    let rec = app
        .create_as("account", &u, &json!({"name": "mine", "note": "n"}))
        .await;
    assert!(rec.get("credit").is_none(), "{rec}");
    let id = id_of(&rec);
    let path = format!("/api/v1/account/{id}");
    let set = app.patch("account", &id, &json!({"credit": 7}), None).await;
    assert_eq!(set.1["data"]["credit"], json!(7));
    for cred in [Some(u.as_str()), None] {
        let one = app.call_as(Method::GET, &path, cred, None).await;
        assert!(
            one.data(StatusCode::OK).get("credit").is_none(),
            "{}",
            one.body
        );
        let list = app
            .call_as(Method::GET, "/api/v1/account", cred, None)
            .await;
        assert!(
            list.data(StatusCode::OK)[0].get("credit").is_none(),
            "{}",
            list.body
        );
        assert!(!String::from_utf8_lossy(&list.raw).contains("credit"));
    }
    let create = app
        .call_as(
            Method::POST,
            "/api/v1/account",
            Some(&u),
            Some(&json!({"name": "x", "credit": 1_000_000})),
        )
        .await;
    assert_eq!(
        assert_error(&create, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["credit"]
    );
    for method in [Method::PUT, Method::PATCH] {
        let r = app
            .call_as(
                method,
                &path,
                Some(&u),
                Some(&json!({"name": "mine", "credit": 1_000_000})),
            )
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["credit"]
        );
    }
    for q in [
        "credit=7",
        "credit[gt]=0",
        "credit[in]=7,8",
        "sort=credit",
        "sort=-credit",
    ] {
        let r = app
            .call_as(Method::GET, &format!("/api/v1/account?{q}"), Some(&u), None)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    // A non-admin's full replacement leaves the hidden value alone.
    let put = app
        .call_as(
            Method::PUT,
            &path,
            Some(&u),
            Some(&json!({"name": "renamed"})),
        )
        .await;
    assert!(put.data(StatusCode::OK).get("credit").is_none());
    let now = app.get_ok("account", &id).await;
    assert_eq!(now["name"], json!("renamed"));
    assert_eq!(now["note"], json!(null));
    assert_eq!(
        now["credit"],
        json!(7),
        "a user's PUT cleared an admin_only field"
    );
    // Admins filter and sort on it.
    let (status, body) = app
        .list("account", &[("credit", "7"), ("sort", "-credit")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], json!(id));
}

#[tokio::test]
async fn references_do_not_reveal_records_the_caller_cannot_read() {
    let app = TestApp::spawn_with(decls(json!([
        {"name": "diary", "user_read": "own"},
        {"name": "link", "fields": [{"name": "to", "type": "reference", "model": "diary"}]}
    ])))
    .await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    let hidden = app
        .create_as("diary", &a, &json!({"name": "private"}))
        .await;
    let link = |to: &str| json!({"name": "probe", "to": to});
    let missing = app
        .call_as(
            Method::POST,
            "/api/v1/link",
            Some(&b),
            Some(&link(MISSING_ID)),
        )
        .await;
    assert_eq!(
        assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["to"]
    );
    // B may not read A's diary entry, so linking to it must answer as for a missing one;
    // anything else is an oracle for which hidden ids exist.
    let probe = app
        .call_as(
            Method::POST,
            "/api/v1/link",
            Some(&b),
            Some(&link(&id_of(&hidden))),
        )
        .await;
    assert_eq!(
        body_without_id(&probe),
        body_without_id(&missing),
        "a reference to a hidden record answered differently from a missing one"
    );
    // A links to their own entry freely.
    app.create_as("link", &a, &link(&id_of(&hidden))).await;
}

#[tokio::test]
async fn a_value_unique_per_owner_is_no_oracle_for_other_owners_records() {
    let app = TestApp::spawn_with(decls(json!([{
        "name": "order",
        "user_read": "own",
        "fields": [{"name": "sku", "type": "string", "unique": "owner"}]
    }])))
    .await;
    let (_, alice) = app.user("alice@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let body = json!({"name": "o", "sku": "SKU-1"});
    app.create_as("order", &alice, &body).await;
    // Bob creates the sku Alice has: nothing tells him she has it.
    let his = app.create_as("order", &bob, &body).await;
    assert_eq!(his["sku"], json!("SKU-1"));
    // Alice twice is a conflict, said to be about her own records only.
    let again = app
        .call_as(Method::POST, "/api/v1/order", Some(&alice), Some(&body))
        .await;
    assert_eq!(
        assert_error(&again, StatusCode::CONFLICT, "CONFLICT"),
        ["sku"]
    );
    assert_eq!(
        again.body["error"]["details"][0]["reason"],
        json!("this owner already has a record with this value"),
        "{}",
        again.body
    );
    let (status, list) = app.list("order", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2), "{list}");
}

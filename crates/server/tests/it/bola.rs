//! Broken object-level authorization on the default policy: user B against user A's records,
//! and guests against everyone's. Every refusal is followed by a read-back (as the admin)
//! showing the record untouched.

use crate::helpers::{TestApp, assert_error, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server with users A and B, and one record owned by A. Returns the app, A's and B's
/// tokens and A's record.
async fn setup() -> (TestApp, String, String, Value) {
    let app = TestApp::spawn().await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    let record = app.create_as("resource", &a, &json!({"name": "a's"})).await;
    (app, a, b, record)
}

fn path(record: &Value) -> String {
    format!("/api/v1/resource/{}", id_of(record))
}

/// Every write a caller could try on one record: method, path suffix and body.
fn writes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::PUT, "", Some(json!({"name": "stolen"}))),
        (Method::PATCH, "", Some(json!({"name": "stolen"}))),
        (Method::PATCH, "", Some(json!({"status": "inactive"}))),
        (Method::DELETE, "", None),
        (Method::DELETE, "?purge=true", None),
        (Method::POST, "/restore", None),
    ]
}

#[tokio::test]
async fn user_b_cannot_change_delete_purge_or_restore_as_record() {
    let (app, _, b, record) = setup().await;
    for (method, suffix, body) in writes() {
        let target = format!("{}{suffix}", path(&record));
        let r = app
            .call_as(method.clone(), &target, Some(&b), body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {target}: {}",
            r.body
        );
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    // Even naming the current version does not help.
    let r = app
        .send(
            app.request_as(Method::PATCH, &path(&record), Some(&b))
                .header("if-match", "\"1\"")
                .json(&json!({"name": "stolen"})),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, record);
    // Reading is allowed by the default policy.
    let read = app
        .call_as(Method::GET, &path(&record), Some(&b), None)
        .await;
    assert_eq!(read.data(StatusCode::OK)["name"], json!("a's"));
}

#[tokio::test]
async fn user_b_cannot_restore_or_purge_as_deleted_record() {
    let (app, a, b, record) = setup().await;
    let del = app
        .call_as(Method::DELETE, &path(&record), Some(&a), None)
        .await;
    assert_eq!(del.data(StatusCode::OK)["status"], json!("deleted"));
    let before = app.get_ok("resource", &id_of(&record)).await;
    for suffix in ["/restore", "?purge=true"] {
        let method = if suffix == "/restore" {
            Method::POST
        } else {
            Method::DELETE
        };
        let r = app
            .call_as(
                method,
                &format!("{}{suffix}", path(&record)),
                Some(&b),
                None,
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, before);
}

#[tokio::test]
async fn owners_update_and_delete_but_never_purge_or_restore() {
    let (app, a, _, record) = setup().await;
    let put = app
        .call_as(
            Method::PUT,
            &path(&record),
            Some(&a),
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert_eq!(put.data(StatusCode::OK)["version"], json!(2));
    let purge = app
        .call_as(
            Method::DELETE,
            &format!("{}?purge=true", path(&record)),
            Some(&a),
            None,
        )
        .await;
    assert_error(&purge, StatusCode::FORBIDDEN, "FORBIDDEN");
    let del = app
        .call_as(Method::DELETE, &path(&record), Some(&a), None)
        .await;
    assert_eq!(del.data(StatusCode::OK)["status"], json!("deleted"));
    let restore = app
        .call_as(
            Method::POST,
            &format!("{}/restore", path(&record)),
            Some(&a),
            None,
        )
        .await;
    assert_error(&restore, StatusCode::FORBIDDEN, "FORBIDDEN");
    let now = app.get_ok("resource", &id_of(&record)).await;
    assert_eq!(now["status"], json!("deleted"));
    assert_eq!(now["version"], json!(3));
    // The admin may do both.
    let restored = app.restore_resp("resource", &id_of(&record)).await;
    assert_eq!(restored.data(StatusCode::OK)["status"], json!("active"));
    let purged = app.purge_resp("resource", &id_of(&record)).await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("resource", &id_of(&record)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn users_cannot_touch_records_the_admin_owns() {
    let app = TestApp::spawn().await;
    let (_, b) = app.user("b@example.com").await;
    let record = app.create_ok("resource", &json!({"name": "admin's"})).await;
    for (method, suffix, body) in writes() {
        let target = format!("{}{suffix}", path(&record));
        let r = app.call_as(method, &target, Some(&b), body.as_ref()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, record);
}

#[tokio::test]
async fn guests_read_but_every_write_is_401() {
    let (app, _, _, record) = setup().await;
    let list = app
        .call_as(Method::GET, "/api/v1/resource", None, None)
        .await;
    assert_eq!(list.data(StatusCode::OK).as_array().map(Vec::len), Some(1));
    let one = app.call_as(Method::GET, &path(&record), None, None).await;
    assert_eq!(one.data(StatusCode::OK)["id"], record["id"]);
    let create = app
        .call_as(
            Method::POST,
            "/api/v1/resource",
            None,
            Some(&json!({"name": "g"})),
        )
        .await;
    assert_error(&create, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    for (method, suffix, body) in writes() {
        let target = format!("{}{suffix}", path(&record));
        let r = app
            .call_as(method.clone(), &target, None, body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {target}: {}",
            r.body
        );
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, record);
    assert_eq!(app.count_all("resource").await, 1, "nothing was created");
}

#[tokio::test]
async fn guest_writes_are_401_before_any_lookup_or_validation() {
    let (app, _, _, record) = setup().await;
    let missing = format!("/api/v1/resource/{}", crate::helpers::MISSING_ID);
    let attempts: [(Method, String, Option<Value>); 5] = [
        (Method::PUT, missing.clone(), Some(json!({"name": "x"}))),
        (Method::PATCH, missing.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, missing.clone(), None),
        (
            Method::PATCH,
            path(&record),
            Some(json!({"owner_id": null})),
        ),
        (
            Method::PUT,
            path(&record),
            Some(json!({"no_such_field": 1})),
        ),
    ];
    for (method, target, body) in attempts {
        let r = app
            .call_as(method.clone(), &target, None, body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "guest {method} {target}: {}",
            r.body
        );
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, record);
}

#[tokio::test]
async fn idempotency_keys_never_replay_another_users_record() {
    let (app, a, b, _) = setup().await;
    let body = json!({"name": "same body"});
    let send = |token: &str| {
        app.request_as(Method::POST, "/api/v1/resource", Some(token))
            .header("idempotency-key", "shared-key")
            .json(&body)
    };
    let first = app.send(send(&a)).await;
    let a_rec = first.data(StatusCode::CREATED).clone();
    let second = app.send(send(&b)).await;
    let b_rec = second.data(StatusCode::CREATED).clone();
    assert_ne!(b_rec["id"], a_rec["id"], "B was handed A's record");
    assert_ne!(b_rec["owner_id"], a_rec["owner_id"]);
    assert!(second.header("idempotent-replayed").is_none());
    // A's own retry still replays A's record.
    let again = app.send(send(&a)).await;
    assert_eq!(again.data(StatusCode::CREATED)["id"], a_rec["id"]);
}

#[tokio::test]
async fn the_caller_is_checked_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user("bea@example.com").await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "r"})).await);
    // A guest's write is a 401 whatever it sends: malformed JSON, no JSON at all.
    for (method, path) in [
        (Method::POST, "/api/v1/resource".to_owned()),
        (Method::PUT, format!("/api/v1/resource/{id}")),
        (Method::PATCH, format!("/api/v1/resource/{id}")),
    ] {
        for (ctype, body) in [("application/json", "{not json"), ("text/plain", "hello")] {
            let r = app
                .send(
                    app.request_as(method.clone(), &path, None)
                        .header("content-type", ctype)
                        .body(body),
                )
                .await;
            assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        }
    }
    // A user on the admin-only users API is a 403 before the body is looked at.
    let r = app
        .send(
            app.request_as(Method::POST, "/api/v1/users", Some(&user))
                .header("content-type", "text/plain")
                .body("x"),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.count_all("resource").await, 1, "nothing was written");
}

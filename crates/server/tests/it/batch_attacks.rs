//! Batch writes against the access policy and idempotency: each item is authorised as if
//! sent alone (a guest, another user's record, a record the caller may not read), and an
//! `Idempotency-Key` covers the whole batch. Every refusal is read back: nothing written.

use crate::batch::{all_books, batch_as, books, creates, everything};
use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_guest_gets_401_whatever_it_sends() {
    let app = books().await;
    for body in [
        json!({ "items": creates("g", 2) }),
        json!("junk"),
        json!({}),
    ] {
        let r = batch_as(&app, None, &body).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let r = app
        .send(
            app.request_as(Method::POST, "/api/v1/book/batch", Some("not-a-token"))
                .json(&json!({ "items": creates("g", 1) })),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert!(all_books(&app).await.is_empty());
}

#[tokio::test]
async fn a_users_batch_touching_another_users_record_is_403_and_writes_nothing() {
    let app = books().await;
    let (_, a) = app.user("a@example.com").await;
    let (b_user, b) = app.user("b@example.com").await;
    let mine = app
        .create_as("book", &b, &json!({"name": "b's", "title": "B"}))
        .await;
    let theirs = app
        .create_as("book", &a, &json!({"name": "a's", "title": "A"}))
        .await;
    let before = all_books(&app).await;
    for item in [
        json!({"op": "update", "id": id_of(&theirs), "data": {"name": "stolen"}}),
        json!({"op": "replace", "id": id_of(&theirs), "data": {"name": "stolen"}, "if_match": "\"1\""}),
        json!({"op": "delete", "id": id_of(&theirs)}),
    ] {
        let items = json!([
            {"op": "create", "data": {"name": "new", "title": "N"}},
            {"op": "update", "id": id_of(&mine), "data": {"price": 5}},
            item,
        ]);
        let r = batch_as(&app, Some(&b), &json!({ "items": items })).await;
        assert_eq!(
            assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN"),
            ["items[2]"]
        );
        assert_eq!(all_books(&app).await, before);
    }
    // Their own records, they may: created ones are theirs, and admin-only fields are
    // neither settable nor shown.
    let items = json!([
        {"op": "create", "data": {"name": "new", "title": "N"}},
        {"op": "update", "id": id_of(&mine), "data": {"price": 5}},
    ]);
    let r = batch_as(&app, Some(&b), &json!({ "items": items })).await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(data[0]["owner_id"], json!(b_user.id.to_string()));
    assert!(
        data[0].get("note").is_none() && data[1].get("note").is_none(),
        "{data}"
    );
    let sneaky = json!([{"op": "create", "data": {"name": "n2", "note": "admin only"}}]);
    let r = batch_as(&app, Some(&b), &json!({ "items": sneaky })).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["items[0].note"]
    );
}

/// A model whose users read only their own records.
async fn diary(hide_forbidden: bool) -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "diary",
        "user_read": "own",
        "hide_forbidden": hide_forbidden,
        "fields": [{"name": "mood", "type": "string"}]
    }])))
    .await
}

#[tokio::test]
async fn a_record_the_user_may_not_read_is_404_where_hidden_and_403_where_not() {
    for (hide, status, code) in [
        (true, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (false, StatusCode::FORBIDDEN, "FORBIDDEN"),
    ] {
        let app = diary(hide).await;
        let (_, a) = app.user("a@example.com").await;
        let (_, b) = app.user("b@example.com").await;
        let theirs = app.create_as("diary", &a, &json!({"name": "a's"})).await;
        let before = everything(&app, "diary").await;
        for item in [
            json!({"op": "update", "id": id_of(&theirs), "data": {"mood": "nosy"}}),
            json!({"op": "delete", "id": id_of(&theirs), "if_match": "\"9\""}),
        ] {
            let items = json!([{"op": "create", "data": {"name": "b's"}}, item]);
            let r = app
                .call_as(
                    Method::POST,
                    "/api/v1/diary/batch",
                    Some(&b),
                    Some(&json!({ "items": items })),
                )
                .await;
            assert_eq!(assert_error(&r, status, code), ["items[1]"], "hide {hide}");
            // The refusal says nothing of the record: not its version, not its state.
            assert!(!r.body.to_string().contains(&id_of(&theirs)));
            assert_eq!(everything(&app, "diary").await, before);
        }
    }
}

/// A batch with an `Idempotency-Key`, as `credential`.
async fn keyed(app: &TestApp, credential: &str, key: &str, body: &Value) -> crate::helpers::Resp {
    app.send(
        app.request_as(Method::POST, "/api/v1/book/batch", Some(credential))
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

#[tokio::test]
async fn an_idempotency_key_covers_the_whole_batch() {
    let app = books().await;
    let target = app
        .create_ok("book", &json!({"name": "t", "title": "T"}))
        .await;
    let body = json!({"items": [
        {"op": "create", "data": {"name": "one", "title": "One"}},
        {"op": "update", "id": id_of(&target), "data": {"price": 3}, "if_match": "\"1\""},
    ]});
    let token = app.admin_token.clone();
    let first = keyed(&app, &token, "k-1", &body).await;
    let written = first.data(StatusCode::OK).clone();
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same key and body: the same records, nothing written again (the update's stale
    // if_match would fail if it ran twice).
    let again = keyed(&app, &token, "k-1", &body).await;
    assert_eq!(again.data(StatusCode::OK), &written);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(all_books(&app).await.len(), 2);
    // Another body under the same key: 409, nothing written.
    let other = json!({ "items": creates("o", 1) });
    let r = keyed(&app, &token, "k-1", &other).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["Idempotency-Key"]
    );
    assert_eq!(all_books(&app).await.len(), 2);
    // A replay shows the records as they are now.
    app.call_as(
        Method::DELETE,
        &format!("/api/v1/book/{}", id_of(&written[0])),
        Some(&token),
        None,
    )
    .await;
    let now = keyed(&app, &token, "k-1", &body).await;
    assert_eq!(now.data(StatusCode::OK)[0]["status"], json!("deleted"));
    // A failed batch leaves its key unclaimed: fixed, the same key writes.
    let failing = json!({"items": [{"op": "create", "data": {"name": "x", "title": "One"}}]});
    let r = keyed(&app, &token, "k-2", &failing).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["items[0].title"]
    );
    let fixed = json!({"items": [{"op": "create", "data": {"name": "x", "title": "Two"}}]});
    keyed(&app, &token, "k-2", &fixed)
        .await
        .data(StatusCode::OK);
    // Keys are the caller's: another user's same key is a batch of its own.
    let (_, u) = app.user("u@example.com").await;
    let theirs = keyed(&app, &u, "k-1", &json!({ "items": creates("u", 1) })).await;
    assert_eq!(theirs.header("idempotent-replayed"), None);
    theirs.data(StatusCode::OK);
    assert_eq!(all_books(&app).await.len(), 4);
}

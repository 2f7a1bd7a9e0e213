//! `POST /api/v1/{model}/batch`: many writes in one transaction, all or nothing. The happy
//! path with its audit entries and changes, the item limits, and every refusal read back to
//! show nothing was written. Policy and idempotency: `batch_attacks`.

use crate::helpers::raw::RawConn;
use crate::helpers::{MISSING_ID, Resp, TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server with `book` (a unique title, a price that cannot go below 0, an admin-only
/// note).
pub(crate) async fn books() -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "book",
        "fields": [
            {"name": "title", "type": "string", "unique": true},
            {"name": "price", "type": "integer", "min": 0},
            {"name": "note", "type": "string", "admin_only": true}
        ]
    }])))
    .await
}

/// Sends a batch as `credential` (none: a guest).
pub(crate) async fn batch_as(app: &TestApp, credential: Option<&str>, body: &Value) -> Resp {
    app.call_as(Method::POST, "/api/v1/book/batch", credential, Some(body))
        .await
}

/// Sends a batch as the admin.
pub(crate) async fn batch(app: &TestApp, body: &Value) -> Resp {
    batch_as(app, Some(&app.admin_token), body).await
}

/// `n` create items titled `{prefix}{i}`.
pub(crate) fn creates(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"op": "create", "data": {"name": format!("{prefix}{i}"), "title": format!("{prefix}{i}"), "price": i}}))
        .collect()
}

/// Every book, deleted ones included, as the admin sees them.
pub(crate) async fn all_books(app: &TestApp) -> Vec<Value> {
    everything(app, "book").await
}

/// Every record of `model`, deleted ones included, as the admin sees them, by id.
pub(crate) async fn everything(app: &TestApp, model: &str) -> Vec<Value> {
    let mut all = app.list_all(model, &[]).await;
    all.extend(app.list_all(model, &[("status", "deleted")]).await);
    all.sort_by_key(id_of);
    all
}

#[tokio::test]
async fn a_mixed_batch_applies_every_item_in_order_with_its_audit_entry_and_change() {
    let app = books().await;
    let a = app
        .create_ok("book", &json!({"name": "a", "title": "A", "price": 1}))
        .await;
    let b = app
        .create_ok("book", &json!({"name": "b", "title": "B", "price": 2}))
        .await;
    let c = app
        .create_ok("book", &json!({"name": "c", "title": "C", "price": 3}))
        .await;
    let store = app.state.store();
    let audit_before = store.audit_list(0, 1000).await.expect("audit").len();
    let head = store.change_window().await.expect("window").head;
    let r = batch(
        &app,
        &json!({"items": [
            {"op": "create", "data": {"name": "d", "title": "D", "price": 4}},
            {"op": "update", "id": id_of(&a), "data": {"price": 10}, "if_match": "\"1\""},
            {"op": "replace", "id": id_of(&b), "data": {"name": "b2", "title": "B2"}},
            {"op": "delete", "id": id_of(&c), "if_match": "*"},
        ]}),
    )
    .await;
    let data = r.data(StatusCode::OK).as_array().expect("a list").clone();
    assert_eq!(data.len(), 4);
    assert_eq!(data[0]["title"], json!("D"));
    assert_eq!(data[0]["version"], json!(1));
    assert_eq!(data[0]["owner_id"], json!(app.admin_id));
    // Update is a PATCH: what it leaves out stays.
    assert_eq!(data[1]["price"], json!(10));
    assert_eq!(data[1]["title"], json!("A"));
    assert_eq!(data[1]["version"], json!(2));
    // Replace is a PUT: what it leaves out becomes null.
    assert_eq!(data[2]["title"], json!("B2"));
    assert_eq!(data[2]["price"], Value::Null);
    assert_eq!(data[3]["status"], json!("deleted"));
    // Each answer is the record as the read endpoint shows it now.
    for record in &data {
        assert_eq!(&app.get_ok("book", &id_of(record)).await, record);
    }
    // One audit entry and one change per item, in item order.
    let entries = store.audit_list(0, 1000).await.expect("audit");
    let actions: Vec<&str> = entries[audit_before..]
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "record.create",
            "record.update",
            "record.update",
            "record.delete"
        ]
    );
    let changes = store
        .changes_after(head, 100)
        .await
        .expect("changes")
        .changes;
    let ids: Vec<String> = changes.iter().map(|c| c.record.id.to_string()).collect();
    let expected: Vec<String> = data.iter().map(id_of).collect();
    assert_eq!(ids, expected);
    // The entries appended together still chain.
    let verdict = store.audit_verify().await.expect("verify");
    assert!(
        matches!(verdict, plinth_store::AuditVerdict::Intact { .. }),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_thousand_items_are_one_batch_and_one_more_is_refused() {
    let app = books().await;
    let r = batch(&app, &json!({ "items": creates("t", 1000) })).await;
    assert_eq!(r.data(StatusCode::OK).as_array().map(Vec::len), Some(1000));
    assert_eq!(all_books(&app).await.len(), 1000);
    let r = batch(&app, &json!({ "items": creates("u", 1001) })).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["items"]
    );
    let r = batch(&app, &json!({ "items": [] })).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["items"]
    );
    assert_eq!(all_books(&app).await.len(), 1000);
}

#[tokio::test]
async fn every_invalid_item_is_reported_at_once_under_its_path_and_nothing_is_written() {
    let app = books().await;
    let existing = app
        .create_ok("book", &json!({"name": "x", "title": "X"}))
        .await;
    let mut items = creates("v", 20);
    items[17]["data"]["price"] = json!(-1);
    items[3] = json!({"op": "upsert", "data": {}});
    items[4] = json!({"op": "update", "id": "not-a-uuid", "data": {"price": 1}});
    items[5] = json!({"op": "delete", "id": id_of(&existing), "if_match": "W/\"1\""});
    items[6] = json!({"op": "create", "data": {"name": "y", "id": MISSING_ID}});
    items[7] = json!({"op": "create", "data": {"name": "z"}, "extra": 1});
    items[8] = json!("create");
    items[9] = json!({"op": "update", "data": {"price": 1}});
    items[10] = json!({"op": "create", "data": [1]});
    let r = batch(&app, &json!({ "items": items })).await;
    let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    for expected in [
        "items[17].price",
        "items[3].op",
        "items[4].id",
        "items[5].if_match",
        "items[6].id",
        "items[7].extra",
        "items[8]",
        "items[9].id",
        "items[10].data",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} in {fields:?}"
        );
    }
    assert_eq!(all_books(&app).await, [existing]);
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_the_envelope() {
    let app = books().await;
    for (body, field) in [
        (json!([]), "body"),
        (json!({}), "items"),
        (json!({"items": {"op": "create"}}), "items"),
        (json!({"items": "all"}), "items"),
        (json!({"items": [], "more": 1}), "more"),
        (json!({"items": [{"op": 1, "data": {}}]}), "items[0].op"),
        (json!({"items": [{"op": null}]}), "items[0].op"),
        (json!({"items": [{"op": "delete", "id": 7}]}), "items[0].id"),
        (
            json!({"items": [{"op": "delete", "id": MISSING_ID, "if_match": 1}]}),
            "items[0].if_match",
        ),
    ] {
        let r = batch(&app, &body).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert!(fields.contains(&field.to_owned()), "{body}: {fields:?}");
    }
    let raw = app
        .send(
            app.request(Method::POST, "/api/v1/book/batch")
                .header("content-type", "application/json")
                .body("{\"items\": [}"),
        )
        .await;
    assert_eq!(
        assert_error(&raw, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["body"]
    );
    let text = app
        .send(
            app.request(Method::POST, "/api/v1/book/batch")
                .body("items"),
        )
        .await;
    assert_error(
        &text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let undeclared = app
        .call_as(
            Method::POST,
            "/api/v1/nothing/batch",
            Some(&app.admin_token),
            Some(&json!({"items": creates("n", 1)})),
        )
        .await;
    assert_error(&undeclared, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert!(all_books(&app).await.is_empty());
}

#[tokio::test]
async fn a_taken_unique_value_is_a_conflict_naming_the_item_and_nothing_is_written() {
    let app = books().await;
    let taken = app
        .create_ok("book", &json!({"name": "t", "title": "Taken"}))
        .await;
    let mut items = creates("w", 5);
    items[2]["data"]["title"] = json!("Taken");
    let r = batch(&app, &json!({ "items": items })).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["items[2].title"]
    );
    // Two items of one batch taking the same value conflict too.
    let mut items = creates("w", 5);
    items[4]["data"]["title"] = json!("w0");
    let r = batch(&app, &json!({ "items": items })).await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["items[4].title"]
    );
    assert_eq!(all_books(&app).await, [taken]);
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_a_deleted_or_missing_record_names_its_item() {
    let app = books().await;
    let a = app
        .create_ok("book", &json!({"name": "a", "title": "A"}))
        .await;
    let gone = app
        .create_ok("book", &json!({"name": "g", "title": "G"}))
        .await;
    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/book/{}", id_of(&gone)),
            Some(&app.admin_token),
            None,
        )
        .await;
    let gone = r.data(StatusCode::OK).clone();
    let before = all_books(&app).await;
    let first = creates("s", 2);
    let cases = [
        (
            json!({"op": "update", "id": id_of(&a), "data": {"price": 1}, "if_match": "\"2\""}),
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
        ),
        (
            json!({"op": "delete", "id": id_of(&a), "if_match": "\"7\""}),
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
        ),
        (
            json!({"op": "update", "id": id_of(&gone), "data": {"price": 1}}),
            StatusCode::CONFLICT,
            "CONFLICT",
        ),
        (
            json!({"op": "delete", "id": id_of(&gone)}),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            json!({"op": "update", "id": MISSING_ID, "data": {"price": 1}}),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (item, status, code) in cases {
        let items = json!([first[0], first[1], item]);
        let r = batch(&app, &json!({ "items": items })).await;
        assert_eq!(assert_error(&r, status, code), ["items[2]"], "{item}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("items[2]"))
        );
        assert_eq!(all_books(&app).await, before, "{item}");
    }
}

#[tokio::test]
async fn a_batch_body_has_its_own_limit() {
    let config = plinth_server::config::ServerConfig {
        body_limit: 4096,
        batch_body_limit: 64 * 1024,
        ..Default::default()
    };
    let app = TestApp::spawn_configured(
        decls(json!([{"name": "book", "fields": [{"name": "title", "type": "string"}]}])),
        config,
    )
    .await;
    // Over the single-write limit, within the batch's.
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"op": "create", "data": {"name": format!("{i:0>60}")}}))
        .collect();
    let r = batch(&app, &json!({ "items": items })).await;
    assert_eq!(r.data(StatusCode::OK).as_array().map(Vec::len), Some(100));
    // Over the batch's, whether the length is announced or not.
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "create", "data": {"name": format!("{i:0>80}")}}))
        .collect();
    let r = batch(&app, &json!({ "items": items })).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    // A chunked body (no Content-Length) is cut off at the batch's limit as it arrives.
    let mut conn = RawConn::open(app.addr).await;
    let head = format!(
        "POST /api/v1/book/batch HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.admin_token
    );
    assert!(conn.send(head.as_bytes()).await);
    for _ in 0..9 {
        assert!(conn.send(b"2000\r\n").await);
        assert!(conn.send(&[b' '; 0x2000]).await);
        assert!(conn.send(b"\r\n").await);
    }
    assert_eq!(conn.response().await.status, 413);
    assert_eq!(app.list_all("book", &[]).await.len(), 100);
}

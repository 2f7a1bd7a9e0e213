//! `DELETE /api/v1/{m}/{id}` (soft delete and purge) and `POST …/restore`.

use crate::helpers::{MISSING_ID, TestApp, assert_error, id_of};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn delete_is_a_soft_delete_hidden_from_default_lists() {
    let app = TestApp::spawn().await;
    let keep = id_of(&app.create_ok("resource", &json!({"name": "keep"})).await);
    let created = app.create_ok("resource", &json!({"name": "drop"})).await;
    let id = id_of(&created);

    let r = app.delete_resp("resource", &id, "", None).await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(data["status"], json!("deleted"));
    assert_eq!(data["version"], json!(2));
    assert_eq!(data["name"], json!("drop"));
    assert_eq!(r.header("etag"), Some("\"2\""));

    assert_eq!(app.get_ok("resource", &id).await, data);
    assert_eq!(app.ids("resource", &[]).await, vec![keep.clone()]);
    assert_eq!(
        app.ids("resource", &[("status", "deleted")]).await,
        vec![id.clone()]
    );
    assert_eq!(
        app.ids(
            "resource",
            &[("status[in]", "active,deleted"), ("sort", "created_at")]
        )
        .await,
        vec![keep, id]
    );
}

#[tokio::test]
async fn deleting_twice_is_404_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let (status, _) = app.delete("resource", &id).await;
    assert_eq!(status, StatusCode::OK);
    let deleted = app.get_ok("resource", &id).await;

    let r = app.delete_resp("resource", &id, "", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.get_ok("resource", &id).await, deleted);
}

#[tokio::test]
async fn deleting_an_unknown_id_is_404() {
    let app = TestApp::spawn().await;
    let r = app.delete_resp("resource", MISSING_ID, "", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.purge_resp("resource", MISSING_ID).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.restore_resp("resource", MISSING_ID).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn restore_makes_a_deleted_record_active_again() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "back"})).await);
    let (status, _) = app.delete("resource", &id).await;
    assert_eq!(status, StatusCode::OK);

    let r = app.restore_resp("resource", &id).await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(data["status"], json!("active"));
    assert_eq!(data["version"], json!(3));
    assert_eq!(r.header("etag"), Some("\"3\""));
    assert_eq!(app.get_ok("resource", &id).await, data);
    assert_eq!(app.ids("resource", &[]).await, vec![id.clone()]);
    assert!(
        app.ids("resource", &[("status", "deleted")])
            .await
            .is_empty()
    );

    // Writable again.
    let (status, _) = app
        .patch("resource", &id, &json!({"name": "again"}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn restoring_a_record_that_is_not_deleted_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let live = app.create_ok("resource", &json!({"name": "live"})).await;
    let id = id_of(&live);
    let r = app.restore_resp("resource", &id).await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(app.get_ok("resource", &id).await, live);

    let inactive = app
        .create_ok("resource", &json!({"name": "off", "status": "inactive"}))
        .await;
    let r = app.restore_resp("resource", &id_of(&inactive)).await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(app.get_ok("resource", &id_of(&inactive)).await, inactive);
}

#[tokio::test]
async fn purge_removes_the_record_for_good() {
    let app = TestApp::spawn().await;
    let live = id_of(&app.create_ok("resource", &json!({"name": "live"})).await);
    let soft = id_of(&app.create_ok("resource", &json!({"name": "soft"})).await);
    let (status, _) = app.delete("resource", &soft).await;
    assert_eq!(status, StatusCode::OK);

    for id in [&live, &soft] {
        let r = app.purge_resp("resource", id).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert!(r.raw.is_empty());
        r.request_id();
        let r = app.get_resp("resource", id, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        let r = app.purge_resp("resource", id).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn purge_with_a_stale_if_match_is_412_and_keeps_the_record() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let (status, _) = app
        .patch("resource", &id, &json!({"name": "y"}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let current = app.get_ok("resource", &id).await;

    let r = app
        .delete_resp("resource", &id, "?purge=true", Some("\"1\""))
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    assert_eq!(app.get_ok("resource", &id).await, current);

    let r = app
        .delete_resp("resource", &id, "?purge=true", Some("\"2\""))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn purge_false_is_a_soft_delete() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let r = app.delete_resp("resource", &id, "?purge=false", None).await;
    assert_eq!(r.data(StatusCode::OK)["status"], json!("deleted"));
}

#[tokio::test]
async fn delete_with_an_unknown_query_parameter_is_400_and_deletes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let id = id_of(&created);
    for query in [
        "?purge=yes",
        "?purge=1",
        "?force=true",
        "?purge=true&purge=true",
    ] {
        let r = app.delete_resp("resource", &id, query, None).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    assert_eq!(app.get_ok("resource", &id).await, created);
}

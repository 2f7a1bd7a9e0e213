//! `GET /api/v1/{m}/{id}`: the record, its `ETag`, and `If-None-Match`.

use crate::helpers::{MISSING_ID, TestApp, assert_error, id_of};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn get_returns_the_record_with_its_etag() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "read me"})).await;
    let id = id_of(&created);
    let r = app.get_resp("resource", &id, None).await;
    assert_eq!(r.data(StatusCode::OK), &created);
    assert_eq!(r.header("etag"), Some("\"1\""));
    r.request_id();
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304_with_an_empty_body() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "cached"})).await);
    for tag in ["\"1\"", "W/\"1\"", "*", "\"7\", \"1\""] {
        let r = app.get_resp("resource", &id, Some(tag)).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match {tag}");
        assert!(r.raw.is_empty(), "304 with a body: {:?}", r.raw);
        assert_eq!(r.header("etag"), Some("\"1\""));
        r.request_id();
    }
}

#[tokio::test]
async fn if_none_match_with_a_stale_etag_returns_the_current_record() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "v1"})).await);
    let (status, _) = app
        .patch("resource", &id, &json!({"name": "v2"}), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let r = app.get_resp("resource", &id, Some("\"1\"")).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["name"], json!("v2"));
    assert_eq!(data["version"], json!(2));
    assert_eq!(r.header("etag"), Some("\"2\""));

    let cached = app.get_resp("resource", &id, Some("\"2\"")).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn an_unknown_id_is_404() {
    let app = TestApp::spawn().await;
    let r = app.get_resp("resource", MISSING_ID, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.get_resp("resource", MISSING_ID, Some("*")).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = app.get("resource", MISSING_ID).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], json!("NOT_FOUND"));
}

#[tokio::test]
async fn a_record_of_one_model_is_not_found_under_another() {
    let app = TestApp::spawn_with(crate::helpers::decls(json!([
        {"name": "alpha"},
        {"name": "beta"}
    ])))
    .await;
    let id = id_of(&app.create_ok("alpha", &json!({"name": "a"})).await);
    app.get_ok("alpha", &id).await;
    let r = app.get_resp("beta", &id, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

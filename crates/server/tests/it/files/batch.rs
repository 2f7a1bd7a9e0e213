//! File fields in a batch write (JSON only): an item may keep, subset or clear the files its
//! record holds, never name another record's, and a file an item stops holding is removed
//! when the batch commits, as after a single write.

use super::png;
use super::{FileApp, file_path};
use crate::helpers::{assert_error, detail_fields, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_batch_item_naming_another_records_file_is_refused_at_its_index() {
    let f = FileApp::local().await;
    let a = f.create_with_cover(&png(20, 31)).await;
    let b = f.create_with_cover(&png(20, 32)).await;
    let body = json!({"items": [
        {"op": "create", "data": {"name": "fine"}},
        {"op": "update", "id": id_of(&a), "data": {"cover": b["cover"].clone()}},
    ]});
    let r = f
        .app
        .call_as(
            Method::POST,
            "/api/v1/book/batch",
            Some(&f.app.admin_token),
            Some(&body),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["items[1].cover"], "{}", r.body);
    let body =
        json!({"items": [{"op": "create", "data": {"name": "x", "cover": b["cover"].clone()}}]});
    let r = f
        .app
        .call_as(
            Method::POST,
            "/api/v1/book/batch",
            Some(&f.app.admin_token),
            Some(&body),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["items[0].cover"], "{}", r.body);
    assert_eq!(f.get_record(&a).await["cover"], a["cover"], "unchanged");
    assert_eq!(f.app.count_all("book").await, 2, "nothing was written");
}

#[tokio::test]
async fn a_file_a_batch_item_clears_is_removed_when_the_batch_commits() {
    let f = FileApp::local().await;
    let a = f.create_with_cover(&png(30, 41)).await;
    let b = f.create_with_cover(&png(30, 42)).await;
    assert_eq!(f.blob_count().await, 2);
    let body = json!({"items": [
        {"op": "update", "id": id_of(&a), "data": {"cover": null}},
        {"op": "replace", "id": id_of(&b), "data": {"name": "b2"}},
    ]});
    let r = f
        .app
        .call_as(
            Method::POST,
            "/api/v1/book/batch",
            Some(&f.app.admin_token),
            Some(&body),
        )
        .await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(data[0]["cover"], json!(null));
    assert_eq!(data[1]["cover"], json!(null));
    let gone = f.download(&file_path("book", &a, "cover"), &[]).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        f.blob_count().await,
        0,
        "the contents no record holds are deleted"
    );
}

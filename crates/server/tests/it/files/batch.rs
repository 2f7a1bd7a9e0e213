//! File fields in a batch write (JSON only): an item may keep, subset or clear the files its
//! record holds, never name another record's.

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

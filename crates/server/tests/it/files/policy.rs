//! Who may upload and download: the record's policy, exactly as its read and write
//! endpoints apply it.

use super::{FileApp, Part, file_path, form, png};
use crate::helpers::{assert_error, detail_fields, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_file_is_read_only_by_who_may_read_its_record() {
    let f = FileApp::local().await;
    let (_, a) = f.app.user("a@example.com").await;
    let (_, b) = f.app.user("b@example.com").await;
    let body = form(&[
        Part::Data(json!({"name": "day 1"})),
        Part::File("photo", "me.png", "image/png", png(20, 9)),
    ]);
    let r = f
        .upload_as(Method::POST, "/api/v1/diary", Some(&a), body)
        .await;
    let entry = r.data(StatusCode::CREATED).clone();
    let path = file_path("diary", &entry, "photo");
    assert_eq!(
        f.download_as(&path, Some(&a), &[]).await.status,
        StatusCode::OK
    );
    let other = f.download_as(&path, Some(&b), &[]).await;
    assert_error(&other, StatusCode::NOT_FOUND, "NOT_FOUND");
    let guest = f.download_as(&path, None, &[]).await;
    assert!(
        matches!(
            guest.status,
            StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED
        ),
        "{}",
        guest.status
    );
    assert!(guest.raw.len() < 400 && !guest.raw.starts_with(b"\x89PNG"));
    // b cannot write a's entry either, with or without a file.
    let at = format!("/api/v1/diary/{}", id_of(&entry));
    let body = form(&[Part::File("photo", "x.png", "image/png", png(20, 10))]);
    let r = f.upload_as(Method::PATCH, &at, Some(&b), body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(f.blob_count().await, 1, "b's upload is not kept");
}

#[tokio::test]
async fn a_guest_cannot_upload() {
    let f = FileApp::local().await;
    let body = form(&[
        Part::Data(json!({"name": "x"})),
        Part::File("cover", "c.png", "image/png", png(20, 11)),
    ]);
    let r = f.upload_as(Method::POST, "/api/v1/book", None, body).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(f.blob_count().await, 0);
}

#[tokio::test]
async fn an_admin_only_file_field_does_not_exist_for_users() {
    let f = FileApp::local().await;
    let (_, u) = f.app.user("u@example.com").await;
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "x"})),
                Part::File(
                    "scan",
                    "s.pdf",
                    "application/pdf",
                    b"%PDF-1.4 secret".to_vec(),
                ),
            ],
        )
        .await;
    let book = r.data(StatusCode::CREATED).clone();
    let path = file_path("book", &book, "scan");
    assert_eq!(f.download(&path, &[]).await.status, StatusCode::OK);
    let denied = f.download_as(&path, Some(&u), &[]).await;
    assert_error(&denied, StatusCode::NOT_FOUND, "NOT_FOUND");
    let body = form(&[
        Part::Data(json!({"name": "y"})),
        Part::File(
            "scan",
            "s.pdf",
            "application/pdf",
            b"%PDF-1.4 mine".to_vec(),
        ),
    ]);
    let r = f
        .upload_as(Method::POST, "/api/v1/book", Some(&u), body)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["scan"]);
}

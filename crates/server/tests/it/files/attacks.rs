//! Hostile uploads and downloads: lying types, traversal in names, another record's file,
//! names never uploaded, broken and oversized multipart bodies.

use super::{BOUNDARY, FileApp, Part, file_path, form, png};
use crate::helpers::{assert_error, detail_fields, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_lying_content_type_is_ignored() {
    let f = FileApp::local().await;
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>".to_vec();
    // An image field refuses it: the type comes from the bytes.
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "x"})),
                Part::File("cover", "evil.png", "image/png", html.clone()),
            ],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["cover"]);
    let reason = r.body["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("text/"), "{reason}");
    // A field of any type keeps it, as what it is, served as an attachment in a sandbox.
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "y"})),
                Part::File("attachment", "evil.png", "image/png", html.clone()),
            ],
        )
        .await;
    let book = r.data(StatusCode::CREATED).clone();
    let name = book["attachment"].as_str().unwrap_or_default();
    assert!(!name.ends_with(".png"), "{name}");
    let d = f
        .download(&file_path("book", &book, "attachment"), &[])
        .await;
    assert_eq!(d.raw, html);
    let ty = d.header("content-type").unwrap_or_default();
    assert!(!ty.starts_with("image/"), "{ty}");
    assert!(
        d.header("content-disposition")
            .is_some_and(|c| c.starts_with("attachment"))
    );
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    assert!(
        d.header("content-security-policy")
            .is_some_and(|c| c.contains("sandbox"))
    );
    assert_eq!(f.blob_count().await, 1, "the refused upload left nothing");
}

#[tokio::test]
async fn traversal_and_foreign_names_find_nothing() {
    let f = FileApp::local().await;
    let a = f.create_with_cover(&png(20, 12)).await;
    let b = f.create_with_cover(&png(20, 13)).await;
    let a_id = id_of(&a);
    let b_name = b["cover"].as_str().unwrap_or_default();
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "%2E%2E",
        "blobs",
        "..%5C..%5Cboot.ini",
        b_name,
    ] {
        let r = f
            .download(&format!("/api/v1/book/{a_id}/files/cover/{name}"), &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}");
        assert!(!r.raw.starts_with(b"\x89PNG"), "{name}");
    }
    // Another record's file, or a field that is not a file field.
    let title = format!("/api/v1/book/{a_id}/files/title/{b_name}");
    assert_eq!(f.download(&title, &[]).await.status, StatusCode::NOT_FOUND);
    // The uploaded file's own name with traversal in it is cleaned.
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "t"})),
                Part::File("cover", "../../../etc/passwd.png", "image/png", png(20, 14)),
            ],
        )
        .await;
    let book = r.data(StatusCode::CREATED).clone();
    let name = book["cover"].as_str().unwrap_or_default();
    assert!(name.starts_with("passwd_") && !name.contains('/'), "{name}");
    assert!(!f.dir().join("etc").exists());
}

#[tokio::test]
async fn json_can_only_name_the_records_own_files() {
    let f = FileApp::local().await;
    let a = f.create_with_cover(&png(20, 15)).await;
    let b = f.create_with_cover(&png(20, 16)).await;
    // A name another record holds, a name never uploaded, a name that is no name.
    for value in [
        b["cover"].clone(),
        json!("made_up_0123456789.png"),
        json!("../x"),
        json!(7),
    ] {
        let r = f
            .app
            .patch_resp("book", &id_of(&a), &json!({"cover": value}), None)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(detail_fields(&r.body), ["cover"], "{value}");
    }
    let r = f
        .app
        .create_resp("book", &json!({"name": "n", "cover": b["cover"].clone()}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(f.get_record(&a).await["cover"], a["cover"], "unchanged");
    assert_eq!(f.app.count_all("book").await, 2);
}

#[tokio::test]
async fn broken_multipart_bodies_are_refused_with_nothing_written() {
    let f = FileApp::local().await;
    let whole = form(&[
        Part::Data(json!({"name": "cut"})),
        Part::File("cover", "c.png", "image/png", png(500, 17)),
    ]);
    let token = f.app.admin_token.clone();
    // Cut in the middle of the file.
    let cut = whole[..whole.len() - 200].to_vec();
    let r = f
        .upload_as(Method::POST, "/api/v1/book", Some(&token), cut)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    // Too many parts.
    let many: Vec<Part<'_>> = (0..70).map(|_| Part::Data(json!({}))).collect();
    let r = f.upload(Method::POST, "/api/v1/book", &many).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    // Two files for a single field.
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::File("cover", "a.png", "image/png", png(10, 18)),
                Part::File("cover", "b.png", "image/png", png(10, 19)),
            ],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["cover"]);
    // A part for a field that is not a file field, and a huge part header.
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[Part::File("title", "t.png", "image/png", png(10, 20))],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let huge = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"data\"\r\nX-Pad: {}\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n",
        "a".repeat(200_000)
    );
    let r = f
        .upload_as(
            Method::POST,
            "/api/v1/book",
            Some(&token),
            huge.into_bytes(),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    // No boundary at all.
    let r = f
        .app
        .send(
            f.app
                .request(Method::POST, "/api/v1/book")
                .header("content-type", "multipart/form-data")
                .body("x"),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(f.app.count_all("book").await, 0);
    assert_eq!(f.blob_count().await, 0);
    assert_eq!(f.temp_count(), 0);
}

#[tokio::test]
async fn a_file_of_a_refused_type_names_the_type_found() {
    let f = FileApp::local().await;
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "gif"})),
                Part::File(
                    "cover",
                    "c.png",
                    "image/png",
                    b"GIF89a\x01\x00\x01\x00".to_vec(),
                ),
            ],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let reason = r.body["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("image/gif"), "{reason}");
}

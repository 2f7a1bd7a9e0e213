//! Uploads, downloads and removals, each case run on local storage and on a moto bucket.

use super::{FileApp, Part, file_path, png};
use crate::helpers::{assert_error, detail_fields, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Runs each case on local storage (`local::`) and on an S3 bucket (`s3::`).
macro_rules! on_both_storages {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::FileApp::local().await).await;
            })*
        }
        mod s3 {
            $(#[tokio::test]
            async fn $case() {
                if let Some(app) = super::FileApp::s3(stringify!($case)).await {
                    super::$case(app).await;
                }
            })*
        }
    };
}

on_both_storages!(
    an_upload_is_stored_and_downloaded_with_its_headers,
    ranges_and_conditional_downloads,
    a_replaced_or_removed_file_is_gone,
    a_purge_removes_the_files_and_a_soft_delete_keeps_them,
    the_same_content_is_stored_once,
    an_oversized_file_is_refused_and_nothing_is_left,
    a_retried_upload_with_an_idempotency_key_replays,
    a_multiple_field_appends_keeps_a_subset_and_stops_at_max_files,
);

async fn an_upload_is_stored_and_downloaded_with_its_headers(f: FileApp) {
    let bytes = png(300, 1);
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "b1", "title": "Rust"})),
                Part::File("cover", "My Cover.PNG", "image/png", bytes.clone()),
            ],
        )
        .await;
    let book = r.data(StatusCode::CREATED).clone();
    assert_eq!(book["title"], json!("Rust"));
    let name = book["cover"].as_str().expect("a stored name");
    assert!(
        name.starts_with("my_cover_") && name.ends_with(".png"),
        "{name}"
    );
    assert_eq!(f.get_record(&book).await["cover"], json!(name));
    let d = f.download(&file_path("book", &book, "cover"), &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.raw, bytes);
    assert_eq!(d.header("content-type"), Some("image/png"));
    assert_eq!(d.header("content-length"), Some("308"));
    assert_eq!(d.header("accept-ranges"), Some("bytes"));
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    assert!(
        d.header("content-security-policy")
            .is_some_and(|c| c.starts_with("sandbox"))
    );
    assert_eq!(
        d.header("content-disposition"),
        Some(format!("inline; filename=\"{name}\"").as_str())
    );
    let etag = d.header("etag").expect("an ETag");
    assert_eq!(etag.len(), 66, "{etag}");
    assert_eq!(f.blob_count().await, 1);
    assert_eq!(f.temp_count(), 0);
}

async fn ranges_and_conditional_downloads(f: FileApp) {
    let bytes = png(92, 2);
    let book = f.create_with_cover(&bytes).await;
    let path = file_path("book", &book, "cover");
    let etag = f
        .download(&path, &[])
        .await
        .header("etag")
        .expect("an ETag")
        .to_owned();
    let same = f.download(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert!(same.raw.is_empty());
    let part = f.download(&path, &[("range", "bytes=0-3")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.raw, bytes[..4]);
    assert_eq!(part.header("content-range"), Some("bytes 0-3/100"));
    let tail = f.download(&path, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.raw, bytes[90..]);
    let several = f.download(&path, &[("range", "bytes=0-1,4-5")]).await;
    assert_eq!(several.status, StatusCode::OK);
    assert_eq!(several.raw, bytes);
    let past = f.download(&path, &[("range", "bytes=100-")]).await;
    assert_error(
        &past,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_NOT_SATISFIABLE",
    );
    assert_eq!(past.header("content-range"), Some("bytes */100"));
}

async fn a_replaced_or_removed_file_is_gone(f: FileApp) {
    let book = f.create_with_cover(&png(50, 3)).await;
    let old = file_path("book", &book, "cover");
    let at = format!("/api/v1/book/{}", id_of(&book));
    let r = f
        .upload(
            Method::PATCH,
            &at,
            &[Part::File("cover", "new.png", "image/png", png(60, 4))],
        )
        .await;
    let updated = r.data(StatusCode::OK).clone();
    assert_ne!(updated["cover"], book["cover"]);
    let gone = f.download(&old, &[]).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        f.download(&file_path("book", &updated, "cover"), &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(f.blob_count().await, 1, "the replaced content is deleted");
    // JSON: null removes the file.
    let cleared = f
        .app
        .patch_resp("book", &id_of(&book), &json!({"cover": null}), None)
        .await;
    assert_eq!(cleared.data(StatusCode::OK)["cover"], json!(null));
    assert_eq!(f.blob_count().await, 0);
}

async fn a_purge_removes_the_files_and_a_soft_delete_keeps_them(f: FileApp) {
    let book = f.create_with_cover(&png(40, 5)).await;
    let path = file_path("book", &book, "cover");
    let id = id_of(&book);
    assert_eq!(
        f.app.delete_resp("book", &id, "", None).await.status,
        StatusCode::OK
    );
    assert_eq!(f.blob_count().await, 1);
    assert_eq!(f.app.restore_resp("book", &id).await.status, StatusCode::OK);
    assert_eq!(f.download(&path, &[]).await.status, StatusCode::OK);
    assert_eq!(
        f.app.purge_resp("book", &id).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(f.download(&path, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(f.blob_count().await, 0);
}

async fn the_same_content_is_stored_once(f: FileApp) {
    let bytes = png(70, 6);
    let a = f.create_with_cover(&bytes).await;
    let b = f.create_with_cover(&bytes).await;
    assert_ne!(a["cover"], b["cover"], "names are each record's own");
    assert_eq!(f.blob_count().await, 1);
    assert_eq!(
        f.app.purge_resp("book", &id_of(&a)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(f.blob_count().await, 1, "b still holds the content");
    let d = f.download(&file_path("book", &b, "cover"), &[]).await;
    assert_eq!(d.raw, bytes);
}

async fn an_oversized_file_is_refused_and_nothing_is_left(f: FileApp) {
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "big"})),
                Part::File("cover", "big.png", "image/png", png(2000, 7)),
            ],
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_eq!(detail_fields(&r.body), ["cover"]);
    assert_eq!(f.app.count_all("book").await, 0);
    assert_eq!(f.blob_count().await, 0);
    assert_eq!(f.temp_count(), 0);
}

async fn a_retried_upload_with_an_idempotency_key_replays(f: FileApp) {
    let parts = [
        Part::Data(json!({"name": "once"})),
        Part::File("cover", "c.png", "image/png", png(30, 8)),
    ];
    let send = || {
        let token = f.app.admin_token.clone();
        let req = f
            .app
            .request_as(Method::POST, "/api/v1/book", Some(&token))
            .header("idempotency-key", "upload-1")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={}", super::BOUNDARY),
            )
            .body(super::form(&parts));
        f.app.send(req)
    };
    let first = send().await;
    let again = send().await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.body["data"], again.body["data"]);
    assert_eq!(f.app.count_all("book").await, 1);
    assert_eq!(f.blob_count().await, 1);
}

async fn a_multiple_field_appends_keeps_a_subset_and_stops_at_max_files(f: FileApp) {
    let r = f
        .upload(
            Method::POST,
            "/api/v1/book",
            &[
                Part::Data(json!({"name": "album"})),
                Part::File("gallery", "one.png", "image/png", png(10, 30)),
                Part::File("gallery", "two.png", "image/png", png(10, 31)),
            ],
        )
        .await;
    let book = r.data(StatusCode::CREATED).clone();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["gallery"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|n| n.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let first = names(&book);
    assert_eq!(first.len(), 2);
    assert!(
        first[0].starts_with("one_") && first[1].starts_with("two_"),
        "{first:?}"
    );
    let id = id_of(&book);
    let at = format!("/api/v1/book/{id}");
    let one = |name: &str| format!("/api/v1/book/{id}/files/gallery/{name}");
    assert_eq!(f.download(&one(&first[1]), &[]).await.raw, png(10, 31));
    // Parts append to what the record holds.
    let r = f
        .upload(
            Method::PATCH,
            &at,
            &[Part::File("gallery", "three.png", "image/png", png(10, 32))],
        )
        .await;
    let three = names(r.data(StatusCode::OK));
    assert_eq!(three.len(), 3);
    assert_eq!(three[..2], first[..]);
    // A fourth is one too many: refused, and its content not kept.
    let r = f
        .upload(
            Method::PATCH,
            &at,
            &[Part::File("gallery", "four.png", "image/png", png(10, 33))],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["gallery"]);
    assert_eq!(names(&f.get_record(&book).await), three);
    assert_eq!(f.blob_count().await, 3);
    // JSON keeps a subset; the others go.
    let r = f
        .app
        .patch_resp("book", &id, &json!({"gallery": [three[2].clone()]}), None)
        .await;
    assert_eq!(names(r.data(StatusCode::OK)), [three[2].clone()]);
    assert_eq!(
        f.download(&one(&first[0]), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(f.blob_count().await, 1);
    // Naming a file the record does not hold is refused.
    let r = f
        .app
        .patch_resp(
            "book",
            &id,
            &json!({"gallery": [three[2].clone(), first[0].clone()]}),
            None,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(detail_fields(&r.body), ["gallery"]);
}

impl FileApp {
    /// A book with `bytes` as its cover, created by the admin.
    pub(crate) async fn create_with_cover(&self, bytes: &[u8]) -> serde_json::Value {
        let r = self
            .upload(
                Method::POST,
                "/api/v1/book",
                &[
                    Part::Data(json!({"name": "b"})),
                    Part::File("cover", "c.png", "image/png", bytes.to_vec()),
                ],
            )
            .await;
        r.data(StatusCode::CREATED).clone()
    }

    /// The record as `GET` answers it (admin).
    pub(crate) async fn get_record(&self, record: &serde_json::Value) -> serde_json::Value {
        self.app.get_ok("book", &id_of(record)).await
    }
}

#[tokio::test]
async fn the_sweeper_removes_contents_no_record_holds() {
    let f = FileApp::local_swept(std::time::Duration::from_millis(200)).await;
    let kept = f.create_with_cover(&png(20, 40)).await;
    // A content a crash left: stored, never committed to a record.
    let orphan = "ab".repeat(32);
    let dir = f.dir().join("blobs").join("ab");
    std::fs::create_dir_all(&dir).expect("a blob directory");
    std::fs::write(dir.join(&orphan), b"left behind").expect("an orphan");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while dir.join(&orphan).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was never swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(f.blob_count().await, 1);
    let d = f.download(&file_path("book", &kept, "cover"), &[]).await;
    assert_eq!(d.raw, png(20, 40));
}

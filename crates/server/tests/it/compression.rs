//! Negotiated compression: a list long enough is sent gzip-compressed to a client that
//! accepts gzip, and decompresses to the very body sent to one that does not; a short
//! answer, a record with its `ETag`, an answer marked `no-store` and a client that refuses
//! or does not name gzip get the body as it is; `compression_min_bytes = 0` turns it off.

use crate::helpers::{Resp, TestApp, decls};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Read;

async fn app(config: ServerConfig) -> TestApp {
    let app = TestApp::spawn_configured(
        decls(json!([{"name": "book", "fields": [
            {"name": "title", "type": "string"},
            {"name": "blurb", "type": "text"},
        ]}])),
        config,
    )
    .await;
    for i in 0..30 {
        app.create_ok(
            "book",
            &json!({"name": format!("book {i}"), "title": format!("title {i}"), "blurb": "a".repeat(60)}),
        )
        .await;
    }
    app
}

/// `GET path` as the admin with `Accept-Encoding` set to `accept` (none when `None`).
async fn get(app: &TestApp, path: &str, accept: Option<&str>) -> Resp {
    let mut req = app.request(Method::GET, path);
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    app.send(req).await
}

fn encoding(r: &Resp) -> Option<&str> {
    r.header("content-encoding")
}

fn gunzip(raw: &[u8]) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(raw)
        .read_to_string(&mut text)
        .expect("a gzip body");
    serde_json::from_str(&text).expect("JSON inside")
}

#[tokio::test]
async fn a_long_list_is_gzipped_for_a_client_that_accepts_it_and_reads_the_same() {
    let app = app(ServerConfig::default()).await;
    let path = "/api/v1/book?limit=30";
    let plain = get(&app, path, None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(encoding(&plain), None, "not asked for: not compressed");
    assert!(plain.raw.len() > 1400, "{} bytes", plain.raw.len());

    let zipped = get(&app, path, Some("gzip, deflate, br")).await;
    assert_eq!(zipped.status, StatusCode::OK);
    assert_eq!(encoding(&zipped), Some("gzip"));
    assert!(
        zipped.headers.get_all("vary").iter().any(|v| v
            .to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))),
        "{:?}",
        zipped.headers
    );
    assert!(
        zipped.raw.len() * 3 < plain.raw.len(),
        "{} bytes compressed from {}",
        zipped.raw.len(),
        plain.raw.len()
    );
    assert_eq!(gunzip(&zipped.raw), plain.body);
    assert!(zipped.header("x-request-id").is_some(), "the headers stay");
}

#[tokio::test]
async fn short_answers_tagged_records_and_no_store_answers_are_sent_as_they_are() {
    let app = app(ServerConfig::default()).await;
    let short = get(&app, "/api/v1/book?limit=1", Some("gzip")).await;
    assert_eq!(short.status, StatusCode::OK);
    assert_eq!(encoding(&short), None, "{} bytes", short.raw.len());

    // A record long enough, with its ETag: the tag names the bytes sent as they are.
    let long = app
        .create_ok("book", &json!({"name": "long", "blurb": "b".repeat(4000)}))
        .await;
    let id = long["id"].as_str().expect("an id");
    let record = get(&app, &format!("/api/v1/book/{id}"), Some("gzip")).await;
    assert_eq!(record.status, StatusCode::OK);
    assert!(record.header("etag").is_some());
    assert!(record.raw.len() > 4000);
    assert_eq!(encoding(&record), None);

    // The audit trail is `no-store` (account data): never compressed.
    let audit = get(&app, "/api/v1/audit?limit=30", Some("gzip")).await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.raw.len() > 1400, "{} bytes", audit.raw.len());
    assert_eq!(audit.header("cache-control"), Some("no-store"));
    assert_eq!(encoding(&audit), None);
}

#[tokio::test]
async fn a_client_that_refuses_gzip_or_sends_nonsense_gets_the_body_as_it_is() {
    let app = app(ServerConfig::default()).await;
    let path = "/api/v1/book?limit=30";
    let plain = get(&app, path, None).await;
    for accept in [
        "gzip;q=0",
        "identity",
        "br",
        "zstd",
        "*;q=0",
        "gzip;q=nonsense",
        ";;;,,,",
        &"x".repeat(4000),
    ] {
        let r = get(&app, path, Some(accept)).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        assert_eq!(encoding(&r), None, "{accept}");
        assert_eq!(r.body["data"], plain.body["data"], "{accept}");
    }
}

#[tokio::test]
async fn compression_min_bytes_zero_turns_compression_off() {
    let app = app(ServerConfig {
        compression_min_bytes: 0,
        ..ServerConfig::default()
    })
    .await;
    let r = get(&app, "/api/v1/book?limit=30", Some("gzip")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.raw.len() > 1400);
    assert_eq!(encoding(&r), None);
}

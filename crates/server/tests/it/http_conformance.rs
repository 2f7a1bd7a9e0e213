//! HTTP conformance: an answer that leaves a body unread says `Connection: close`
//! (RFC 9112 §9.6); 414 and 431 carry the envelope; every answer carries
//! `X-Content-Type-Options: nosniff`; tokens, keys and accounts carry `Cache-Control: no-store`.

use crate::helpers::raw::{RawConn, STUCK};
use crate::helpers::{PASSWORD, TestApp, assert_error, id_of};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A `POST` head announcing `length` body bytes, with `auth` as a credential if given.
fn post_head(path: &str, auth: Option<&str>, length: usize) -> String {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: plinth.test\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_oversize_body_is_answered_413_with_connection_close() {
    let app = TestApp::spawn().await;
    let mut conn = RawConn::open(app.addr).await;
    let head = post_head("/api/v1/resource", Some(&app.admin_token), 2 << 20);
    assert!(conn.send(head.as_bytes()).await);
    assert!(conn.send(&[b' '; 16 * 1024]).await);
    let r = conn.response().await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], json!("PAYLOAD_TOO_LARGE"));
    assert!(r.says_close(), "413 without Connection: close: {r:?}");
    assert!(conn.closed_within(STUCK).await);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_answered_413_with_connection_close() {
    let config = ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let mut conn = RawConn::open(app.addr).await;
    let head = format!(
        "POST /api/v1/resource HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.admin_token
    );
    assert!(conn.send(head.as_bytes()).await);
    // One chunk of 2,000 bytes, and no last chunk: the body never ends.
    assert!(conn.send(b"7d0\r\n").await);
    assert!(conn.send(&[b' '; 2000]).await);
    assert!(conn.send(b"\r\n").await);
    let r = conn.response().await;
    assert_eq!(r.status, 413);
    assert!(r.says_close(), "413 without Connection: close: {r:?}");
    assert!(conn.closed_within(STUCK).await);
}

#[tokio::test]
async fn a_401_before_the_body_is_read_says_connection_close() {
    let app = TestApp::spawn().await;
    let mut conn = RawConn::open(app.addr).await;
    // A guest may not create: refused before the body (100 KB, 10 bytes of it sent) is read.
    let head = post_head("/api/v1/resource", None, 100_000);
    assert!(conn.send(head.as_bytes()).await);
    assert!(conn.send(b"{\"name\": 1").await);
    let r = conn.response().await;
    assert_eq!(r.status, 401);
    assert!(r.says_close(), "401 without Connection: close: {r:?}");
    assert!(conn.closed_within(STUCK).await);
}

#[tokio::test]
async fn a_body_read_to_its_end_keeps_the_connection_alive() {
    let app = TestApp::spawn().await;
    let mut conn = RawConn::open(app.addr).await;
    let body = br#"{"name": "kept"}"#;
    let head = post_head("/api/v1/resource", Some(&app.admin_token), body.len());
    assert!(conn.send(head.as_bytes()).await);
    assert!(conn.send(body).await);
    let created = conn.response().await;
    assert_eq!(created.status, 201);
    assert!(!created.says_close(), "{created:?}");
    // An invalid body, read whole, is refused without closing either.
    let body = br#"{"name": 5}"#;
    let head = post_head("/api/v1/resource", Some(&app.admin_token), body.len());
    assert!(conn.send(head.as_bytes()).await);
    assert!(conn.send(body).await);
    let refused = conn.response().await;
    assert_eq!(refused.status, 400);
    assert!(!refused.says_close(), "{refused:?}");
    assert_eq!(conn.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_too_long_uri_is_414_with_the_envelope() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(64_001);
    let r = app.get_path(&format!("/api/v1/resource?name={long}")).await;
    assert_error(&r, StatusCode::URI_TOO_LONG, "URI_TOO_LONG");
    let r = app.get_path(&format!("/{long}")).await;
    assert_error(&r, StatusCode::URI_TOO_LONG, "URI_TOO_LONG");
}

#[tokio::test]
async fn too_large_or_too_many_headers_are_431_with_the_envelope() {
    let app = TestApp::spawn().await;
    let big = "b".repeat(40 * 1024);
    let r = app
        .send(app.request(Method::GET, "/healthz").header("x-big", big))
        .await;
    assert_error(
        &r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "HEADERS_TOO_LARGE",
    );
    let mut req = app.request(Method::GET, "/healthz");
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "1");
    }
    let r = app.send(req).await;
    assert_error(
        &r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "HEADERS_TOO_LARGE",
    );
}

#[tokio::test]
async fn every_answer_carries_nosniff() {
    let config = ServerConfig {
        cors_origins: vec!["https://app.example".to_owned()],
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "n"})).await);
    let answers = [
        app.get_path("/healthz").await,
        app.get_path("/api/v1/resource").await,
        app.get_resp("resource", &id, Some("\"1\"")).await,
        app.get_path("/no/such/route").await,
        app.get_path("/api/v1/resource/not-a-uuid").await,
        app.send(app.request(Method::PUT, "/api/v1/resource")).await,
        app.send(app.request_as(Method::GET, "/api/v1/users", Some("bad-token")))
            .await,
        app.send(
            app.request_as(Method::OPTIONS, "/api/v1/resource", None)
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST"),
        )
        .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 304, 404, 400, 405, 401, 200]);
    for r in &answers {
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{} without nosniff",
            r.status
        );
    }
}

#[tokio::test]
async fn tokens_keys_and_accounts_are_never_stored_by_caches() {
    let app = TestApp::spawn().await;
    let login = app.login("admin@example.com", PASSWORD).await;
    let failed = app.login("admin@example.com", "wrong password here").await;
    let me = app.me(Some(&app.admin_token)).await;
    let key = app
        .create_key(&app.admin_token, &json!({"name": "k"}))
        .await;
    let keys = app
        .call_as(
            Method::GET,
            "/api/v1/auth/api-keys",
            Some(&app.admin_token),
            None,
        )
        .await;
    let users = app.get_path("/api/v1/users").await;
    let user = app
        .get_path(&format!("/api/v1/users/{}", app.admin_id))
        .await;
    let statuses: Vec<u16> = [&login, &failed, &me, &key, &keys, &users, &user]
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(statuses, [200, 401, 200, 201, 200, 200, 200]);
    for r in [&login, &failed, &me, &key, &keys, &users, &user] {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    }
}

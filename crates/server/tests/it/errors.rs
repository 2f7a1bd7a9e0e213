//! Every error code the server produces without authentication, in the one envelope.

use crate::helpers::{MISSING_ID, Resp, TestApp, TestDb, assert_error, id_of};
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use plinth_server::ServerConfig;
use plinth_server::with_middleware;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn unknown_routes_and_models_are_404() {
    let app = TestApp::spawn().await;
    let cases = [
        (Method::GET, "/nope".to_owned()),
        (Method::POST, "/nope".to_owned()),
        (Method::GET, "/".to_owned()),
        (Method::GET, "/api/v1".to_owned()),
        (Method::GET, "/api/v2/resource".to_owned()),
        (Method::GET, "/api/v1/nope".to_owned()),
        (Method::POST, "/api/v1/nope".to_owned()),
        (Method::GET, format!("/api/v1/nope/{MISSING_ID}")),
        (Method::DELETE, "/api/v1/nope/not-a-uuid".to_owned()),
        (Method::GET, format!("/api/v1/resource/{MISSING_ID}/extra")),
        (Method::GET, "/api/v1/_plinth_idempotency".to_owned()),
        (Method::GET, "/api/v1/sqlite_master".to_owned()),
        (Method::GET, "/api/v1/RESOURCE".to_owned()),
        (Method::GET, "/api/v1/resource%00".to_owned()),
        (Method::GET, "/api/v1/..%2F..%2Fetc%2Fpasswd".to_owned()),
    ];
    for (method, path) in cases {
        let r = app
            .send(
                app.request(method.clone(), &path)
                    .json(&json!({"name": "x"})),
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(
            !String::from_utf8_lossy(&r.raw).contains("sqlite"),
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn an_unknown_id_is_404_on_every_record_route() {
    let app = TestApp::spawn().await;
    let r = app.get_resp("resource", MISSING_ID, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app
        .patch_resp("resource", MISSING_ID, &json!({"name": "x"}), None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.delete_resp("resource", MISSING_ID, "", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let cases = [
        (Method::DELETE, "/api/v1/resource".to_owned()),
        (Method::PUT, "/api/v1/resource".to_owned()),
        (Method::PATCH, "/api/v1/resource".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::DELETE, "/readyz".to_owned()),
        (Method::POST, "/api/v1/version".to_owned()),
        (Method::POST, format!("/api/v1/resource/{id}")),
        (Method::GET, format!("/api/v1/resource/{id}/restore")),
        (Method::DELETE, format!("/api/v1/resource/{id}/restore")),
    ];
    for (method, path) in cases {
        let r = app
            .send(
                app.request(method.clone(), &path)
                    .json(&json!({"name": "y"})),
            )
            .await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
    // RFC 9110: a 405 says which methods the resource has.
    let r = app
        .send(app.request(Method::DELETE, "/api/v1/resource"))
        .await;
    let allow = r.header("allow").unwrap_or_default().to_owned();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "405 without a usable Allow header: {allow:?}"
    );
    // Nothing was written by any of them.
    let record = app.get_ok("resource", &id).await;
    assert_eq!(record["version"], json!(1));
    assert_eq!(record["status"], json!("active"));
    assert_eq!(app.count_all("resource").await, 1);
}

/// Sends `body` with an optional content type to `method path`.
async fn send_typed(
    app: &TestApp,
    method: Method,
    path: &str,
    ct: Option<&str>,
    body: &str,
) -> Resp {
    let mut req = app.request(method, path).body(body.to_owned());
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    app.send(req).await
}

#[tokio::test]
async fn bodies_that_are_not_declared_json_are_415_and_write_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let item = format!("/api/v1/resource/{}", id_of(&created));
    let body = r#"{"name": "y"}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some(""),
    ] {
        for (method, path) in [
            (Method::POST, "/api/v1/resource"),
            (Method::PUT, item.as_str()),
            (Method::PATCH, item.as_str()),
        ] {
            let r = send_typed(&app, method.clone(), path, ct, body).await;
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
            );
        }
    }
    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.get_ok("resource", &id_of(&created)).await, created);

    // JSON with parameters is still JSON.
    let r = send_typed(
        &app,
        Method::POST,
        "/api/v1/resource",
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    r.data(StatusCode::CREATED);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_and_write_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let big = json!({"name": "big", "padding": "a".repeat(1 << 20)});
    let r = app.create_resp("resource", &big).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let r = app
        .patch_resp("resource", &id_of(&created), &big, None)
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.get_ok("resource", &id_of(&created)).await, created);

    // Just under the limit, the body is read and judged on its content.
    let under = json!({"name": "x", "padding": "a".repeat((1 << 20) - 100)});
    let r = app.create_resp("resource", &under).await;
    assert_eq!(
        crate::helpers::assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["padding"]
    );
    // And the server still answers afterwards.
    app.get_ok("resource", &id_of(&created)).await;
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let config = ServerConfig {
        body_limit: 64,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let r = app
        .create_resp("resource", &json!({"name": "n".repeat(100)}))
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count_all("resource").await, 0);
    app.create_ok("resource", &json!({"name": "small"})).await;
}

#[tokio::test]
async fn conflicts_and_stale_versions_use_the_envelope() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let r = app.restore_resp("resource", &id).await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = app
        .patch_resp("resource", &id, &json!({"name": "y"}), Some("\"9\""))
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_without_internals() {
    let db = TestDb::sqlite().await;
    let state = db.state(&[]).await;
    let router = with_middleware(
        axum::Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("secret internal detail");
                }
                "unreachable"
            }),
        ),
        &ServerConfig::default(),
    )
    .expect("middleware builds")
    .with_state(state);

    let res = router
        .oneshot(
            Request::builder()
                .uri("/boom")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let header_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id")
        .to_owned();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("read the body");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("secret"), "internals leaked: {text}");
    assert!(!text.contains("panic"), "internals leaked: {text}");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    assert_eq!(body["success"], json!(false));
    assert_eq!(body["error"]["code"], json!("INTERNAL"));
    assert_eq!(body["error"]["request_id"], json!(header_id));
    assert!(body["error"]["details"].is_null(), "{body}");
}

#[tokio::test]
async fn the_middleware_gives_unknown_routes_of_a_bare_router_the_envelope() {
    let db = TestDb::sqlite().await;
    let state = db.state(&[]).await;
    let router = with_middleware(axum::Router::new(), &ServerConfig::default())
        .expect("middleware builds")
        .with_state(state);
    let res = router
        .oneshot(
            Request::builder()
                .uri("/anything")
                .header("x-request-id", "probe-1")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("read the body");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    assert_eq!(body["error"]["code"], json!("NOT_FOUND"));
    assert_eq!(body["error"]["request_id"], json!("probe-1"));
}

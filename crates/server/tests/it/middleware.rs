//! Request ids, health and version endpoints, CORS, and draining on shutdown.

use crate::helpers::{MISSING_ID, Resp, TestApp, assert_error, id_of, raw_header};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

async fn with_request_id(app: &TestApp, method: Method, path: &str, id: &[u8]) -> Resp {
    let (name, value) = raw_header("x-request-id", id);
    app.send(app.request(method, path).header(name, value))
        .await
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    let mut seen = std::collections::HashSet::new();
    let answers = [
        app.get_path("/healthz").await,
        app.get_path("/readyz").await,
        app.get_path("/api/v1/version").await,
        app.list_resp("resource", &[]).await,
        app.create_resp("resource", &json!({"name": "y"})).await,
        app.get_resp("resource", &id, None).await,
        app.get_resp("resource", &id, Some("\"1\"")).await,
        app.get_path("/nope").await,
        app.get_resp("resource", MISSING_ID, None).await,
        app.send(app.request(Method::POST, "/healthz")).await,
        app.create_resp("resource", &json!({})).await,
        app.purge_resp("resource", &id).await,
    ];
    for r in &answers {
        assert!(
            seen.insert(r.request_id().to_owned()),
            "request id reused: {r:?}"
        );
    }
    assert_eq!(answers[6].status, StatusCode::NOT_MODIFIED);
    assert_eq!(answers[11].status, StatusCode::NO_CONTENT);
}

/// The answer's `traceparent`: (trace id, span id, flags), each checked for shape.
fn traceparent(r: &Resp) -> (String, String, String) {
    let value = r
        .header("traceparent")
        .expect("a traceparent on every answer");
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && hex(parts[1], 32)
            && hex(parts[2], 16)
            && hex(parts[3], 2)
            && value == value.to_lowercase(),
        "not a version-00 traceparent: {value}"
    );
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

/// Every answer (errors, 404s and preflights included) carries a `traceparent`: the
/// caller's trace with this server's span when the caller sent a valid one, else a new
/// trace; a hostile value is never echoed.
#[tokio::test]
async fn every_answer_carries_a_traceparent() {
    let app = TestApp::spawn().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let valid = format!("00-{trace}-b7ad6b7169203331-01");
    let mut spans = std::collections::HashSet::new();
    for path in ["/healthz", "/nope", "/api/v1/resource"] {
        let r = app
            .send(app.request(Method::GET, path).header("traceparent", &valid))
            .await;
        let (got, span, flags) = traceparent(&r);
        assert_eq!((got.as_str(), flags.as_str()), (trace, "01"), "{path}");
        assert_ne!(span, "b7ad6b7169203331", "{path}: a span of its own");
        assert!(spans.insert(span), "{path}: span reused");

        let r = app.send(app.request(Method::GET, path)).await;
        let (fresh, _, flags) = traceparent(&r);
        assert_ne!(fresh, trace, "{path}");
        assert_eq!(flags, "00", "{path}");

        let hostile = format!("00-{trace}-b7ad6b7169203331-01\"x");
        let (name, value) = raw_header("traceparent", hostile.as_bytes());
        let r = app
            .send(app.request(Method::GET, path).header(name, value))
            .await;
        assert_ne!(traceparent(&r).0, trace, "{path}: {hostile} was continued");
    }
    let created = app
        .send(
            app.request(Method::POST, "/api/v1/resource")
                .header("traceparent", &valid)
                .json(&json!({})),
        )
        .await;
    assert_error(&created, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(traceparent(&created).0, trace);
}

#[tokio::test]
async fn a_sane_client_request_id_is_kept() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(128);
    for id in ["abc-123", "a.b:c_d", "0192f1c47a1e7c3a", long.as_str()] {
        let r = with_request_id(&app, Method::GET, "/healthz", id.as_bytes()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.request_id(), id);

        let r = with_request_id(&app, Method::GET, "/nope", id.as_bytes()).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(r.request_id(), id);
        assert_eq!(r.body["error"]["request_id"], json!(id));
    }
}

#[tokio::test]
async fn an_insane_client_request_id_is_replaced() {
    let app = TestApp::spawn().await;
    let ids: [Vec<u8>; 8] = [
        b"has space".to_vec(),
        b"with\"quote".to_vec(),
        b"semi;colon".to_vec(),
        b"x".repeat(129),
        b"y".repeat(200),
        b"".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
        b"<script>".to_vec(),
    ];
    for id in &ids {
        for path in ["/healthz", "/nope"] {
            let r = with_request_id(&app, Method::GET, path, id).await;
            let got = r.request_id();
            assert_ne!(got.as_bytes(), id.as_slice());
            assert!(
                got.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "replacement id {got:?} is not plain"
            );
            if path == "/nope" {
                // The envelope carries the replacement, not the client's text.
                assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
            }
        }
    }
}

#[tokio::test]
async fn health_readiness_and_version() {
    let app = TestApp::spawn().await;
    let r = app.get_path("/healthz").await;
    assert_eq!(r.data(StatusCode::OK)["status"], json!("ok"));

    let r = app.get_path("/readyz").await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["status"], json!("ready"));
    assert!(data["uptime_seconds"].is_u64(), "{data}");

    let r = app.get_path("/api/v1/version").await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["name"], json!("plinth"));
    assert_eq!(data["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(data["api"], json!("v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_draining_then_the_server_stops() {
    let config = ServerConfig {
        drain_delay: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    let mut app = TestApp::spawn_configured(Vec::new(), config).await;
    let r = app.get_path("/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    let id = id_of(&app.create_ok("resource", &json!({"name": "before"})).await);

    app.begin_shutdown();
    let deadline = Instant::now() + Duration::from_secs(2);
    let draining = loop {
        let r = app.get_path("/readyz").await;
        if r.status != StatusCode::OK || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_error(&draining, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(draining.header("retry-after"), Some("1"));
    // Still serving other requests while draining.
    app.get_ok("resource", &id).await;
    assert_eq!(app.get_path("/healthz").await.status, StatusCode::OK);

    app.stopped().await.expect("the server stops cleanly");
    let refused = app.request(Method::GET, "/healthz").send().await;
    assert!(refused.is_err(), "still answering after shutdown");
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            app.request(Method::GET, "/api/v1/resource")
                .header("origin", "https://app.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let config = ServerConfig {
        cors_origins: vec!["https://app.example".to_owned()],
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let r = app
        .send(
            app.request(Method::GET, "/api/v1/resource")
                .header("origin", "https://app.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // A browser on another origin may read what a client needs: ETag, Location, the
    // request id, and Retry-After on a 429 or 503.
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_lowercase();
    for h in [
        "etag",
        "location",
        "retry-after",
        "x-request-id",
        "traceparent",
    ] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }

    let r = app
        .send(
            app.request(Method::OPTIONS, "/api/v1/resource")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "PATCH")
                .header("access-control-request-headers", "if-match, content-type"),
        )
        .await;
    assert!(r.status.is_success(), "preflight: {:?}", r.status);
    // A preflight is a response too: it carries a request id.
    r.request_id();
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = list_header(&r, "access-control-allow-methods");
    for m in ["get", "post", "put", "patch", "delete"] {
        assert!(
            methods.iter().any(|x| x == m),
            "{m} not allowed: {methods:?}"
        );
    }
    assert_eq!(r.header("access-control-max-age"), Some("600"));

    // Every request header a client of the API sends is allowed, and only those.
    let sent = [
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "idempotency-key",
        "x-api-key",
        "x-request-id",
        "traceparent",
    ];
    let r = preflight(&app, "https://app.example", &sent.join(", ")).await;
    assert!(r.status.is_success(), "preflight: {:?}", r.status);
    let mut allowed = list_header(&r, "access-control-allow-headers");
    allowed.sort();
    let mut expected: Vec<String> = sent.iter().map(|h| (*h).to_owned()).collect();
    expected.sort();
    assert_eq!(allowed, expected);

    // Another origin is not allowed, on a preflight or a plain request: without an
    // Access-Control-Allow-Origin naming it, the browser refuses.
    let r = preflight(&app, "https://evil.example", "authorization").await;
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
    ] {
        assert!(
            r.header(h).is_none(),
            "{h} for another origin: {:?}",
            r.header(h)
        );
    }
    let r = app
        .send(
            app.request(Method::GET, "/api/v1/resource")
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("access-control-allow-origin").is_none());
}

/// A CORS preflight for a `PATCH` from `origin` asking to send `headers`.
async fn preflight(app: &TestApp, origin: &str, headers: &str) -> Resp {
    app.send(
        app.request(Method::OPTIONS, "/api/v1/resource")
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", headers),
    )
    .await
}

/// A comma-separated header as lowercase items (empty when absent).
fn list_header(r: &Resp, name: &str) -> Vec<String> {
    r.header(name)
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

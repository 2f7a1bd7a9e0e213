//! Connection limits: a slow head, an idle kept-alive connection and a trickled or stalled
//! body are cut off, a slow handler is answered 503, at the connection cap a new client is
//! still served (the connection idle the longest, or one trickling its body, is closed to
//! make room), and an answer a slow reader is still receiving is not cut off.

use crate::helpers::raw::{RawConn, STUCK};
use crate::helpers::{PASSWORD, TestApp, assert_error, decls, test_auth_config};
use plinth_server::ServerConfig;
use plinth_server::auth::HashCost;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Long enough that it never fires during a test.
const NEVER: Duration = Duration::from_secs(600);

fn config(header: Duration, keep_alive: Duration, request: Duration) -> ServerConfig {
    ServerConfig {
        header_read_timeout: header,
        keep_alive_timeout: keep_alive,
        request_timeout: request,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn a_head_sent_too_slowly_is_cut_off_after_the_header_timeout() {
    let app =
        TestApp::spawn_configured(Vec::new(), config(Duration::from_secs(1), NEVER, NEVER)).await;
    // A fresh connection that sends half a head and then nothing (slowloris).
    let mut fresh = RawConn::open(app.addr).await;
    assert!(
        fresh
            .send(b"GET /healthz HTTP/1.1\r\nHost: plinth.test\r\nX-A: ")
            .await
    );
    assert!(
        fresh.closed_within(STUCK).await,
        "a half-sent head kept its connection open"
    );
    // A kept-alive connection whose second head stops halfway: the header timeout applies
    // to later requests too, although the keep-alive timeout is long.
    let mut reused = RawConn::open(app.addr).await;
    assert_eq!(reused.get("/healthz").await.status, 200);
    assert!(reused.send(b"GET /healthz HTTP/1.1\r\nHost: pl").await);
    assert!(
        reused.closed_within(STUCK).await,
        "a half-sent second head kept its connection open"
    );
    // Meanwhile other clients are served.
    assert_eq!(
        RawConn::open(app.addr).await.get("/healthz").await.status,
        200
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app =
        TestApp::spawn_configured(Vec::new(), config(NEVER, Duration::from_secs(1), NEVER)).await;
    let mut conn = RawConn::open(app.addr).await;
    let first = conn.get("/healthz").await;
    assert_eq!(first.status, 200);
    assert!(
        !first.says_close(),
        "the first answer closed the connection"
    );
    // The connection is reusable before the timeout...
    assert_eq!(conn.get("/healthz").await.status, 200);
    // ...and closed once it has idled past it.
    assert!(
        conn.closed_within(STUCK).await,
        "an idle connection stayed open past the keep-alive timeout"
    );
}

#[tokio::test]
async fn a_body_trickled_past_the_request_timeout_is_answered_408_and_closed() {
    let app =
        TestApp::spawn_configured(Vec::new(), config(NEVER, NEVER, Duration::from_secs(1))).await;
    let mut conn = RawConn::open(app.addr).await;
    let head = format!(
        "POST /api/v1/resource HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        app.admin_token
    );
    assert!(conn.send(head.as_bytes()).await);
    // One byte every 200 ms: the 100 bytes would take 20 s.
    let body: Vec<u8> = b"{\"name\": \"trickled\""
        .iter()
        .copied()
        .cycle()
        .take(100)
        .collect();
    let r = conn
        .trickle(&body, Duration::from_millis(200))
        .await
        .expect("the trickled request got no answer");
    assert_eq!(r.status, 408, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], json!("REQUEST_TIMEOUT"));
    assert!(r.says_close(), "a 408 left the connection open: {r:?}");
    assert!(conn.closed_within(STUCK).await);
    assert_eq!(
        app.count_all("resource").await,
        0,
        "a cut-off body was written"
    );
}

#[tokio::test]
async fn a_write_slower_than_the_request_timeout_is_answered_503_with_its_outcome_unknown() {
    // Password hashing at a high cost is a real handler that takes a while.
    let mut auth = test_auth_config();
    auth.hash_cost = HashCost {
        memory_kib: 64 * 1024,
        iterations: 4,
        parallelism: 1,
    };
    let app = TestApp::spawn_full(
        Vec::new(),
        config(NEVER, NEVER, Duration::from_millis(50)),
        auth,
    )
    .await;
    let r = app
        .send(
            app.request_as(Method::POST, "/api/v1/auth/login", None)
                .json(&json!({"email": "admin@example.com", "password": PASSWORD})),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert!(r.header("retry-after").is_some());
    // A POST may still be applied after its 503: the answer says so, and how to retry.
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("outcome is unknown") && message.contains("Idempotency-Key"),
        "a timed-out write's 503 invites a blind retry: {message:?}"
    );
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_is_served_and_the_oldest_idle_connection_closed() {
    const CAP: usize = 20;
    let app = TestApp::spawn_configured(
        Vec::new(),
        ServerConfig {
            max_connections: CAP,
            ..config(NEVER, NEVER, NEVER)
        },
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        let mut conn = RawConn::open(app.addr).await;
        assert_eq!(conn.get("/healthz").await.status, 200);
        idle.push(conn);
    }
    // A fresh client gets an answer although every slot is held by an idle connection.
    let r = tokio::time::timeout(STUCK, app.get_path("/healthz"))
        .await
        .expect("a new client was not served at the connection cap");
    assert_eq!(r.status, StatusCode::OK);
    // Room was made by closing the connection idle the longest: the first one.
    assert!(
        idle[0].closed_within(STUCK).await,
        "no idle connection was closed at the cap"
    );
    // The most recent idle connection was left alone and still works.
    let last = idle.last_mut().expect("connections");
    assert_eq!(last.get("/healthz").await.status, 200);
}

/// The head of a create of `length` body bytes, as the admin.
fn create_head(app: &TestApp, length: usize) -> String {
    format!(
        "POST /api/v1/resource HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        app.admin_token
    )
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_after_the_header_timeout() {
    let app =
        TestApp::spawn_configured(Vec::new(), config(Duration::from_secs(1), NEVER, NEVER)).await;
    let mut conn = RawConn::open(app.addr).await;
    assert!(conn.send(create_head(&app, 100).as_bytes()).await);
    // Part of the body, then nothing (the request timeout is far away).
    assert!(conn.send(b"{\"name\": ").await);
    let r = conn
        .try_response()
        .await
        .expect("a stalled body got no answer");
    assert_eq!(r.status, 408, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], json!("REQUEST_TIMEOUT"));
    assert!(r.says_close(), "a 408 left the connection open: {r:?}");
    assert!(conn.closed_within(STUCK).await);
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn at_the_cap_connections_trickling_bodies_make_room_for_a_new_client() {
    const CAP: usize = 5;
    let app = TestApp::spawn_configured(
        Vec::new(),
        ServerConfig {
            max_connections: CAP,
            ..config(Duration::from_secs(1), NEVER, NEVER)
        },
    )
    .await;
    // Every slot holds a create whose body arrives one byte every 200 ms: never idle
    // long enough for the body-idle timeout, and never finished.
    let mut trickling = tokio::task::JoinSet::new();
    for _ in 0..CAP {
        let mut conn = RawConn::open(app.addr).await;
        assert!(conn.send(create_head(&app, 10_000).as_bytes()).await);
        trickling.spawn(async move {
            for _ in 0..150 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if !conn.send(b" ").await {
                    return true;
                }
            }
            false
        });
    }
    let r = tokio::time::timeout(STUCK, app.get_path("/healthz"))
        .await
        .expect("a new client was not served while trickled bodies held every slot");
    assert_eq!(r.status, StatusCode::OK);
    // Room was made by closing one of them.
    let closed = tokio::time::timeout(STUCK, trickling.join_next())
        .await
        .expect("no trickling connection was closed")
        .expect("a task")
        .expect("the task ran");
    assert!(closed, "a trickling connection ran to its end");
    trickling.abort_all();
}

#[tokio::test]
async fn an_answer_a_slow_reader_is_still_receiving_is_not_cut_off() {
    let app = TestApp::spawn_configured(
        decls(json!([{ "name": "doc", "fields": [{ "name": "body", "type": "text" }] }])),
        config(Duration::from_secs(1), Duration::from_secs(1), NEVER),
    )
    .await;
    // A list of about 14 MB: far more than the socket buffers hold.
    let big = "x".repeat(900_000);
    for i in 0..16 {
        app.create_ok("doc", &json!({"name": format!("doc {i}"), "body": big}))
            .await;
    }
    let mut conn = RawConn::open_slow_reader(app.addr).await;
    let req = format!(
        "GET /api/v1/doc?limit=100 HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\r\n",
        app.admin_token
    );
    assert!(conn.send(req.as_bytes()).await);
    // The client reads nothing for longer than both the idle and the header timeouts...
    tokio::time::sleep(Duration::from_secs(3)).await;
    // ...and still gets the whole answer.
    let r = conn
        .try_response()
        .await
        .expect("the answer was cut off while the client was reading it");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(16));
}

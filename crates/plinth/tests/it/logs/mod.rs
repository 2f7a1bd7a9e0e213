//! Logs: JSON lines on stdout, one access line per request, filtered by `LOG_LEVEL`, never
//! carrying request bodies; `trace`: the W3C `traceparent`; `file`: the log directory.

mod file;
mod trace;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, LOGIN_REQUEST_ID, Proc, Server, TestDir, log_field, log_message,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCESS: &str = "plinth::access";

fn access_lines(proc: &Proc) -> Vec<Value> {
    proc.logs()
        .into_iter()
        .filter(|l| l["target"] == ACCESS)
        .collect()
}

/// The one access line of the request with this id.
fn access_line(lines: &[Value], request_id: &str) -> Value {
    let matching: Vec<&Value> = lines
        .iter()
        .filter(|l| log_field(l, "request_id") == Some(&json!(request_id)))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "access lines for request {request_id}: {matching:?}"
    );
    matching[0].clone()
}

fn assert_access(line: &Value, method: &str, route: &str, status: u16) {
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(log_field(line, "method"), Some(&json!(method)), "{line}");
    assert_eq!(log_field(line, "route"), Some(&json!(route)), "{line}");
    assert_eq!(log_field(line, "status"), Some(&json!(status)), "{line}");
    let latency = log_field(line, "latency_ms")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("latency_ms is not a number: {line}"));
    assert!((0.0..60_000.0).contains(&latency), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_logs_one_access_line_with_its_request_id() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let created = server
        .send(
            server
                .client()
                .post(server.url("/api/v1/resource"))
                .header("x-request-id", "it-create-1")
                .json(&json!({"name": "logged"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.header("x-request-id"),
        Some("it-create-1"),
        "a sane client id is kept"
    );
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();

    let read = server.get(&format!("/api/v1/resource/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    let read_id = read
        .header("x-request-id")
        .expect("X-Request-Id")
        .to_owned();
    assert!(!read_id.is_empty());

    let missing = server.get("/no/such/route").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing_id = missing
        .header("x-request-id")
        .expect("X-Request-Id")
        .to_owned();
    assert_eq!(missing.body["error"]["request_id"], json!(missing_id));

    let bad = server.post("/api/v1/resource", &json!({"name": ""})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad_id = bad.header("x-request-id").expect("X-Request-Id").to_owned();

    let guest = server
        .send(
            server
                .guest()
                .post(server.url("/api/v1/resource"))
                .header("x-request-id", "it-guest-write")
                .json(&json!({"name": "guest"})),
        )
        .await;
    guest.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    let proc = server.stop().await;
    let lines = access_lines(&proc);
    // The harness's login is a request like any other.
    assert_access(
        &access_line(&lines, LOGIN_REQUEST_ID),
        "POST",
        "/api/v1/auth/login",
        200,
    );
    assert_access(
        &access_line(&lines, "it-guest-write"),
        "POST",
        "/api/v1/{model}",
        401,
    );
    assert_access(
        &access_line(&lines, "it-create-1"),
        "POST",
        "/api/v1/{model}",
        201,
    );
    assert_access(
        &access_line(&lines, &read_id),
        "GET",
        "/api/v1/{model}/{id}",
        200,
    );
    assert_access(
        &access_line(&lines, &bad_id),
        "POST",
        "/api/v1/{model}",
        400,
    );
    let unmatched = access_line(&lines, &missing_id);
    assert_eq!(log_field(&unmatched, "status"), Some(&json!(404)));
    assert_ne!(
        log_field(&unmatched, "route"),
        Some(&json!("/no/such/route")),
        "the route is a pattern, never the raw path"
    );
    assert_eq!(lines.len(), 6, "one line per request: {lines:?}");

    // Events inside a request carry its span: request id, method and route.
    let logs = proc.logs();
    let login = logs
        .iter()
        .find(|l| log_message(l) == Some("login"))
        .unwrap_or_else(|| panic!("no login event\n{}", proc.describe()));
    assert_eq!(login["target"], "plinth::security", "{login}");
    assert_eq!(log_field(login, "event"), Some(&json!("login")), "{login}");
    assert_eq!(
        log_field(login, "request_id"),
        Some(&json!(LOGIN_REQUEST_ID)),
        "{login}"
    );
    assert_eq!(log_field(login, "method"), Some(&json!("POST")), "{login}");
    assert_eq!(
        log_field(login, "route"),
        Some(&json!("/api/v1/auth/login")),
        "{login}"
    );
    assert!(
        log_field(login, "user_id")
            .and_then(Value::as_str)
            .is_some(),
        "the login event names the user by id: {login}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_warn_hides_access_lines() {
    let dir = TestDir::new();
    let server = Server::start_quiet(&dir, &[("LOG_LEVEL", "warn")]).await;
    let id = server.create("resource", &json!({"name": "quiet"})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    server.read("resource", &id).await;
    let failed = server
        .login("nobody@plinth.test", "not-the-password-at-all")
        .await;
    failed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let proc = server.stop().await;
    let logs = proc.logs();
    assert!(
        access_lines(&proc).is_empty(),
        "access lines at warn: {logs:?}"
    );
    assert!(
        logs.iter()
            .all(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "only warnings and errors at LOG_LEVEL=warn: {logs:?}"
    );
    let failure = logs
        .iter()
        .find(|l| log_field(l, "event") == Some(&json!("login_failed")))
        .unwrap_or_else(|| panic!("the failed login is a security warning: {logs:?}"));
    assert_eq!(failure["level"], "WARN", "{failure}");
    assert_eq!(failure["target"], "plinth::security", "{failure}");
    assert!(
        !proc.stdout().contains("nobody@plinth.test"),
        "the attempted email reached the logs: {logs:?}"
    );
}

/// A warning or error inside a request names the request at any log level: the request id
/// is what a client quotes from an error envelope, so it must lead to the log line even when
/// only warnings are kept (`LOG_LEVEL=warn` in production).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_keep_their_request_id_at_log_level_warn() {
    let dir = TestDir::new();
    let server = Server::start_quiet(&dir, &[("LOG_LEVEL", "warn")]).await;
    let failed = server
        .login("nobody@plinth.test", "not-the-password-at-all")
        .await;
    failed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let proc = server.stop().await;
    let logs = proc.logs();
    let failure = logs
        .iter()
        .find(|l| log_field(l, "event") == Some(&json!("login_failed")))
        .unwrap_or_else(|| panic!("the failed login is a security warning: {logs:?}"));
    // At LOG_LEVEL=warn the request span is not built (it is INFO, for speed); warnings and
    // errors of a request carry request_id and route as fields of their own.
    assert_eq!(
        log_field(failure, "request_id"),
        Some(&json!(LOGIN_REQUEST_ID)),
        "{failure}"
    );
    assert_eq!(
        log_field(failure, "route"),
        Some(&json!("/api/v1/auth/login")),
        "{failure}"
    );
}

/// Writes values through every kind of request and asserts none reaches the logs.
async fn exercise_secrets(server: &Server, secrets: &[&str; 4]) {
    let created = server
        .create("resource", &json!({"name": secrets[0]}))
        .await;
    let id = created["id"].as_str().expect("id");
    let patched = server
        .patch(
            &format!("/api/v1/resource/{id}"),
            &json!({"name": secrets[1]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let invalid = server
        .post(
            "/api/v1/resource",
            &json!({"name": "ok", "unknown_field": secrets[2]}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.body);
    let too_long = server
        .post("/api/v1/resource", &json!({"name": secrets[3].repeat(20)}))
        .await;
    assert_eq!(
        too_long.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_long.body
    );
    let malformed = server
        .send(
            server
                .client()
                .post(server.url("/api/v1/resource"))
                .header("content-type", "application/json")
                .body(format!("{{\"name\": \"{}\"", secrets[0])),
        )
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );
    let filtered = server
        .get(&format!("/api/v1/resource?name={}", secrets[1]))
        .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_values_never_reach_the_logs() {
    let secrets = [
        "super-secret-name-123",
        "patched-secret-456",
        "unknown-field-secret-789",
        "too-long-secret-",
    ];
    for level in ["info", "debug"] {
        let dir = TestDir::new();
        let server = Server::start_with(&dir, &[], &[("LOG_LEVEL", level)]).await;
        exercise_secrets(&server, &secrets).await;
        let proc = server.stop().await;
        assert!(
            access_lines(&proc).len() >= 6,
            "requests were logged at {level}"
        );
        for secret in secrets {
            assert!(
                !proc.stdout().contains(secret) && !proc.stderr().contains(secret),
                "{secret:?} appears in the logs at LOG_LEVEL={level}\n{}",
                proc.describe()
            );
        }
    }
}

/// Throttled logins are a security event naming the client address, which behind a trusted
/// proxy is the one it reports in `X-Forwarded-For`; the attempted email is not logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_logins_log_login_throttled_with_the_forwarded_client() {
    let dir = TestDir::new();
    let server = Server::start_with(
        &dir,
        &[],
        &[
            ("PLINTH_TRUSTED_PROXIES", "127.0.0.1,::1"),
            ("PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT_ADDRESS", "1"),
        ],
    )
    .await;
    let attempt = || {
        server
            .guest()
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", "203.0.113.77")
            .header("x-request-id", "throttled-login")
            .json(&json!({"email": "victim@plinth.test", "password": "not-the-password-at-all"}))
    };
    server
        .send(attempt())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    server
        .send(attempt())
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let proc = server.stop().await;
    let logs = proc.logs();
    let throttled = logs
        .iter()
        .find(|l| log_field(l, "event") == Some(&json!("login_throttled")))
        .unwrap_or_else(|| panic!("no login_throttled event\n{}", proc.describe()));
    assert_eq!(throttled["level"], "WARN", "{throttled}");
    assert_eq!(throttled["target"], "plinth::security", "{throttled}");
    assert_eq!(
        log_field(throttled, "address"),
        Some(&json!("203.0.113.77")),
        "{throttled}"
    );
    assert_eq!(
        log_field(throttled, "limit"),
        Some(&json!("account_address")),
        "{throttled}"
    );
    assert_eq!(
        log_field(throttled, "request_id"),
        Some(&json!("throttled-login")),
        "{throttled}"
    );
    assert!(
        !proc.stdout().contains("victim@plinth.test"),
        "the attempted email reached the logs"
    );
}

/// Whether `text` is `len` lowercase hex digits.
fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Every line has an RFC 3339 UTC timestamp and a level; an access line has the request's
/// id, trace, principal (an id, never an email), route, method, status and latency, each
/// of its JSON type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_typed_fields_and_name_the_principal_by_id() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let me = server.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let admin_id = me.body["data"]["id"].as_str().expect("id").to_owned();
    let created = server
        .send(
            server
                .client()
                .post(server.url("/api/v1/resource"))
                .header("x-request-id", "typed-create")
                .json(&json!({"name": "typed"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let proc = server.stop().await;
    let logs = proc.logs();
    for line in &logs {
        let stamp = line["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("timestamp {stamp:?} is not RFC 3339 ({e}): {line}"));
        assert!(stamp.ends_with('Z') && parsed.offset().is_utc(), "{line}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&line["level"].as_str().unwrap_or("")),
            "{line}"
        );
    }
    let line = access_line(&access_lines(&proc), "typed-create");
    assert_access(&line, "POST", "/api/v1/{model}", 201);
    assert!(
        log_field(&line, "status").is_some_and(Value::is_u64),
        "{line}"
    );
    assert_eq!(
        log_field(&line, "principal"),
        Some(&json!(format!("user:{admin_id}"))),
        "{line}"
    );
    for (field, len) in [("trace_id", 32), ("span_id", 16)] {
        let value = log_field(&line, field)
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(
            is_hex(value, len),
            "{field} is not {len} hex digits: {line}"
        );
    }
    let stdout = proc.stdout();
    for secret in [ADMIN_EMAIL, ADMIN_PASSWORD, "plinth.test"] {
        assert!(
            !stdout.contains(secret),
            "{secret:?} reached the logs\n{stdout}"
        );
    }
}

/// `log.access = false` turns off the access lines only: the request's other events stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_can_be_turned_off_alone() {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, &[], &[("PLINTH_LOG_ACCESS", "false")]).await;
    server
        .create("resource", &json!({"name": "unlogged"}))
        .await;
    let failed = server
        .login("nobody@plinth.test", "not-the-password-at-all")
        .await;
    failed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let proc = server.stop().await;
    let logs = proc.logs();
    assert!(access_lines(&proc).is_empty(), "access lines: {logs:?}");
    assert!(proc.logged("listening"), "{logs:?}");
    let login = logs
        .iter()
        .find(|l| log_message(l) == Some("login"))
        .unwrap_or_else(|| panic!("the info-level login event stays: {logs:?}"));
    assert_eq!(
        log_field(login, "request_id"),
        Some(&json!(LOGIN_REQUEST_ID))
    );
    assert!(
        logs.iter()
            .any(|l| log_field(l, "event") == Some(&json!("login_failed"))),
        "the warning stays: {logs:?}"
    );
}

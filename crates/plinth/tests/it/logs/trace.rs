//! The W3C `traceparent`: a valid one is continued (its trace id in the request's log lines
//! and in the answer, with this server's span id), a missing one is started, and a hostile
//! one is replaced, never echoed.

use super::{access_line, access_lines, is_hex};
use crate::helpers::{Reply, Server, TestDir, log_field};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The answer's `traceparent`, split into trace id, span id and flags (all checked).
fn answered(reply: &Reply) -> (String, String, String) {
    let value = reply
        .header("traceparent")
        .expect("a traceparent on every answer");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    assert!(
        is_hex(parts[1], 32) && parts[1] != "0".repeat(32),
        "{value}"
    );
    assert!(
        is_hex(parts[2], 16) && parts[2] != "0".repeat(16),
        "{value}"
    );
    assert!(is_hex(parts[3], 2), "{value}");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

async fn get_with(server: &Server, request_id: &str, traceparent: Option<&str>) -> Reply {
    let mut req = server
        .client()
        .get(server.url("/api/v1/resource"))
        .header("x-request-id", request_id);
    if let Some(value) = traceparent {
        req = req.header("traceparent", value);
    }
    let reply = server.send(req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

fn logged_ids(line: &Value) -> (Option<&str>, Option<&str>) {
    (
        log_field(line, "trace_id").and_then(Value::as_str),
        log_field(line, "span_id").and_then(Value::as_str),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_traceparent_is_continued_and_a_missing_one_started() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let valid = format!("00-{TRACE}-{PARENT}-01");
    let continued = get_with(&server, "trace-valid", Some(&valid)).await;
    let (trace, span, flags) = answered(&continued);
    assert_eq!(trace, TRACE, "the caller's trace goes on");
    assert_ne!(span, PARENT, "this server's span is its own");
    assert_eq!(flags, "01", "the sampled flag is kept");

    let started = get_with(&server, "trace-none", None).await;
    let (new_trace, new_span, new_flags) = answered(&started);
    assert_ne!(new_trace, TRACE);
    assert_eq!(new_flags, "00");
    let again = get_with(&server, "trace-none-2", None).await;
    assert_ne!(answered(&again).0, new_trace, "each new trace is new");

    // A failed login inside a trace: its warning carries the request id and the trace.
    let failed = server
        .send(
            server
                .guest()
                .post(server.url("/api/v1/auth/login"))
                .header("x-request-id", "trace-login")
                .header("traceparent", &valid)
                .json(&json!({"email": "nobody@plinth.test", "password": "not-the-password"})),
        )
        .await;
    failed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let (login_trace, _, _) = answered(&failed);
    assert_eq!(login_trace, TRACE);

    let proc = server.stop().await;
    let lines = access_lines(&proc);
    let line = access_line(&lines, "trace-valid");
    assert_eq!(
        logged_ids(&line),
        (Some(TRACE), Some(span.as_str())),
        "{line}"
    );
    let line = access_line(&lines, "trace-none");
    assert_eq!(
        logged_ids(&line),
        (Some(new_trace.as_str()), Some(new_span.as_str())),
        "{line}"
    );
    let logs = proc.logs();
    let warning = logs
        .iter()
        .find(|l| log_field(l, "event") == Some(&json!("login_failed")))
        .unwrap_or_else(|| panic!("no login_failed\n{}", proc.describe()));
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(
        log_field(warning, "request_id"),
        Some(&json!("trace-login"))
    );
    assert_eq!(log_field(warning, "trace_id"), Some(&json!(TRACE)));
    let login_access = access_line(&lines, "trace-login");
    assert_eq!(log_field(&login_access, "status"), Some(&json!(401)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traceparents_are_replaced_never_echoed() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let long = format!("00-{TRACE}-{PARENT}-01{}", "-cafe".repeat(2000));
    let hostile = [
        // Wrong version, and version ff (forbidden).
        format!("01-{TRACE}-{PARENT}-01"),
        format!("ff-{TRACE}-{PARENT}-01"),
        // Too long: a valid prefix with more after it.
        long,
        format!("00-{TRACE}-{PARENT}-01,00-{TRACE}-{PARENT}-01"),
        // Bad hex, uppercase, all zeros, a short id.
        format!("00-{}zz-{PARENT}-01", &TRACE[..30]),
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        format!("00-{}-{PARENT}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{TRACE}-{}-01", &PARENT[..15]),
        // Text aimed at the JSON log line or at a header.
        format!("00-{TRACE}-{PARENT}-01\",\"level\":\"ERROR"),
        "00-injected\",\"principal\":\"user:admin-1\"}-01".to_owned(),
    ];
    for (i, value) in hostile.iter().enumerate() {
        let reply = get_with(&server, &format!("trace-hostile-{i}"), Some(value)).await;
        let (trace, _, flags) = answered(&reply);
        assert_ne!(trace, TRACE, "{value:?} was continued");
        assert_eq!(flags, "00", "{value:?}");
        let header = reply.header("traceparent").unwrap_or_default();
        assert_eq!(header.len(), 55, "{value:?} echoed: {header}");
    }
    let proc = server.stop().await;
    let lines = access_lines(&proc);
    for i in 0..hostile.len() {
        let line = access_line(&lines, &format!("trace-hostile-{i}"));
        let (trace, span) = logged_ids(&line);
        assert!(trace.is_some_and(|t| is_hex(t, 32) && t != TRACE), "{line}");
        assert!(span.is_some_and(|s| is_hex(s, 16)), "{line}");
    }
    let stdout = proc.stdout();
    for marker in [
        "cafe-cafe",
        "injected",
        "user:admin-1",
        "zz-",
        &TRACE.to_uppercase(),
    ] {
        assert!(!stdout.contains(marker), "{marker:?} reached the logs");
    }
    assert!(
        !stdout.contains(TRACE),
        "a hostile traceparent's trace id was logged"
    );
}

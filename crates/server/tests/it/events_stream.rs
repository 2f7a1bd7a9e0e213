//! The change feed's stream itself: refusals of bad queries with the usual envelope, the
//! heartbeat, a reader too slow for the writes cut off with `slow_consumer`, streams ended
//! by a graceful shutdown without holding it up, and the metrics.

use crate::helpers::raw::RawConn;
use crate::helpers::{TestApp, assert_error, decls, detail_fields};
use plinth_server::{RealtimeConfig, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn with_realtime(realtime: RealtimeConfig) -> TestApp {
    let config = ServerConfig {
        realtime,
        ..ServerConfig::default()
    };
    TestApp::spawn_configured(
        decls(json!([{"name": "book", "fields": [
            {"name": "pages", "type": "integer"},
            {"name": "text", "type": "text"}
        ]}])),
        config,
    )
    .await
}

#[tokio::test]
async fn bad_stream_queries_are_refused_like_bad_lists() {
    let app = with_realtime(RealtimeConfig::default()).await;
    for (path, field) in [
        ("/api/v1/book/events?after=abc", "after"),
        ("/api/v1/book/events?after=-1", "after"),
        ("/api/v1/book/events?limit=5", "limit"),
        ("/api/v1/book/events?sort=name", "sort"),
        ("/api/v1/book/events?cursor=x", "cursor"),
        ("/api/v1/book/events?nope=1", "nope"),
        ("/api/v1/book/events?pages[zz]=1", "pages[zz]"),
        ("/api/v1/book/events?pages=ten", "pages"),
        ("/api/v1/book/events?id=not-a-uuid", "id"),
        ("/api/v1/events", "models"),
        ("/api/v1/events?models=book&pages=1", "pages"),
        ("/api/v1/events?models=book&after=x", "after"),
        ("/api/v1/events?models=book,,book", "models"),
    ] {
        let r = app.get_path(path).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert!(fields.contains(&field.to_owned()), "{path}: {}", r.body);
    }
    let r = app
        .send(
            app.request(Method::GET, "/api/v1/book/events")
                .header("last-event-id", "abc"),
        )
        .await;
    let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(fields, ["Last-Event-ID"]);
    // Every bad parameter at once.
    let r = app
        .get_path("/api/v1/book/events?limit=5&after=x&nope=1")
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let mut fields = detail_fields(&r.body);
    fields.sort();
    assert_eq!(fields, ["after", "limit", "nope"]);
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let r = app
        .get_path(&format!("/api/v1/book/events?id={}", many.join(",")))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["id"]
    );
    let models: Vec<String> = (0..33).map(|i| format!("m{i}")).collect();
    let r = app
        .get_path(&format!("/api/v1/events?models={}", models.join(",")))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["models"]
    );

    let r = app.get_path("/api/v1/nope/events").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.get_path("/api/v1/events?models=book,nope").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_quiet_stream_gets_heartbeats() {
    let app = with_realtime(RealtimeConfig {
        heartbeat: Duration::from_secs(1),
        ..RealtimeConfig::default()
    })
    .await;
    let (mut sse, _) = app.subscribe("/api/v1/book/events").await;
    let event = sse
        .next_within(Duration::from_secs(5))
        .await
        .expect("the stream is open");
    assert_eq!(event.event, "heartbeat");
    assert!(
        String::from_utf8_lossy(&sse.raw).contains("\n: heartbeat\n\n"),
        "{}",
        String::from_utf8_lossy(&sse.raw)
    );
}

/// The metrics text, as a loopback scrape reads it.
async fn metrics(app: &TestApp) -> String {
    let r = app
        .send(app.request_as(Method::GET, "/metrics", None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.raw).expect("text")
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_cut_off_and_told_why() {
    let app = with_realtime(RealtimeConfig {
        buffer: 8,
        ..RealtimeConfig::default()
    })
    .await;
    let mut stream = RawConn::open_slow_reader(app.addr).await.into_stream();
    let head = format!(
        "GET /api/v1/book/events HTTP/1.1\r\nHost: plinth.test\r\nAuthorization: Bearer {}\r\n\r\n",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: ready") {
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut chunk))
            .await
            .expect("ready in time")
            .expect("read");
        assert!(n > 0, "closed before ready");
        seen.extend_from_slice(&chunk[..n]);
    }
    // The client reads nothing more while large records are written: the connection's
    // buffers fill, and the stream falls behind.
    let text = "x".repeat(64 * 1024);
    for i in 0..200 {
        app.create_ok("book", &json!({"name": format!("b{i}"), "text": text}))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tail: Vec<u8> = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no slow_consumer end in time");
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut chunk))
            .await
            .expect("the stream neither ended nor sent more")
            .expect("read");
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 4096);
        }
        if String::from_utf8_lossy(&tail)
            .contains("event: end\ndata: {\"reason\":\"slow_consumer\"}")
        {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&tail).contains("{\"reason\":\"slow_consumer\"}"),
        "{}",
        String::from_utf8_lossy(&tail)
    );
    let text = metrics(&app).await;
    assert_eq!(
        metric(
            &text,
            "plinth_realtime_subscribers_cut_total{reason=\"slow_consumer\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "plinth_realtime_subscriptions"), 0.0);
}

#[tokio::test]
async fn streams_are_counted_and_their_events_too() {
    let app = with_realtime(RealtimeConfig::default()).await;
    let before = metrics(&app).await;
    assert_eq!(metric(&before, "plinth_realtime_subscriptions"), 0.0);
    assert_eq!(metric(&before, "plinth_realtime_events_sent_total"), 0.0);
    let (mut a, _) = app.subscribe("/api/v1/book/events").await;
    let (mut b, _) = app.subscribe("/api/v1/events?models=book").await;
    assert_eq!(
        metric(&metrics(&app).await, "plinth_realtime_subscriptions"),
        2.0
    );
    app.create_ok("book", &json!({"name": "one"})).await;
    a.changes(1).await;
    b.changes(1).await;
    assert_eq!(
        metric(&metrics(&app).await, "plinth_realtime_events_sent_total"),
        2.0
    );
    drop(a);
    drop(b);
    // The streams notice their clients left at their next write at the latest.
    app.create_ok("book", &json!({"name": "two"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&metrics(&app).await, "plinth_realtime_subscriptions") != 0.0 {
        assert!(Instant::now() < deadline, "streams still counted as open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_graceful_shutdown_ends_open_streams_without_waiting_for_them() {
    let mut app = with_realtime(RealtimeConfig::default()).await;
    let (mut sse, _) = app.subscribe("/api/v1/book/events").await;
    let started = Instant::now();
    app.begin_shutdown();
    let end = sse.next().await;
    assert_eq!(end.event, "end");
    assert_eq!(end.data, json!({"reason": "shutdown"}));
    assert!(
        sse.next_within(Duration::from_secs(5)).await.is_none(),
        "closed after end"
    );
    tokio::time::timeout(Duration::from_secs(10), app.stopped())
        .await
        .expect("the drain is not held up by the stream")
        .expect("a clean stop");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_long_replay_under_writes_gets_ready() {
    let app = with_realtime(RealtimeConfig {
        buffer: 8,
        ..RealtimeConfig::default()
    })
    .await;
    let (_, start) = app.subscribe("/api/v1/book/events").await;
    for n in 0..1500 {
        let r = app
            .request_as(Method::POST, "/api/v1/book", Some(&app.admin_token))
            .json(&json!({"name": format!("b{n}"), "pages": 1}))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // A steady trickle of writes, as on any busy server.
    let (client, url, token) = (
        reqwest::Client::new(),
        app.url("/api/v1/book"),
        app.admin_token.clone(),
    );
    let writer = tokio::spawn(async move {
        loop {
            let _ = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"name": "live", "pages": 1}))
                .send()
                .await;
        }
    });
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        // A filtered stream resuming from before the backlog: it is sent nothing during the
        // replay, which outlasts many more live writes than its buffer holds.
        let mut sse = app
            .subscribe_as(
                "/api/v1/book/events?name=nothing-matches",
                Some(&app.admin_token),
                Some(start),
            )
            .await;
        let first = sse.next().await;
        outcomes.push((first.event.clone(), first.data.clone()));
    }
    writer.abort();
    assert!(
        outcomes.iter().all(|(e, _)| e == "ready"),
        "a stream replaying under writes gets ready: {outcomes:?}"
    );
}

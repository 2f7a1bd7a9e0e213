//! The process lifecycle: graceful drain on SIGTERM, SIGINT. (Durability across SIGKILL is
//! the crash harness, `crash`.)

mod stream;

use crate::helpers::{Server, TestDir, bearer_client, log_field, log_message, reply};
use reqwest::StatusCode;
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use stream::Stream;

/// A rolling deploy's old instance: SIGTERM under a steady stream of requests from several
/// clients, on kept-alive and on new connections. `/readyz` turns 503 at once while every
/// other request is served through the drain delay; the in-flight ones complete; after
/// the listener closes, a client sees its connection refused or closed, never an error
/// answer; the process exits 0 and every acknowledged create is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reports_unready_while_draining_then_exits_cleanly() {
    let dir = TestDir::new();
    let mut server = Server::start_with(&dir, &[], &[("PLINTH_DRAIN_SECONDS", "3")]).await;
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["data"]["status"], "ready");
    let stream = Stream::start(&server, 2, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A create sent just before the signal.
    let (client, url) = (server.client(), server.url("/api/v1/resource"));
    let in_flight = tokio::spawn(async move {
        reply(
            client
                .post(url)
                .json(&json!({"name": "sent-before-sigterm"}))
                .send()
                .await
                .expect("in-flight create"),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.proc.signal("TERM");
    let signalled = Instant::now();

    let unready = loop {
        let r = server.get("/readyz").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            signalled.elapsed() < Duration::from_millis(2500),
            "/readyz still 200 after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(unready.body["success"], false);
    assert_eq!(unready.body["error"]["code"], "UNAVAILABLE");
    let retry: u64 = unready
        .header("retry-after")
        .expect("Retry-After on 503")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1);
    let request_id = unready.header("x-request-id").expect("X-Request-Id");
    assert_eq!(unready.body["error"]["request_id"], request_id);

    let alive = server.get("/healthz").await;
    assert_eq!(
        alive.status,
        StatusCode::OK,
        "liveness must hold while draining"
    );
    assert_eq!(alive.body["data"]["status"], "ok");

    let created = in_flight.await.expect("in-flight task");
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();

    let status = server.proc.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", server.proc.describe());
    assert!(
        signalled.elapsed() >= Duration::from_secs(3),
        "exited before the drain delay"
    );
    let outcomes = stream.stop().await;
    let created = stream::check(&outcomes, signalled, Duration::from_secs(3));
    let logs = server.proc.logs();
    let signal = logs
        .iter()
        .find(|l| log_message(l) == Some("signal received"))
        .expect("a 'signal received' line");
    assert_eq!(log_field(signal, "signal"), Some(&json!("SIGTERM")));
    let position = |m: &str| logs.iter().position(|l| log_message(l) == Some(m));
    let finished = position("in-flight requests finished").expect("drain logged");
    let closed = position("database closed").expect("'database closed' logged");
    assert!(
        finished < closed,
        "the database closes after the last request"
    );
    drop(server);

    let server = Server::start(&dir).await;
    assert_eq!(
        server.read("resource", &id).await["name"],
        "sent-before-sigterm"
    );
    for (id, name) in &created {
        assert_eq!(&server.read("resource", id).await["name"], name);
    }
}

/// A request whose body is still arriving when SIGTERM lands is served, even with no drain
/// delay; only then does the process exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_in_flight_at_sigterm_completes() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir).await;
    let body = json!({"name": "half-sent-when-signalled"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let addr = server.authority();
    let token = server.tokens().access_token.clone();
    let mut tcp = std::net::TcpStream::connect(&addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        tcp,
        "POST /api/v1/resource HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .expect("send the head of the request");
    tcp.flush().expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp.write_all(tail.as_bytes())
        .expect("send the rest of the body");
    let response = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        let _ = tcp.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .expect("reader task");
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "in-flight create after SIGTERM: {response:?}\n{}",
        server.proc.describe()
    );
    let json_start = response.find('{').expect("a JSON body");
    let created: serde_json::Value =
        serde_json::from_str(response[json_start..].trim_end()).expect("JSON body");
    let id = created["data"]["id"].as_str().expect("id").to_owned();

    let status = server.proc.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", server.proc.describe());
    assert!(
        server.proc.logged("database closed"),
        "{}",
        server.proc.describe()
    );
    drop(server);

    let server = Server::start(&dir).await;
    assert_eq!(
        server.read("resource", &id).await["name"],
        "half-sent-when-signalled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_cleanly() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir).await;
    let id = server
        .create("resource", &json!({"name": "before-ctrl-c"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    server.proc.signal("INT");
    let status = server.proc.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", server.proc.describe());
    let logs = server.proc.logs();
    let signal = logs
        .iter()
        .find(|l| log_message(l) == Some("signal received"))
        .expect("a 'signal received' line");
    assert_eq!(log_field(signal, "signal"), Some(&json!("SIGINT")));
    assert!(server.proc.logged("database closed"));
    let old_token = server.tokens().access_token.clone();
    drop(server);

    let server = Server::start(&dir).await;
    assert_eq!(server.read("resource", &id).await["name"], "before-ctrl-c");
    // The development signing key is kept in the data dir, so a token outlives a restart.
    let read = server
        .send(bearer_client(&old_token).get(server.url(&format!("/api/v1/resource/{id}"))))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["data"]["name"], "before-ctrl-c");
}

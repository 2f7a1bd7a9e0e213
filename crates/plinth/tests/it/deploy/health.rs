//! `plinth health`: the image's health check, for images without curl.

use crate::helpers::{Server, TestDir, run};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_only_on_a_200() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    for path in ["/healthz", "/readyz"] {
        let url = server.url(path);
        let done = run(&dir, &["health", "--url", &url], &[]).await;
        assert_eq!(done.status.code(), Some(0), "{path}: {}", done.stderr);
        assert_eq!(done.stdout.trim(), format!("{url} answered 200"));
    }
    // A route that needs a credential, a path that is no route, a query string.
    for (path, status) in [
        ("/api/v1/users", "401"),
        ("/nowhere", "404"),
        ("/healthz?x=1", "200"),
    ] {
        let url = server.url(path);
        let done = run(&dir, &["health", "--url", &url], &[]).await;
        let want = if status == "200" { 0 } else { 1 };
        assert_eq!(done.status.code(), Some(want), "{path}: {}", done.stderr);
        if want == 1 {
            assert_eq!(
                done.stderr.trim(),
                format!("plinth: {url} answered {status}")
            );
        }
    }
}

#[tokio::test]
async fn health_refuses_what_it_cannot_ask_and_gives_up_in_time() {
    let dir = TestDir::sqlite();
    // Nothing listens on a port just freed.
    let free = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}/healthz", free.local_addr().expect("addr"));
    drop(free);
    let done = run(&dir, &["health", "--url", &closed], &[]).await;
    assert_eq!(done.status.code(), Some(1));
    assert!(done.stderr.contains("cannot connect"), "{}", done.stderr);

    for url in [
        "https://127.0.0.1:8443/healthz",
        "127.0.0.1:8080/healthz",
        "http:///healthz",
        "http://127.0.0.1:8080/he alth",
        "",
    ] {
        let done = run(&dir, &["health", "--url", url], &[]).await;
        assert_eq!(done.status.code(), Some(1), "{url:?}: {}", done.stderr);
        assert!(done.stderr.starts_with("plinth: --url"), "{}", done.stderr);
    }
    for timeout in ["0", "301", "soon"] {
        let done = run(&dir, &["health", "--timeout", timeout], &[]).await;
        assert_eq!(
            done.status.code(),
            Some(2),
            "--timeout {timeout}: clap refuses it"
        );
    }

    // A peer that accepts and never answers: given up after --timeout.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/healthz", silent.local_addr().expect("addr"));
    let started = Instant::now();
    let done = run(&dir, &["health", "--url", &url, "--timeout", "1"], &[]).await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(done.stderr.contains("no answer"), "{}", done.stderr);
    drop(silent);

    // A peer that answers something other than HTTP.
    let liar = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/healthz", liar.local_addr().expect("addr"));
    let answer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = liar.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let _ = conn.write_all(b"SSH-2.0-OpenSSH\r\n");
    });
    let done = run(&dir, &["health", "--url", &url], &[]).await;
    answer.join().expect("the liar thread");
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("did not answer HTTP"),
        "{}",
        done.stderr
    );
}

//! File descriptors: under a low open-files limit (`prlimit`, util-linux), 300 idle
//! connections do not stop a new client being served, whether the limit was there at start
//! (the connection cap is lowered to fit, with a warning) or lowered while serving (out of
//! descriptors, the connection idle the longest is closed). Without `prlimit` the tests
//! print `SKIPPED` and pass.

use crate::helpers::{Server, TestDir, log_field, log_message};
use reqwest::StatusCode;
use std::time::Duration;
use tokio::net::TcpStream;

/// The open-files limit of the tester's repro.
const NOFILE: &str = "--nofile=256:256";

/// Generous: a served `/healthz` takes milliseconds.
const SERVED_WITHIN: Duration = Duration::from_secs(20);

fn have_prlimit(test: &str) -> bool {
    let found = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED {test}: needs prlimit (util-linux)");
    }
    found
}

/// Opens 300 connections that send nothing, then asks for `/healthz` on a fresh one.
async fn idle_connections_then_healthz(server: &Server) {
    let addr = server.url("").trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let r = tokio::time::timeout(SERVED_WITHIN, server.get("/healthz"))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "/healthz was not served beside 300 idle connections\n{}",
                server.proc.describe()
            )
        });
    assert_eq!(r.status, StatusCode::OK);
    drop(idle);
}

/// Head timeouts far longer than the test, so only the fix can make room.
const ENVS: [(&str, &str); 1] = [("PLINTH_HTTP_HEADER_READ_TIMEOUT_SECONDS", "300")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_files_limit_at_start_lowers_the_connection_cap() {
    if !have_prlimit("a_low_open_files_limit_at_start_lowers_the_connection_cap") {
        return;
    }
    let dir = TestDir::new();
    let mut server = Server::spawn_under(&dir, &["prlimit", NOFILE, "--"], &[], &ENVS).await;
    let warned = server
        .proc
        .wait_for_log("the connection cap warning", |l| {
            log_message(l).is_some_and(|m| m.starts_with("max_connections does not fit"))
        })
        .await;
    assert_eq!(
        log_field(&warned, "serving_at_most").and_then(|v| v.as_u64()),
        Some(192),
        "{warned}"
    );
    idle_connections_then_healthz(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_connection_idle_the_longest_is_closed() {
    if !have_prlimit("out_of_descriptors_the_connection_idle_the_longest_is_closed") {
        return;
    }
    let dir = TestDir::new();
    let server = Server::spawn(&dir, &[], &ENVS).await;
    // Lowered after the start, so the cap (1000 by default) is above it.
    let pid = server.proc.pid().to_string();
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &pid, NOFILE])
        .status()
        .expect("run prlimit");
    assert!(lowered.success(), "prlimit --pid failed");
    idle_connections_then_healthz(&server).await;
}

//! A full disk under the SQLite data directory: writes answer 503 with the envelope and an
//! error log line (the cause stays in the log), reads go on, writes resume without a
//! restart once space is freed, and nothing written is damaged.
//!
//! The data directory is a small tmpfs the test mounts (it needs root, or the right to
//! mount); where mounting is not allowed the test says so on the terminal and passes.

use crate::helpers::{LOGIN_REQUEST_ID, Server, TestDir, log_field, log_message};
use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Room for the database, its WAL and the key file, before the filler takes the rest.
const SIZE: &str = "8m";
/// Writes tried on the full disk before giving up on seeing one refused.
const TRIES: usize = 200;

/// A tmpfs mounted over a directory, unmounted on drop (after the server using it has been
/// dropped: declare it before the server).
#[derive(Debug)]
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={SIZE},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Fills the free space with `filler`; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).expect("create the filler");
        for chunk in [1 << 16, 1 << 12, 1 << 9] {
            let buf = vec![0x5a_u8; chunk];
            while file.write_all(&buf).is_ok() {}
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(&self.path).status();
        if !done.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_and_service_resumes_when_space_is_freed() {
    const TEST: &str =
        "disk_full::a_full_disk_refuses_writes_with_503_and_service_resumes_when_space_is_freed";
    let dir = TestDir::sqlite();
    let disk = match SmallDisk::mount(&dir.data_dir()) {
        Ok(disk) => disk,
        Err(reason) => {
            plinth_testkit::note(&format!(
                "SKIPPED {TEST}: cannot mount a small filesystem ({reason})"
            ));
            return;
        }
    };
    let mut server = Server::start(&dir).await;
    let mut kept = Vec::new();
    for i in 0..5 {
        let name = format!("before-full-{i}");
        let data = server.create("resource", &json!({ "name": name })).await;
        kept.push((data["id"].as_str().expect("id").to_owned(), name));
    }

    let filler = disk.fill();
    let mut refused = None;
    for i in 0..TRIES {
        let name = format!("while-full-{i}");
        let r = server
            .post("/api/v1/resource", &json!({ "name": name }))
            .await;
        if r.status == StatusCode::CREATED {
            kept.push((r.body["data"]["id"].as_str().expect("id").to_owned(), name));
            continue;
        }
        refused = Some((r, name));
        break;
    }
    let (refusal, refused_name) = refused.unwrap_or_else(|| {
        panic!(
            "{TRIES} writes on a full disk all succeeded\n{}",
            server.proc.describe()
        )
    });
    refusal.assert_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(
        refusal.body["error"]["message"], "the database is unavailable; retry shortly",
        "no internal detail for the client"
    );
    assert!(
        refusal.header("retry-after").is_some(),
        "Retry-After on 503"
    );
    let request_id = refusal.header("x-request-id").expect("X-Request-Id");
    // The line may reach the test's reader of the server's output a moment after the answer.
    let logged = server
        .proc
        .wait_for_log("for the refused write", |l| {
            log_field(l, "request_id") == Some(&json!(request_id)) && l["level"] == "ERROR"
        })
        .await;
    assert_eq!(log_message(&logged), Some("request failed"));
    let cause = log_field(&logged, "error_chain")
        .and_then(|c| c.as_str())
        .expect("a cause");
    assert!(
        cause.contains("the disk is full"),
        "the cause says why: {cause}"
    );
    // The error line names the trace the answer's `traceparent` gives the client.
    let trace = refusal
        .header("traceparent")
        .and_then(|t| t.split('-').nth(1))
        .expect("a traceparent");
    assert_eq!(
        log_field(&logged, "trace_id"),
        Some(&json!(trace)),
        "{logged}"
    );

    // Reads go on while the disk is full.
    for (id, name) in &kept {
        assert_eq!(server.read("resource", id).await["name"], json!(name));
    }
    let listed = server.get("/api/v1/resource?limit=200").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);

    // Space is freed: writes resume on the same process, the WAL growing again.
    std::fs::remove_file(&filler).expect("remove the filler");
    for i in 0..50 {
        let name = format!("after-full-{i}");
        let data = server.create("resource", &json!({ "name": name })).await;
        kept.push((data["id"].as_str().expect("id").to_owned(), name));
    }
    let proc = server.stop().await;
    assert!(
        !proc
            .logs()
            .iter()
            .any(|l| log_message(l) == Some("request failed")
                && log_field(l, "request_id") != Some(&json!(request_id))
                && log_field(l, "request_id") != Some(&json!(LOGIN_REQUEST_ID))
                && !log_field(l, "error_chain")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| c.contains("the disk is full"))),
        "only the full disk failed requests\n{}",
        proc.describe()
    );

    // Nothing written is damaged, and the refused write left nothing behind.
    let conn = rusqlite::Connection::open(dir.db()).expect("open the database");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    drop(conn);
    let server = Server::start(&dir).await;
    for (id, name) in &kept {
        assert_eq!(server.read("resource", id).await["name"], json!(name));
    }
    let gone = server
        .get(&format!("/api/v1/resource?name={refused_name}"))
        .await;
    assert_eq!(gone.body["data"], json!([]), "{}", gone.text);
    drop(server);
    drop(disk);
}

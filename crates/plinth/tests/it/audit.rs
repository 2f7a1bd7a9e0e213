//! `plinth audit verify` and `plinth audit export` through the real binary, on the engine of
//! the run: verify exits 0 with the count of an intact chain, and 2 naming the first entry
//! of a chain edited, cut, extended or reordered through SQL; export writes the API's
//! shape as JSON lines, from a seq or a time, beside a running server.

use crate::helpers::{Finished, Server, TestDir, refused, run, run_ok};
use serde_json::{Value, json};

/// Runs `sql` on the test's database past Plinth: to tamper with the audit trail.
fn raw(dir: &TestDir, sql: &str) {
    match dir.postgres_url() {
        Some(url) => {
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "{sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => {
            let db = rusqlite::Connection::open(dir.db()).expect("open the database");
            db.execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

async fn verify(dir: &TestDir) -> Finished {
    run(
        dir,
        &["audit", "verify", "--data-dir", &dir.data_arg()],
        &[],
    )
    .await
}

/// Asserts verify fails with status 2 and `message` on stderr.
async fn broken(dir: &TestDir, message: &str) {
    let done = verify(dir).await;
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains(message),
        "expected {message:?}, got {:?}",
        done.stderr
    );
}

async fn intact(dir: &TestDir, entries: u64) {
    let done = verify(dir).await;
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert_eq!(
        done.stdout.trim(),
        format!("audit chain intact: {entries} entries checked")
    );
}

/// Every column of an entry but `seq`.
const REST: &str = "at, actor_kind, actor_id, actor_label, action, model, record_id, \
                    request_id, client_addr, changes, prev_hash, hash";

fn swap(a: i64, b: i64) -> String {
    format!(
        "UPDATE _plinth_audit SET seq = -1 WHERE seq = {a};
         UPDATE _plinth_audit SET seq = {a} WHERE seq = {b};
         UPDATE _plinth_audit SET seq = {b} WHERE seq = -1;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_counts_an_intact_chain_and_names_the_first_tampered_entry() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let made = server.create("resource", &json!({"name": "a"})).await;
    let id = made["id"].as_str().expect("an id");
    for name in ["b", "c", "d"] {
        let r = server
            .patch(&format!("/api/v1/resource/{id}"), &json!({ "name": name }))
            .await;
        assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
    }
    // The admin's account and login are 1 and 2; the create 3, the patches 4 to 6.
    // Beside the running server.
    intact(&dir, 6).await;
    server.stop().await;

    let edit = "UPDATE _plinth_audit SET changes = replace(changes, '\"to\":\"b\"', '\"to\":\"x\"') \
                WHERE seq = 4";
    raw(&dir, edit);
    broken(&dir, "at seq 4: hash mismatch").await;
    raw(
        &dir,
        &edit.replace(
            "'\"to\":\"b\"', '\"to\":\"x\"'",
            "'\"to\":\"x\"', '\"to\":\"b\"'",
        ),
    );
    intact(&dir, 6).await;

    raw(
        &dir,
        "CREATE TABLE saved AS SELECT * FROM _plinth_audit WHERE seq = 4;
         DELETE FROM _plinth_audit WHERE seq = 4;",
    );
    broken(&dir, "at seq 5: sequence broken: expected seq 4").await;
    raw(
        &dir,
        "INSERT INTO _plinth_audit SELECT * FROM saved; DROP TABLE saved;",
    );
    intact(&dir, 6).await;

    raw(
        &dir,
        &format!(
            "INSERT INTO _plinth_audit (seq, {REST}) SELECT seq + 1, {REST} FROM _plinth_audit \
             WHERE seq = 6"
        ),
    );
    broken(&dir, "at seq 7: link broken").await;
    raw(&dir, "DELETE FROM _plinth_audit WHERE seq = 7");
    intact(&dir, 6).await;

    raw(&dir, &swap(4, 5));
    broken(&dir, "at seq 4: link broken").await;
    raw(&dir, &swap(4, 5));
    intact(&dir, 6).await;
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["seq"].as_i64().expect("a seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_api_shape_as_json_lines_beside_a_running_server() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    for name in ["a", "b", "c"] {
        server.create("resource", &json!({ "name": name })).await;
    }
    let data = dir.data_arg();
    let out = dir.path().join("audit.jsonl");
    let out_arg = out.display().to_string();
    let done = run_ok(
        &dir,
        &["audit", "export", "--data-dir", &data, "--output", &out_arg],
        &[],
    )
    .await;
    assert!(
        done.stderr.contains("exported 5 audit entries"),
        "{}",
        done.stderr
    );
    let exported = lines(&std::fs::read_to_string(&out).expect("the export"));
    // The admin's account and login, then the three creates.
    assert_eq!(seqs(&exported), [1, 2, 3, 4, 5]);
    // The API's entries, newest first: the same, reversed.
    let api = server.get("/api/v1/audit").await;
    let mut from_api = api.body["data"].as_array().expect("entries").clone();
    from_api.reverse();
    assert_eq!(exported, from_api);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // From a seq, or a time; to standard output.
    let stdout = |args: &[&str]| {
        let mut all = vec!["audit", "export", "--data-dir", data.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = stdout(&["--since", "2"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        seqs(&lines(&run_ok(&dir, &args, &[]).await.stdout)),
        [2, 3, 4, 5]
    );
    let at = exported[4]["at"].as_str().expect("a time").to_owned();
    let args = stdout(&["--since", &at, "--output", "-"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(seqs(&lines(&run_ok(&dir, &args, &[]).await.stdout)), [5]);
    // An existing file is never overwritten; a bad --since is refused.
    refused(
        &dir,
        &["audit", "export", "--data-dir", &data, "--output", &out_arg],
        &[],
    )
    .await;
    for bad in ["yesterday", "-1", "1.5", ""] {
        let since = format!("--since={bad}");
        let args = stdout(&[&since]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = refused(&dir, &args, &[]).await;
        assert!(done.stderr.contains("--since"), "{bad}: {}", done.stderr);
    }
    server.stop().await;
}

//! Rotation of the encryption keys through the binary: `plinth keys rotate` beside a server
//! taking writes re-seals every value under the new key without losing one; two instances
//! on one PostgreSQL database read what it re-sealed; `plinth keys retire` refuses a key
//! still in use (naming where), the active key, the index key and an unknown id, and
//! removes a key nothing uses; SIGHUP makes a server read a changed key file. Both engines.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestDir, refused, run_ok};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PATIENT: &str = "[[models]]\nname = \"patient\"\n\n[[models.fields]]\nname = \"ssn\"\ntype = \"string\"\npii = true\n\n[[models.fields]]\nname = \"note\"\ntype = \"string\"\npii = true\n";

/// How many values of `patient.ssn`, `patient.note` and `_plinth_users.email` are sealed
/// under `key`, read from the database itself (not through Plinth).
fn sealed_under(dir: &TestDir, key: &str) -> i64 {
    let pattern = format!("v1:{key}:%");
    let sql = "SELECT (SELECT COUNT(*) FROM patient WHERE ssn LIKE $1) \
               + (SELECT COUNT(*) FROM patient WHERE note LIKE $1) \
               + (SELECT COUNT(*) FROM _plinth_users WHERE email LIKE $1)";
    match dir.postgres_url() {
        None => {
            let conn = rusqlite::Connection::open_with_flags(
                dir.db(),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the SQLite file");
            conn.query_row(&sql.replace("$1", "?1"), [&pattern], |r| r.get(0))
                .expect("count sealed values")
        }
        Some(url) => {
            let sql = sql.replace("$1", &format!("'{pattern}'"));
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-Atc", &sql])
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a count")
        }
    }
}

fn key_file(dir: &TestDir) -> std::path::PathBuf {
    dir.data_dir().join("encryption.keys")
}

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).expect("stat").permissions())
        & 0o777
}

/// Creates `n` patients; their ids and values.
async fn seed(server: &Server, n: usize, tag: &str) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for i in 0..n {
        let (ssn, note) = (format!("{tag}-ssn-{i}"), format!("{tag}-note-{i}"));
        let r = server
            .create("patient", &json!({"name": "p", "ssn": ssn, "note": note}))
            .await;
        out.insert(r["id"].as_str().expect("id").to_owned(), (ssn, note));
    }
    out
}

/// Every record reads back its exact values.
async fn check_all(server: &Server, expected: &HashMap<String, (String, String)>) {
    for (id, (ssn, note)) in expected {
        let r = server.read("patient", id).await;
        assert_eq!(r["ssn"], json!(ssn), "{id}");
        assert_eq!(r["note"], json!(note), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_beside_a_serving_server_reseals_every_value_and_loses_no_write() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let mut server = Server::start(&dir).await;
    // More rows than one batch.
    let seeded = seed(&server, 520, "seed").await;
    let expected = Arc::new(Mutex::new(seeded));
    assert!(sealed_under(&dir, "k1") >= 1041);

    // A writer keeps creating and updating while the rotation runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, base) = (server.client(), server.url("/api/v1/patient"));
        let (stop, expected) = (Arc::clone(&stop), Arc::clone(&expected));
        let ids: Vec<String> = expected.lock().expect("lock").keys().cloned().collect();
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let (ssn, note) = (format!("live-ssn-{i}"), format!("live-note-{i}"));
                let r = client
                    .post(&base)
                    .json(&json!({"name": "w", "ssn": ssn, "note": note}))
                    .send()
                    .await
                    .expect("create");
                assert_eq!(r.status(), StatusCode::CREATED);
                let body: Value = r.json().await.expect("json");
                let id = body["data"]["id"].as_str().expect("id").to_owned();
                expected.lock().expect("lock").insert(id, (ssn, note));
                // And an update of a seeded record's ssn (its note stays).
                let target = &ids[i % ids.len()];
                let ssn = format!("updated-ssn-{i}");
                let r = client
                    .patch(format!("{base}/{target}"))
                    .json(&json!({"ssn": ssn}))
                    .send()
                    .await
                    .expect("update");
                assert_eq!(r.status(), StatusCode::OK);
                if let Some(v) = expected.lock().expect("lock").get_mut(target) {
                    v.0 = ssn;
                }
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let done = run_ok(
        &dir,
        &["keys", "rotate", "--data-dir", &dir.data_arg()],
        &[],
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.expect("the writer");
    assert!(writes > 0, "the writer wrote during the rotation");
    assert!(done.stdout.contains("patient: "), "{}", done.stdout);
    assert!(
        done.stdout.contains("_plinth_users: 1 value(s)"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("under key k2"), "{}", done.stdout);
    assert!(done.stderr.contains("added key k2"), "{}", done.stderr);
    let keys = std::fs::read_to_string(key_file(&dir)).expect("keys");
    assert!(
        keys.contains("\nk1=")
            && keys
                .trim_end()
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("k2="))
    );
    assert_eq!(mode(&key_file(&dir)), 0o600, "the key file stays private");
    assert!(
        !done
            .stdout
            .contains(keys.lines().last().unwrap_or("-")[3..].trim())
    );

    assert_eq!(sealed_under(&dir, "k1"), 0, "a value is still under k1");
    let expected = expected.lock().expect("lock").clone();
    assert!(sealed_under(&dir, "k2") > 2 * expected.len() as i64);
    check_all(&server, &expected).await;
    server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Audited, with key ids and counts, never key material.
    let audit = server.get("/api/v1/audit?action=keys.rotate").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let entry = &audit.body["data"][0];
    assert_eq!(entry["target"]["model"], "_keys", "{}", audit.text);
    assert_eq!(entry["actor"]["kind"], "system");
    assert_eq!(entry["changes"]["active_key"]["to"], "k2");
    assert_eq!(entry["changes"]["active_key"]["from"], "k1");
    assert!(
        entry["changes"]["resealed"]["patient"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    for line in keys.lines() {
        let secret = line.split_once('=').map_or("", |(_, v)| v);
        assert!(
            !audit.text.contains(secret),
            "key material in the audit trail"
        );
    }
    server.stop().await;

    // A restart with the rotated keys reads everything.
    let server = Server::start(&dir).await;
    check_all(&server, &expected).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_read_what_the_rotation_resealed() {
    let dir = TestDir::new();
    if dir.postgres_url().is_none() {
        return; // One SQLite server per data directory.
    }
    dir.write_config(PATIENT);
    let first = Server::start(&dir).await;
    let second = Server::start(&dir).await;
    let mut expected = seed(&first, 20, "a").await;
    expected.extend(seed(&second, 20, "b").await);
    run_ok(
        &dir,
        &["keys", "rotate", "--data-dir", &dir.data_arg()],
        &[],
    )
    .await;
    assert_eq!(sealed_under(&dir, "k1"), 0);
    // Each reads what the rotation re-sealed and what the other sealed since.
    expected.extend(seed(&first, 3, "c").await);
    expected.extend(seed(&second, 3, "d").await);
    check_all(&first, &expected).await;
    check_all(&second, &expected).await;
    let mut second = second;
    second.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_refuses_a_key_in_use_and_removes_it_after_the_reseal() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let data = dir.data_arg();
    let server = Server::start(&dir).await;
    let expected = seed(&server, 5, "r").await;
    server.stop().await;

    // The active key, the index key and an unknown id are refused.
    for (id, says) in [
        ("k1", "seals new values"),
        ("index", "cannot be retired"),
        ("k9", "no key"),
    ] {
        let done = refused(&dir, &["keys", "retire", id, "--data-dir", &data], &[]).await;
        assert!(done.stderr.contains(says), "{id}: {}", done.stderr);
    }
    // A second key added by hand: k1 no longer seals, but values still use it.
    let text = std::fs::read_to_string(key_file(&dir)).expect("keys");
    let more = format!("{text}k2=QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n");
    std::fs::write(key_file(&dir), &more).expect("write keys");
    let done = refused(&dir, &["keys", "retire", "k1", "--data-dir", &data], &[]).await;
    assert!(
        done.stderr.contains("5 value(s) in patient.ssn"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("patient.note"), "{}", done.stderr);
    assert!(
        done.stderr.contains("_plinth_users.email"),
        "{}",
        done.stderr
    );
    assert!(
        std::fs::read_to_string(key_file(&dir))
            .expect("keys")
            .contains("k1=")
    );

    let done = run_ok(
        &dir,
        &["keys", "rotate", "--reseal-only", "--data-dir", &data],
        &[],
    )
    .await;
    assert!(
        done.stdout.contains("patient: 10 value(s)"),
        "{}",
        done.stdout
    );
    assert_eq!(
        std::fs::read_to_string(key_file(&dir)).expect("keys"),
        more,
        "--reseal-only adds no key"
    );
    let done = run_ok(&dir, &["keys", "retire", "k1", "--data-dir", &data], &[]).await;
    assert!(done.stdout.contains("removed it"), "{}", done.stdout);
    let after = std::fs::read_to_string(key_file(&dir)).expect("keys");
    assert!(!after.contains("k1=") && after.contains("k2=") && after.contains("index="));
    assert_eq!(mode(&key_file(&dir)), 0o600);

    // The server restarts without k1 and reads everything; the retirement is audited.
    let server = Server::start(&dir).await;
    check_all(&server, &expected).await;
    let audit = server.get("/api/v1/audit?model=_keys").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["keys.retire", "keys.rotate"], "{}", audit.text);
    assert!(!audit.text.contains("QkJCQkJC"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_with_keys_from_the_environment_only_reseals() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let data = dir.data_arg();
    let old = crate::helpers::ENCRYPTION_KEYS;
    let server = Server::start_with(&dir, &[], &[("PLINTH_ENCRYPTION_KEYS", old)]).await;
    let expected = seed(&server, 3, "e").await;
    server.stop().await;
    let env = [("PLINTH_ENCRYPTION_KEYS", old)];
    let done = refused(&dir, &["keys", "rotate", "--data-dir", &data], &env).await;
    assert!(done.stderr.contains("--reseal-only"), "{}", done.stderr);
    // The operator appends k2 to the list and restarts, then re-seals and retires k1.
    let new = format!("{old},k2=QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=");
    let env = [("PLINTH_ENCRYPTION_KEYS", new.as_str())];
    let server = Server::start_with(&dir, &[], &env).await;
    refused(&dir, &["keys", "retire", "k1", "--data-dir", &data], &env).await;
    run_ok(
        &dir,
        &["keys", "rotate", "--reseal-only", "--data-dir", &data],
        &env,
    )
    .await;
    assert_eq!(sealed_under(&dir, "k1"), 0);
    let done = run_ok(&dir, &["keys", "retire", "k1", "--data-dir", &data], &env).await;
    assert!(done.stdout.contains("safe to drop it"), "{}", done.stdout);
    check_all(&server, &expected).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_a_server_read_a_changed_key_file() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let mut server = Server::start(&dir).await;
    seed(&server, 1, "h").await;
    // k2 appended, with the file's old modification time: only SIGHUP shows the change.
    let path = key_file(&dir);
    let stamp = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let text = std::fs::read_to_string(&path).expect("keys");
    std::fs::write(
        &path,
        format!("{text}k2=QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n"),
    )
    .expect("write keys");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(stamp))
        .expect("set mtime");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    seed(&server, 1, "before").await;
    assert_eq!(
        sealed_under(&dir, "k2"),
        0,
        "the change is not seen without SIGHUP"
    );
    server.proc.signal("HUP");
    server
        .proc
        .wait_for_log("reloaded the encryption keys", |l| {
            crate::helpers::log_message(l) == Some("reloaded the encryption keys")
        })
        .await;
    seed(&server, 1, "after").await;
    assert_eq!(
        sealed_under(&dir, "k2"),
        2,
        "new values are sealed under k2"
    );
    server.stop().await;
}

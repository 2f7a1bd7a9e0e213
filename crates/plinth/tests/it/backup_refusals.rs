//! What `plinth backup` and `plinth restore` refuse, each leaving the target as it was: a
//! changed, truncated or foreign file, a missing checksum, a backup of a newer schema, a
//! non-empty target without `--force` (and what `--force` says it replaced), a target a
//! server holds, a backup path that exists. Both engines.

use crate::backup::{KEYS, sidecar};
use crate::helpers::{Server, TestDir, refused, run_ok};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A source with one record, and a backup of it (`FILE`, `FILE.sha256`).
async fn source_and_backup() -> (TestDir, PathBuf) {
    let source = TestDir::new();
    let server = Server::start_with(&source, &[], &KEYS).await;
    server.create("resource", &json!({"name": "one"})).await;
    server.stop().await;
    let file = source.path().join("one.backup");
    let (data, file_arg) = (source.data_arg(), file.display().to_string());
    run_ok(&source, &["backup", "--data-dir", &data, &file_arg], &KEYS).await;
    (source, file)
}

/// Writes `bytes` to `path` with a matching sidecar, as a careful forger would.
fn forge(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write");
    let name = path.file_name().expect("name").to_string_lossy();
    let sum = format!(
        "{}  {name}\n",
        base16ct::lower::encode_string(&Sha256::digest(bytes))
    );
    std::fs::write(sidecar(path), sum).expect("write the sidecar");
}

/// What the target holds: on SQLite whether its file exists (and its users), on
/// PostgreSQL whether Plinth's tables do (and their users).
fn target_users(dir: &TestDir) -> String {
    match dir.postgres_url() {
        Some(url) => {
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-Atc", "SELECT coalesce((SELECT count(*)::text FROM information_schema.tables WHERE table_name = '_plinth_users'), '0')"])
                .output()
                .expect("psql");
            let tables = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if tables == "0" {
                return "none".to_owned();
            }
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-Atc", "SELECT count(*) FROM _plinth_users"])
                .output()
                .expect("psql");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
        None if !dir.db().exists() => "none".to_owned(),
        None => {
            let db = rusqlite::Connection::open(dir.db()).expect("open");
            db.query_row("SELECT count(*) FROM _plinth_users", [], |r| {
                r.get::<_, i64>(0)
            })
            .expect("count")
            .to_string()
        }
    }
}

/// `plinth restore FILE` into `target`, refused with a message containing `says`; the
/// target is left as it was.
async fn refused_restore(target: &TestDir, file: &Path, extra: &[&str], says: &str) {
    let before = target_users(target);
    let (data, file_arg) = (target.data_arg(), file.display().to_string());
    let mut args = vec!["restore", "--data-dir", &data, &file_arg];
    args.extend_from_slice(extra);
    let stderr = refused(target, &args, &KEYS).await.stderr;
    assert!(stderr.contains(says), "expected {says:?} in {stderr}");
    assert_eq!(
        target_users(target),
        before,
        "the refused restore changed the target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_changed_truncated_foreign_and_newer_files() {
    let (source, file) = source_and_backup().await;
    let bytes = std::fs::read(&file).expect("read the backup");
    let target = TestDir::new();

    // One byte changed: the checksum says so, before anything else is read.
    let changed = source.path().join("changed.backup");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    std::fs::write(&changed, &flipped).expect("write");
    std::fs::copy(sidecar(&file), sidecar(&changed)).expect("copy the sidecar");
    refused_restore(&target, &changed, &[], "does not match its checksum").await;

    // Truncated, its checksum left as it was: refused the same way.
    let truncated = source.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    std::fs::copy(sidecar(&file), sidecar(&truncated)).expect("copy the sidecar");
    refused_restore(&target, &truncated, &[], "does not match its checksum").await;

    // No checksum at all.
    let bare = source.path().join("bare.backup");
    std::fs::write(&bare, &bytes).expect("write");
    refused_restore(&target, &bare, &[], "checksum").await;

    // Truncated with a checksum made to match: the format catches it.
    let forged = source.path().join("forged.backup");
    forge(&forged, &bytes[..bytes.len() * 2 / 3]);
    let (data, forged_arg) = (target.data_arg(), forged.display().to_string());
    let stderr = refused(
        &target,
        &["restore", "--data-dir", &data, &forged_arg],
        &KEYS,
    )
    .await
    .stderr;
    assert!(
        stderr.contains("not a Plinth backup")
            || stderr.contains("damaged")
            || stderr.contains("line "),
        "{stderr}"
    );
    assert_eq!(target_users(&target), "none");

    // Another format: an export, and plain text, each with a matching checksum.
    let export = source.path().join("dump.jsonl");
    let (src_data, export_arg) = (source.data_arg(), export.display().to_string());
    run_ok(
        &source,
        &["export", "--data-dir", &src_data, "--output", &export_arg],
        &KEYS,
    )
    .await;
    let export_bytes = std::fs::read(&export).expect("read the export");
    let foreign = source.path().join("foreign.backup");
    forge(&foreign, &export_bytes);
    refused_restore(&target, &foreign, &[], "not a Plinth backup").await;
    forge(&foreign, b"hello\n");
    refused_restore(&target, &foreign, &["--force"], "not a Plinth backup").await;

    // A backup of a newer schema version (a newer release's tables, which a restore here
    // would leave out).
    let newer = source.path().join("newer.backup");
    match source.postgres_url() {
        None => {
            std::fs::write(&newer, &bytes).expect("write");
            let db = rusqlite::Connection::open(&newer).expect("open the copy");
            // Stamped with the version of Plinth's own tables it holds.
            let version: u32 = db
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("user_version");
            assert_eq!(version, plinth_store::versions::LATEST);
            db.execute_batch("PRAGMA user_version = 99").expect("stamp");
            drop(db);
            let stamped = std::fs::read(&newer).expect("read");
            forge(&newer, &stamped);
        }
        Some(_) => {
            let text = String::from_utf8(bytes.clone()).expect("JSON lines");
            let stamped = format!(
                "\"schema_version\":{}",
                plinth_store::backup::SCHEMA_VERSION
            );
            assert!(text.contains(&stamped), "{text}");
            let text = text.replacen(&stamped, "\"schema_version\":99", 1);
            forge(&newer, text.as_bytes());
        }
    }
    refused_restore(&target, &newer, &["--force"], "schema version 99, newer").await;

    // A SQLite backup carrying a trigger: code of the file's author, never Plinth's.
    if source.postgres_url().is_none() {
        let rigged = source.path().join("rigged.backup");
        std::fs::write(&rigged, &bytes).expect("write");
        let db = rusqlite::Connection::open(&rigged).expect("open the copy");
        db.execute_batch(
            "CREATE TRIGGER t AFTER INSERT ON _plinth_users BEGIN DELETE FROM _plinth_audit; END",
        )
        .expect("add a trigger");
        drop(db);
        let rigged_bytes = std::fs::read(&rigged).expect("read");
        forge(&rigged, &rigged_bytes);
        refused_restore(&target, &rigged, &[], "triggers or views").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_target_in_use_or_holding_data_unless_forced() {
    let (source, file) = source_and_backup().await;
    // The source holds data: refused without --force.
    refused_restore(&source, &file, &[], "not empty").await;
    // A server holds it: refused, even with --force.
    let server = Server::start_with(&source, &[], &KEYS).await;
    refused_restore(&source, &file, &["--force"], "first, then run this again").await;
    server
        .create("resource", &json!({"name": "after the backup"}))
        .await;
    server.stop().await;
    // Forced: says what it replaced, and the record made after the backup is gone.
    let (data, file_arg) = (source.data_arg(), file.display().to_string());
    let done = run_ok(
        &source,
        &["restore", "--data-dir", &data, &file_arg, "--force"],
        &KEYS,
    )
    .await;
    assert!(
        done.stderr.contains("replaced (--force): 1 user(s)"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("resource 2"), "{}", done.stderr);
    assert!(
        done.stderr.contains("restored 1 user(s)"),
        "{}",
        done.stderr
    );
    let server = Server::start_with(&source, &[], &KEYS).await;
    let list = server.get("/api/v1/resource").await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["one"]);
    server.stop().await;
    run_ok(&source, &["audit", "verify", "--data-dir", &data], &KEYS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_under_other_keys_says_they_do_not_open_it() {
    let (_source, file) = source_and_backup().await;
    // No keys configured: development generates new ones for the target's data directory.
    let target = TestDir::new();
    let (data, file_arg) = (target.data_arg(), file.display().to_string());
    let done = run_ok(&target, &["restore", "--data-dir", &data, &file_arg], &[]).await;
    assert!(
        done.stderr.contains("restored 1 user(s)"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("do not open the restored accounts' emails"),
        "{}",
        done.stderr
    );
    // With the keys, no warning.
    let target = TestDir::new();
    let data = target.data_arg();
    let done = run_ok(&target, &["restore", "--data-dir", &data, &file_arg], &KEYS).await;
    assert!(!done.stderr.contains("do not open"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_a_path_that_exists_and_changes_it_not() {
    let (source, file) = source_and_backup().await;
    let (data, file_arg) = (source.data_arg(), file.display().to_string());
    let before = std::fs::read(&file).expect("read");
    let stderr = refused(&source, &["backup", "--data-dir", &data, &file_arg], &KEYS)
        .await
        .stderr;
    assert!(
        stderr.contains("exists; a backup never replaces a file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), before);
    // A sidecar in the way refuses too, and leaves no backup behind.
    let other = source.path().join("other.backup");
    std::fs::write(sidecar(&other), "not mine").expect("write");
    let other_arg = other.display().to_string();
    let stderr = refused(&source, &["backup", "--data-dir", &data, &other_arg], &KEYS)
        .await
        .stderr;
    assert!(stderr.contains("other.backup.sha256 exists"), "{stderr}");
    assert!(!other.exists());
    // A directory that does not exist: refused, nothing created.
    let missing = source.path().join("no/such/dir/x.backup");
    let missing_arg = missing.display().to_string();
    let stderr = refused(
        &source,
        &["backup", "--data-dir", &data, &missing_arg],
        &KEYS,
    )
    .await
    .stderr;
    assert!(stderr.contains("cannot create"), "{stderr}");
    assert!(!source.path().join("no").exists());
}

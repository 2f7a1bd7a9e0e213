//! `plinth backup` taken while writes go on restores (`plinth restore`) to one consistent
//! state: every record has its audit entry and every entry its record, the chain verifies,
//! sealed values open with the keys; scheduled backups keep the newest `backup.keep`. Both
//! engines.

use crate::helpers::{ENCRYPTION_KEYS, Server, TestDir, run_ok};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A model with a sealed field.
pub(crate) const NOTE: &str = "[[models]]\nname = \"note\"\n\n[[models.fields]]\nname = \"secret\"\ntype = \"string\"\npii = true\n";

/// Every command runs with the same encryption keys: they are not in the backup.
pub(crate) const KEYS: [(&str, &str); 1] = [("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS)];

/// Every item of a paginated list (`path` has a query already).
async fn all(server: &Server, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&limit=200&cursor={c}"),
            None => format!("{path}&limit=200"),
        };
        let page = server.get(&url).await;
        assert_eq!(page.status, reqwest::StatusCode::OK, "{}", page.body);
        items.extend(page.body["data"].as_array().expect("data").iter().cloned());
        match page.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// The ids of every note, and of every note an audit `record.create` entry names.
async fn notes_and_entries(server: &Server) -> (BTreeSet<String>, BTreeSet<String>) {
    let notes = all(server, "/api/v1/note?status[in]=active,inactive,deleted")
        .await
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect();
    let entries = all(server, "/api/v1/audit?action=record.create&model=note")
        .await
        .iter()
        .map(|e| e["target"]["id"].as_str().expect("target id").to_owned())
        .collect();
    (notes, entries)
}

/// The file's permission bits.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_concurrent_writes_restores_one_consistent_state() {
    let source = TestDir::new();
    source.write_config(NOTE);
    let server = Arc::new(Server::start_with(&source, &[], &KEYS).await);
    let (stop, created) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut writers = Vec::new();
    for w in 0..4 {
        let (server, stop, created) = (server.clone(), stop.clone(), created.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{w}-{i}");
                let body = json!({"name": name, "secret": format!("s-{name}")});
                let r = server.post("/api/v1/note", &body).await;
                assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.body);
                if i.is_multiple_of(3) {
                    let id = r.body["data"]["id"].as_str().expect("id").to_owned();
                    let r = server
                        .patch(
                            &format!("/api/v1/note/{id}"),
                            &json!({"secret": format!("t-{name}")}),
                        )
                        .await;
                    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
                }
                created.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // Enough rows that reading the tables takes a while: a snapshot taken table by table
    // (PostgreSQL's READ COMMITTED, say) misses audit entries of records it has, and fails.
    while created.load(Ordering::Relaxed) < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Mid-stream: the writers go on during and after the backup.
    let file = source.path().join("mid.backup");
    let file_arg = file.display().to_string();
    let data = source.data_arg();
    let done = run_ok(&source, &["backup", "--data-dir", &data, &file_arg], &KEYS).await;
    assert!(
        done.stderr
            .contains("encryption keys are not in the backup"),
        "{}",
        done.stderr
    );
    let at_backup_end = created.load(Ordering::Relaxed);
    while created.load(Ordering::Relaxed) < at_backup_end + 30 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("a writer");
    }
    let (source_notes, _) = notes_and_entries(&server).await;
    Arc::into_inner(server)
        .expect("the only server")
        .stop()
        .await;
    #[cfg(unix)]
    {
        assert_eq!(mode(&file), 0o600, "the backup is private");
        assert_eq!(mode(&sidecar(&file)), 0o600, "the sidecar too");
    }
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(sidecar(&file).file_name().expect("name"))
        .current_dir(source.path())
        .output()
        .expect("run sha256sum");
    assert!(check.status.success(), "sha256sum -c: {check:?}");

    let target = TestDir::new();
    target.write_config(NOTE);
    let target_data = target.data_arg();
    let done = run_ok(
        &target,
        &["restore", "--data-dir", &target_data, &file_arg],
        &KEYS,
    )
    .await;
    assert!(
        done.stderr.contains("restored 1 user(s)"),
        "{}",
        done.stderr
    );
    let verified = run_ok(
        &target,
        &["audit", "verify", "--data-dir", &target_data],
        &KEYS,
    )
    .await;
    assert!(
        verified.stdout.contains("audit chain intact"),
        "{}",
        verified.stdout
    );

    let server = Server::start_with(&target, &[], &KEYS).await;
    let (notes, entries) = notes_and_entries(&server).await;
    assert!(
        notes.len() >= 300,
        "the backup holds the writes before it: {}",
        notes.len()
    );
    assert!(
        notes.len() < source_notes.len(),
        "writes after the backup are not in it ({} of {})",
        notes.len(),
        source_notes.len()
    );
    let unaudited: Vec<&String> = notes.difference(&entries).take(3).collect();
    let orphaned: Vec<&String> = entries.difference(&notes).take(3).collect();
    assert!(
        unaudited.is_empty() && orphaned.is_empty(),
        "{} record(s) without their audit entry (such as {unaudited:?}), {} entries without \
         their record (such as {orphaned:?})",
        notes.difference(&entries).count(),
        entries.difference(&notes).count()
    );
    assert!(notes.is_subset(&source_notes));
    // Sealed values open with the keys; an update is there with its record or not at all.
    for id in notes.iter().take(40) {
        let note = server.read("note", id).await;
        let (name, secret) = (
            note["name"].as_str().expect("name"),
            note["secret"].as_str().expect("secret"),
        );
        let version = note["version"].as_i64().expect("version");
        let expected = if version == 2 {
            format!("t-{name}")
        } else {
            format!("s-{name}")
        };
        assert_eq!(secret, expected, "{note}");
    }
    server.stop().await;
}

/// `FILE.sha256`.
pub(crate) fn sidecar(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    name.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest_and_touch_nothing_else() {
    let source = TestDir::new();
    let dir = source.path().join("backups");
    std::fs::create_dir(&dir).expect("mkdir");
    // Names not of the schedule's pattern stay, however old.
    for name in [
        "notes.txt",
        "plinth-backup-manual.backup",
        "plinth-backup-20000101T000000.000000Z.backup.old",
    ] {
        std::fs::write(dir.join(name), "keep me").expect("write");
    }
    let dir_arg = dir.display().to_string();
    let envs = [
        KEYS[0],
        ("PLINTH_BACKUP_DIR", dir_arg.as_str()),
        ("PLINTH_BACKUP_INTERVAL_SECONDS", "1"),
        ("PLINTH_BACKUP_KEEP", "2"),
    ];
    let mut server = Server::start_with(&source, &[], &envs).await;
    server.create("resource", &json!({"name": "kept"})).await;
    let taken = |s: &Server| {
        s.proc
            .logs()
            .iter()
            .filter(|l| crate::helpers::log_message(l) == Some("backup taken"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while taken(&server) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no four backups\n{}",
            server.proc.describe()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server
        .proc
        .wait_for_log("pruned", |l| {
            crate::helpers::log_message(l) == Some("removed the oldest scheduled backups")
        })
        .await;
    server.stop().await;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    let scheduled: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("plinth-backup-2") && n.ends_with("Z.backup"))
        .collect();
    assert_eq!(scheduled.len(), 2, "{names:?}");
    for name in [
        "notes.txt",
        "plinth-backup-manual.backup",
        "plinth-backup-20000101T000000.000000Z.backup.old",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} was removed: {names:?}"
        );
    }
    for n in &scheduled {
        assert!(names.contains(&format!("{n}.sha256")), "{names:?}");
    }
    assert_eq!(names.len(), 3 + 4, "{names:?}");
    // The newest restores, with the record written before it.
    let newest = dir.join(scheduled[1]);
    let target = TestDir::new();
    let (target_data, newest_arg) = (target.data_arg(), newest.display().to_string());
    run_ok(
        &target,
        &["restore", "--data-dir", &target_data, &newest_arg],
        &KEYS,
    )
    .await;
    run_ok(
        &target,
        &["audit", "verify", "--data-dir", &target_data],
        &KEYS,
    )
    .await;
    let server = Server::start_with(&target, &[], &KEYS).await;
    let list = server.get("/api/v1/resource?name=kept").await;
    assert_eq!(
        list.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.body
    );
    server.stop().await;
}

/// A backup directory the schedule makes itself is private: the names in it say when each
/// backup was taken.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_directory_the_schedule_makes_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let source = TestDir::new();
    let dir = source.path().join("made").join("backups");
    let dir_arg = dir.display().to_string();
    let envs = [
        KEYS[0],
        ("PLINTH_BACKUP_DIR", dir_arg.as_str()),
        ("PLINTH_BACKUP_INTERVAL_SECONDS", "1"),
    ];
    let mut server = Server::start_with(&source, &[], &envs).await;
    server
        .proc
        .wait_for_log("a backup", |l| {
            crate::helpers::log_message(l) == Some("backup taken")
        })
        .await;
    server.stop().await;
    let mode = std::fs::metadata(&dir)
        .expect("the directory")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

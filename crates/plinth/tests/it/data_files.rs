//! Data at rest: the files `plinth serve` creates are its own (data directory 0700;
//! database, WAL, shared-memory and generated key files 0600, whatever the umask allows),
//! and a start over files others can read says so. Unix only, SQLite only (they are files).

#![cfg(unix)]

use crate::helpers::{Server, TestDir, log_field, log_message};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The paths the start warned about as readable by others.
fn exposed(server: &Server) -> Vec<String> {
    server
        .proc
        .logs()
        .iter()
        .filter(|l| log_message(l).is_some_and(|m| m.contains("readable by other users")))
        .filter_map(|l| {
            log_field(l, "path")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_files_are_private_and_exposed_ones_are_warned_of() {
    let dir = TestDir::sqlite();
    let server = Server::start(&dir).await;
    let db = dir.db();
    let files = [
        (dir.data_dir(), 0o700),
        (db.clone(), 0o600),
        (sibling(&db, "-wal"), 0o600),
        (sibling(&db, "-shm"), 0o600),
        (dir.data_dir().join("jwt.key"), 0o600),
    ];
    for (path, want) in &files {
        assert_eq!(mode(path), *want, "{}", path.display());
    }
    assert_eq!(exposed(&server), Vec::<String>::new());
    server.stop().await;

    // Opened up by hand: the next start warns of each, naming it.
    let set = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    set(&dir.data_dir(), 0o755);
    set(&db, 0o644);
    let server = Server::start(&dir).await;
    let mut warned = exposed(&server);
    warned.sort();
    let mut want = vec![
        dir.data_dir().display().to_string(),
        db.display().to_string(),
    ];
    want.sort();
    assert_eq!(warned, want, "{}", server.proc.describe());
    server.stop().await;
}

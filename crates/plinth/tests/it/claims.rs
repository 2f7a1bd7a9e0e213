//! Claims on the database: `plinth migrate`, `plinth import` and `plinth serve` claim it
//! before they create, open or change anything, so a refused one leaves it as it was, and a
//! malformed import touches nothing; on PostgreSQL a server whose claim connection is
//! ended fails `/readyz` until it holds the claim again, and `plinth migrate` is refused
//! once it does. Both engines (the lost claim: PostgreSQL only).

use crate::helpers::{Server, TestDir, refused};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const BOOK: &str =
    "[[models]]\nname = \"book\"\n\n[[models.fields]]\nname = \"title\"\ntype = \"string\"\n";

/// An export holding nothing (its header only).
const EMPTY_EXPORT: &str = "{\"plinth_export\":1}\n";

/// The claim's advisory lock key (`CLAIM_LOCK` of the PostgreSQL store).
const CLAIM_LOCK: i64 = 0x706c_696e_7468_7376;

/// Generous: only proves that something happens, not how fast.
const WAIT: Duration = Duration::from_secs(60);

/// Plinth's schema in the test's database: every table, column and index.
async fn schema(dir: &TestDir) -> Vec<String> {
    match dir.postgres_url() {
        Some(url) => {
            let client = plinth_testkit::connect(&url).await;
            let rows = client
                .query(
                    "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type \
                     FROM information_schema.columns WHERE table_schema = current_schema() \
                     UNION ALL SELECT 'index ' || indexdef FROM pg_indexes \
                     WHERE schemaname = current_schema() ORDER BY 1",
                    &[],
                )
                .await
                .expect("read the schema");
            rows.iter().map(|r| r.get(0)).collect()
        }
        None => {
            let db = rusqlite::Connection::open(dir.db()).expect("open the database");
            let mut stmt = db
                .prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
                .expect("read the schema");
            stmt.query_map([], |r| r.get(0))
                .expect("read the schema")
                .collect::<Result<_, _>>()
                .expect("read the schema")
        }
    }
}

/// Runs `sql` on the test's database (PostgreSQL or the SQLite file).
async fn execute(dir: &TestDir, sql: &str) {
    match dir.postgres_url() {
        Some(url) => {
            let client = plinth_testkit::connect(&url).await;
            client.batch_execute(sql).await.expect(sql);
        }
        None => {
            let db = rusqlite::Connection::open(dir.db()).expect("open the database");
            db.busy_timeout(WAIT).expect("busy timeout");
            db.execute_batch(sql).expect(sql);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_beside_a_server_change_nothing() {
    let dir = TestDir::new();
    dir.write_config(BOOK);
    let export = dir.write("empty.jsonl", EMPTY_EXPORT);
    let export = export.display().to_string();
    let server = Server::start(&dir).await;
    // As if the server were from a release before this index: whatever opens the database
    // and prepares Plinth's own tables would add it back.
    execute(&dir, "DROP INDEX _plinth_refresh_tokens_expires").await;
    let before = schema(&dir).await;
    assert!(
        !before
            .iter()
            .any(|s| s.contains("_plinth_refresh_tokens_expires")),
        "{before:#?}"
    );

    let data = dir.data_arg();
    let mut commands = vec![
        vec!["migrate", "--data-dir", &data],
        vec!["migrate", "--dry-run", "--data-dir", &data],
        vec!["import", "--data-dir", &data, "--input", &export],
    ];
    if dir.postgres_url().is_none() {
        // One server per SQLite file.
        commands.push(vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
        ]);
    }
    for args in &commands {
        let stderr = refused(&dir, args, &[]).await.stderr;
        assert!(stderr.contains("is using"), "{args:?}: {stderr}");
        assert_eq!(schema(&dir).await, before, "{args:?} changed the schema");
    }
    assert_eq!(server.get("/readyz").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_import_touches_nothing() {
    let dir = TestDir::new();
    dir.write_config(BOOK);
    let bad = dir.write("bad.jsonl", &format!("{EMPTY_EXPORT}{{\"record\": \n"));
    let data = dir.data_arg();
    let bad = bad.display().to_string();
    let stderr = refused(&dir, &["import", "--data-dir", &data, "--input", &bad], &[])
        .await
        .stderr;
    assert!(stderr.contains("line 2"), "{stderr}");
    match dir.postgres_url() {
        Some(_) => assert_eq!(schema(&dir).await, Vec::<String>::new()),
        None => {
            let mut wal = dir.db().into_os_string();
            wal.push("-wal");
            assert!(!dir.db().exists(), "the import left a database file");
            assert!(!std::path::Path::new(&wal).exists());
        }
    }
}

/// The advisory locks on the claim key in the test's database: `(pid, mode, granted,
/// application_name)` of each.
async fn claim_locks(client: &tokio_postgres::Client) -> Vec<(i32, String, bool, String)> {
    client
        .query(
            &format!(
                "SELECT l.pid, l.mode, l.granted, a.application_name \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND a.datname = current_database() \
                 AND (l.classid::bigint << 32) + l.objid::bigint = {CLAIM_LOCK} ORDER BY l.granted DESC"
            ),
            &[],
        )
        .await
        .expect("read pg_locks")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The one session holding the claim key, shared: the server's.
async fn server_claim(client: &tokio_postgres::Client) -> (i32, String) {
    match claim_locks(client).await.as_slice() {
        [(pid, mode, true, app)] if mode == "ShareLock" => (*pid, app.clone()),
        other => panic!("expected the server's shared claim alone, found {other:?}"),
    }
}

/// Polls until `/readyz` answers `status`.
async fn until_ready_is(server: &Server, status: StatusCode) {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = server.get("/readyz").await;
        if reply.status == status {
            if status != StatusCode::OK {
                reply.assert_error(status, "UNAVAILABLE");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}: {} {}\n{}",
            reply.status,
            reply.body,
            server.proc.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_fails_readiness_until_it_is_taken_again() {
    let Some(_) = plinth_testkit::postgres_server(
        "claims::a_lost_claim_fails_readiness_until_it_is_taken_again",
    ) else {
        return;
    };
    let dir = TestDir::new();
    let Some(url) = dir.postgres_url() else {
        // A run on SQLite: this is about the PostgreSQL claim.
        return;
    };
    dir.write_config(BOOK);
    let mut server = Server::start(&dir).await;
    until_ready_is(&server, StatusCode::OK).await;
    let inspect = plinth_testkit::connect(&url).await;
    let (claimer, _) = server_claim(&inspect).await;

    // A migration-like session queues for the lock exclusively, so when the server's claim
    // session ends it gets the lock before the server can take it again.
    let locker = plinth_testkit::connect(&url).await;
    let queued = tokio::spawn(async move {
        locker
            .batch_execute(&format!("SELECT pg_advisory_lock({CLAIM_LOCK})"))
            .await
            .expect("take the lock exclusively");
        locker
    });
    let deadline = Instant::now() + WAIT;
    while !claim_locks(&inspect).await.iter().any(|l| !l.2) {
        assert!(
            Instant::now() < deadline,
            "the exclusive request never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended: bool = inspect
        .query_one("SELECT pg_terminate_backend($1, 30000)", &[&claimer])
        .await
        .expect("end the claim's session")
        .get(0);
    assert!(ended, "the claim's session did not end");
    let locker = tokio::time::timeout(WAIT, queued)
        .await
        .expect("the exclusive lock is granted")
        .expect("the locker task");

    // The server notices, says so, and is not ready while the lock is taken.
    until_ready_is(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    server
        .proc
        .wait_for_log("that the claim ended", |l| {
            l["level"] == "ERROR"
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("claim on the database ended"))
        })
        .await;
    let locks = claim_locks(&inspect).await;
    assert!(
        matches!(locks.as_slice(), [(_, mode, true, _)] if mode == "ExclusiveLock"),
        "{locks:?}"
    );

    // Once the lock is free the server takes it again and is ready; a migration is refused.
    locker
        .batch_execute(&format!("SELECT pg_advisory_unlock({CLAIM_LOCK})"))
        .await
        .expect("release the lock");
    until_ready_is(&server, StatusCode::OK).await;
    let (again, application) = server_claim(&inspect).await;
    assert_ne!(again, claimer, "a new session");
    assert_eq!(application, "plinth-claim");
    let data = dir.data_arg();
    let stderr = refused(&dir, &["migrate", "--data-dir", &data], &[])
        .await
        .stderr;
    assert!(stderr.contains("is using"), "{stderr}");
    server.stop().await;
}

//! Databases made by an older release: Plinth's own tables are created with `CREATE TABLE IF
//! NOT EXISTS`, so columns added since must be added (and backfilled) when a store opens an
//! existing database. Here `_plinth_refresh_tokens` has its first layout (no
//! `family_started_at`) and a live session from an hour ago, on both engines. And
//! `_plinth_audit` has its first layout (no indexes, no checkpoints table): opening adds
//! them.

use crate::pg;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use plinth_store::{
    AuditVerdict, Keys, PgOptions, PgStore, Refresh, SqliteOptions, SqliteStore, Store,
};
use std::time::{Duration, SystemTime};

/// The first layout of the refresh-token table, `{uuid}` and `{time}` per engine.
const OLD_REFRESH_TABLE: &str = "
    CREATE TABLE _plinth_refresh_tokens (
        token_hash TEXT NOT NULL PRIMARY KEY,
        family {uuid} NOT NULL,
        user_id {uuid} NOT NULL,
        expires_at {time} NOT NULL,
        spent_at {time},
        revoked_at {time},
        created_at {time} NOT NULL
    );";

const FAMILY: &str = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
const USER: &str = "0192f1c4-7a1e-7c3a-9b2d-000000000001";

fn at(offset_secs: i64) -> Timestamp {
    let by = Duration::from_secs(offset_secs.unsigned_abs());
    let now = SystemTime::now();
    Timestamp::from_system(if offset_secs >= 0 { now + by } else { now - by })
}

/// The old session, an hour old, rotated once (a spent token and a live one, the live one
/// made a minute ago), is still live after the upgrade; its start is the family's oldest
/// token, carried on by later rotations; a second open changes nothing.
async fn check_upgraded(open: impl AsyncFn() -> Box<dyn Store>) {
    let store = open().await;
    assert_eq!(
        store
            .rotate_refresh(&pg::ctx(), "live", "next", at(3600), at(-7200))
            .await
            .expect("rotate"),
        Refresh::Rotated {
            user_id: USER.parse().expect("uuid")
        },
        "the session from before the upgrade goes on"
    );
    store.close().await;
    let store = open().await;
    // Started an hour ago (not a minute ago, when its live token was made).
    assert_eq!(
        store
            .rotate_refresh(&pg::ctx(), "next", "after", at(3600), at(-1800))
            .await
            .expect("rotate"),
        Refresh::Invalid,
        "the backfilled start is the family's first token"
    );
    assert_eq!(
        store
            .rotate_refresh(&pg::ctx(), "next", "after", at(3600), at(-7200))
            .await
            .expect("rotate"),
        Refresh::Rotated {
            user_id: USER.parse().expect("uuid")
        }
    );
    assert_eq!(store.sweep_refresh(at(-1800), 100).await.expect("sweep"), 4);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_adds_the_session_start_to_an_old_refresh_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plinth.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create the old database");
        let micros = |t: Timestamp| t.as_micros();
        conn.execute_batch(
            &OLD_REFRESH_TABLE
                .replace("{uuid}", "TEXT")
                .replace("{time}", "INTEGER"),
        )
        .expect("the old table");
        for (hash, created, spent) in [("spent", at(-3600), Some(at(-60))), ("live", at(-60), None)]
        {
            conn.execute(
                "INSERT INTO _plinth_refresh_tokens (token_hash, family, user_id, expires_at, spent_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    hash,
                    FAMILY,
                    USER,
                    micros(at(3600)),
                    spent.map(micros),
                    micros(created)
                ],
            )
            .expect("an old token");
        }
    }
    check_upgraded(async || {
        Box::new(
            SqliteStore::open(SqliteOptions::new(path.clone()))
                .await
                .expect("open the old database"),
        ) as Box<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_adds_the_session_start_to_an_old_refresh_table() {
    let Some(server) =
        pg::server("upgrade::postgres_adds_the_session_start_to_an_old_refresh_table")
    else {
        return;
    };
    let db = pg::Database::create(&server).await;
    let client = db.inspect().await;
    client
        .batch_execute(
            &OLD_REFRESH_TABLE
                .replace("{uuid}", "UUID")
                .replace("{time}", "TIMESTAMPTZ"),
        )
        .await
        .expect("the old table");
    client
        .batch_execute(&format!(
            "INSERT INTO _plinth_refresh_tokens (token_hash, family, user_id, expires_at, spent_at, created_at) VALUES \
             ('spent', '{FAMILY}', '{USER}', now() + interval '1 hour', now() - interval '1 minute', now() - interval '1 hour'), \
             ('live', '{FAMILY}', '{USER}', now() + interval '1 hour', NULL, now() - interval '1 minute')"
        ))
        .await
        .expect("old tokens");
    let url = db.url();
    check_upgraded(async || {
        Box::new(
            PgStore::open(PgOptions::new(url.clone()))
                .await
                .expect("open the old database"),
        ) as Box<dyn Store>
    })
    .await;
}

/// The first layout of the audit table, `{uuid}`, `{time}` and `{int}` per engine.
const OLD_AUDIT_TABLE: &str = "
    CREATE TABLE _plinth_audit (
        seq {int} NOT NULL PRIMARY KEY,
        at {time} NOT NULL,
        actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'system', 'guest')),
        actor_id {uuid},
        actor_label TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT,
        record_id {uuid},
        request_id TEXT NOT NULL,
        client_addr TEXT,
        changes TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );";

/// The audit indexes a store adds.
const AUDIT_INDEXES: [&str; 3] = [
    "_plinth_audit_actor",
    "_plinth_audit_at",
    "_plinth_audit_record",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_adds_the_audit_indexes_and_checkpoints_to_an_old_audit_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plinth.db");
    let conn = rusqlite::Connection::open(&path).expect("create the old database");
    conn.execute_batch(
        &OLD_AUDIT_TABLE
            .replace("{uuid}", "TEXT")
            .replace("{time}", "INTEGER")
            .replace("{int}", "INTEGER"),
    )
    .expect("the old table");
    let store = SqliteStore::open(SqliteOptions::new(path.clone()))
        .await
        .expect("open the old database");
    assert_eq!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 0 }
    );
    store.close().await;
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '_plinth_audit' \
             AND name NOT LIKE 'sqlite%' ORDER BY name",
        )
        .expect("prepare");
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    assert_eq!(names, AUDIT_INDEXES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_adds_the_audit_indexes_and_checkpoints_to_an_old_audit_table() {
    let Some(server) = pg::server(
        "upgrade::postgres_adds_the_audit_indexes_and_checkpoints_to_an_old_audit_table",
    ) else {
        return;
    };
    let db = pg::Database::create(&server).await;
    let client = db.inspect().await;
    client
        .batch_execute(
            &OLD_AUDIT_TABLE
                .replace("{uuid}", "UUID")
                .replace("{time}", "TIMESTAMPTZ")
                .replace("{int}", "BIGINT"),
        )
        .await
        .expect("the old table");
    let store = PgStore::open(PgOptions::new(db.url()))
        .await
        .expect("open the old database");
    assert_eq!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 0 }
    );
    store.close().await;
    let rows = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = '_plinth_audit' \
             AND indexname <> '_plinth_audit_pkey' ORDER BY indexname",
            &[],
        )
        .await
        .expect("the indexes");
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, AUDIT_INDEXES);
}

/// Accounts stored before emails were sealed: their emails in plaintext, `email_norm` the
/// normalized email. Two look like sealed values by their start (`v1:`, `V1:`) but are not.
const OLD_ACCOUNTS: &str = "INSERT INTO _plinth_users (id, email, email_norm, role, password_hash, created_at, updated_at, version) VALUES \
     ('0192f1c4-7a1e-7c3a-9b2d-000000000002', 'Old.Timer@Example.com', 'old.timer@example.com', 'user', 'x', {t}, {t}, 1), \
     ('0192f1c4-7a1e-7c3a-9b2d-000000000003', 'v1:k1:ada@example.com', 'v1:k1:ada@example.com', 'user', 'x', {t}, {t}, 1), \
     ('0192f1c4-7a1e-7c3a-9b2d-000000000004', 'V1:Bob@example.com', 'v1:bob@example.com', 'user', 'x', {t}, {t}, 1)";

/// The old emails, and their local parts (which no stored row may show once sealed).
const OLD_EMAILS: [(&str, &str); 3] = [
    ("Old.Timer@Example.com", "old.timer"),
    ("v1:k1:ada@example.com", "ada@"),
    ("V1:Bob@example.com", "bob@"),
];

/// Opened with keys, the old accounts' emails are sealed (no plaintext left in the rows),
/// they still sign in by email in any case, read back as written and list; a second open
/// changes nothing.
async fn check_emails_sealed(
    open: impl AsyncFn() -> Box<dyn Store>,
    raw: impl AsyncFn() -> String,
) {
    for _ in 0..2 {
        let store = open().await;
        for (written, _) in OLD_EMAILS {
            let email = Email::parse(&written.to_uppercase()).expect("email");
            let user = store
                .find_user_by_email(&email)
                .await
                .expect("find")
                .unwrap_or_else(|| panic!("{written} signs in by email"));
            assert_eq!(user.email, written);
        }
        let listed = store.list_users(None, 10).await.expect("list the users");
        let mut emails: Vec<String> = listed.into_iter().map(|u| u.email).collect();
        emails.sort();
        let mut expected: Vec<&str> = OLD_EMAILS.iter().map(|(w, _)| *w).collect();
        expected.sort_unstable();
        assert_eq!(emails, expected);
        store.close().await;
        let rows = raw().await;
        for (_, local) in OLD_EMAILS {
            assert!(!rows.to_lowercase().contains(local), "{rows}");
        }
        assert_eq!(rows.matches("v1:").count(), 3, "{rows}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_seals_the_emails_of_old_accounts() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("plinth.db");
    // Plinth's tables as a keyless open makes them, then an account as an older release
    // stored it.
    let old = SqliteStore::open(SqliteOptions::new(path.clone()))
        .await
        .expect("open without keys");
    old.close().await;
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch(&OLD_ACCOUNTS.replace("{t}", "0"))
        .expect("the old accounts");
    let keys = crate::contract::test_keys();
    check_emails_sealed(
        async || {
            let mut options = SqliteOptions::new(path.clone());
            options.keys = keys.clone();
            Box::new(SqliteStore::open(options).await.expect("open")) as Box<dyn Store>
        },
        async || {
            rusqlite::Connection::open(&path)
                .expect("open")
                .query_row(
                    "SELECT group_concat(email || ' ' || email_norm, ' ') FROM _plinth_users",
                    [],
                    |r| r.get(0),
                )
                .expect("the rows")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seals_the_emails_of_old_accounts() {
    let Some(server) = pg::server("upgrade::postgres_seals_the_emails_of_old_accounts") else {
        return;
    };
    let db = pg::Database::create(&server).await;
    let url = db.url();
    let old = PgStore::open(PgOptions::new(url.clone()))
        .await
        .expect("open without keys");
    old.close().await;
    let client = db.inspect().await;
    client
        .batch_execute(&OLD_ACCOUNTS.replace("{t}", "now()"))
        .await
        .expect("the old accounts");
    let keys: Keys = crate::contract::test_keys();
    check_emails_sealed(
        async || {
            let mut options = PgOptions::new(url.clone());
            options.keys = keys.clone();
            Box::new(PgStore::open(options).await.expect("open")) as Box<dyn Store>
        },
        async || {
            client
                .query_one(
                    "SELECT string_agg(email || ' ' || email_norm, ' ') FROM _plinth_users",
                    &[],
                )
                .await
                .expect("the rows")
                .get(0)
        },
    )
    .await;
}

//! Behaviour when another process holds the database's write lock.

use plinth_core::{Draft, Principal, Schema, Status};
use plinth_store::{SqliteOptions, SqliteStore, Store, StoreError, WriteCtx};
use std::time::Duration;

fn ctx() -> WriteCtx {
    WriteCtx::new(Principal::local_admin(), "test")
}

fn draft(name: &str) -> Draft {
    Draft {
        name: name.to_owned(),
        status: Status::Active,
        fields: Vec::new(),
    }
}

#[tokio::test]
async fn a_write_blocked_by_another_process_is_unavailable_not_internal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plinth.db");
    let mut opts = SqliteOptions::new(&path);
    opts.busy_timeout = Duration::from_millis(200);
    opts.keys = crate::contract::test_keys();
    let store = SqliteStore::open(opts).await.expect("open");
    let schema = Schema::from_decls(&[]).expect("schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = schema.model("resource").expect("resource").clone();

    // Another process (here: another connection) takes the write lock and keeps it.
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let err = store
        .create(&ctx(), &model, draft("blocked"), None)
        .await
        .expect_err("must not write");
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    assert_eq!(err.code(), plinth_core::ErrorCode::Unavailable);

    // Reads still work while the lock is held (WAL), and writes resume once it is released.
    assert!(store.ping().await.is_ok());
    other.execute_batch("ROLLBACK").expect("unlock");
    let created = store
        .create(&ctx(), &model, draft("after"), None)
        .await
        .expect("write after unlock");
    assert_eq!(created.record.name, "after");
    store.close().await;
}

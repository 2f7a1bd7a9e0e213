//! Records kept after a get (`cache`): a get after a write's answer reads the write, for
//! writes of every kind; a kept record is answered without reading the database, and only
//! for the model it was read as; a job run alone (a restore) drops every kept record; gets
//! racing writes never read a version older than one already answered.

use super::super::{SqliteOptions, SqliteStore};
use super::tail::{create, ctx, migrate, person};
use crate::Store;
use crate::seal::{Keyring, Keys};
use plinth_core::{FieldAccess, ModelDef, Status};
use serde_json::json;
use std::sync::Arc;

/// A store keeping up to `cache` bytes of records, migrated to `person` and `other`.
async fn store(cache: usize) -> (tempfile::TempDir, SqliteStore, Arc<ModelDef>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SqliteOptions::new(dir.path().join("db.sqlite"));
    opts.keys = Keys::fixed(Keyring::generate().expect("keys"));
    opts.record_cache = cache;
    let store = SqliteStore::open(opts).await.expect("open");
    let model = migrate(&store, &[]).await;
    (dir, store, model)
}

async fn age(store: &SqliteStore, model: &Arc<ModelDef>, id: plinth_core::RecordId) -> i64 {
    let r = store
        .get(model, id)
        .await
        .expect("get")
        .expect("the record");
    match r.fields[1] {
        plinth_core::Value::Integer(n) => n,
        ref v => panic!("age is {v:?}"),
    }
}

#[tokio::test]
async fn a_get_after_a_write_reads_the_write() {
    let (_dir, store, model) = store(1 << 20).await;
    let r = create(&store, &model, 1).await;
    let got = store.get(&model, r.id).await.expect("get");
    assert_eq!(got.as_ref(), Some(&r));
    // Read twice: the second is the kept copy.
    assert_eq!(
        store.get(&model, r.id).await.expect("get").as_ref(),
        Some(&r)
    );

    let patch = plinth_core::input::validate_patch(&model, &json!({"age": 40}), FieldAccess::All)
        .expect("a valid patch");
    let updated = store
        .update(&ctx(), &model, r.id, patch, Some(1))
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(store.get(&model, r.id).await.expect("get"), Some(updated));
    assert_eq!(age(&store, &model, r.id).await, 40);

    let deleted = store
        .delete(&ctx(), &model, r.id, None)
        .await
        .expect("delete");
    let got = store.get(&model, r.id).await.expect("get").expect("kept");
    assert_eq!(
        (got.status, got.version),
        (Status::Deleted, deleted.version)
    );

    store.restore(&ctx(), &model, r.id).await.expect("restore");
    let got = store.get(&model, r.id).await.expect("get").expect("kept");
    assert_eq!(got.status, Status::Active);

    store
        .purge(&ctx(), &model, r.id, None)
        .await
        .expect("purge");
    assert_eq!(store.get(&model, r.id).await.expect("get"), None);
}

#[tokio::test]
async fn a_kept_record_is_answered_without_the_database_and_only_for_its_model() {
    for (cache, kept) in [(1 << 20, true), (0, false)] {
        let (_dir, store, model) = store(cache).await;
        let r = create(&store, &model, 1).await;
        assert_eq!(age(&store, &model, r.id).await, 1);
        // Changed behind the store's back (nothing in Plinth writes records this way).
        let path = store.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let c = rusqlite::Connection::open(path).expect("open");
            c.execute("UPDATE person SET age = 2", []).expect("update");
        })
        .await
        .expect("the update");
        let expected = if kept { 1 } else { 2 };
        assert_eq!(
            age(&store, &model, r.id).await,
            expected,
            "cache of {cache}"
        );

        // The same model of another schema does not find it: its get reads the database.
        let schema = person(&[]);
        let fresh = schema.model("person").expect("person");
        assert_eq!(age(&store, fresh, r.id).await, 2);
    }
}

#[tokio::test]
async fn a_restore_drops_every_kept_record() {
    let (dir, store, model) = store(1 << 20).await;
    let r = create(&store, &model, 1).await;
    let backup = dir.path().join("backup.db");
    store.backup_to(&backup).await.expect("backup");
    let patch = plinth_core::input::validate_patch(&model, &json!({"age": 40}), FieldAccess::All)
        .expect("a valid patch");
    store
        .update(&ctx(), &model, r.id, patch, Some(1))
        .await
        .expect("update");
    assert_eq!(age(&store, &model, r.id).await, 40);
    store.restore_from(&backup, true).await.expect("restore");
    let got = store.get(&model, r.id).await.expect("get");
    assert_eq!(got, Some(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gets_racing_writes_never_read_a_version_older_than_one_answered() {
    let (_dir, store, model) = store(1 << 20).await;
    let records: Vec<_> =
        futures_util::future::join_all((0..4).map(|n| create(&store, &model, n))).await;
    // Per record, a writer that reads its record back after every answered update, and a
    // reader that gets it all the while (its misses race the writer's commits).
    let mut tasks = Vec::new();
    for r in &records {
        let (s, m, id) = (store.clone(), Arc::clone(&model), r.id);
        tasks.push(tokio::spawn(async move {
            for n in 1..=60 {
                let patch =
                    plinth_core::input::validate_patch(&m, &json!({ "age": n }), FieldAccess::All)
                        .expect("a valid patch");
                let written = s.update(&ctx(), &m, id, patch, None).await.expect("update");
                let read = s.get(&m, id).await.expect("get").expect("the record");
                assert!(
                    read.version >= written.version,
                    "{} < {}",
                    read.version,
                    written.version
                );
            }
        }));
        let (s, m, id) = (store.clone(), Arc::clone(&model), r.id);
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..600 {
                let read = s.get(&m, id).await.expect("get").expect("the record");
                assert!(
                    read.version >= last,
                    "went back from {last} to {}",
                    read.version
                );
                last = read.version;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a task");
    }
    for r in &records {
        assert_eq!(
            store
                .get(&model, r.id)
                .await
                .expect("get")
                .map(|r| r.version),
            Some(61)
        );
    }
}

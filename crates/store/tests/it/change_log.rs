//! The change log across PostgreSQL instances: two stores on one database writing at once
//! from several tasks log every change exactly once, in the audit trail's total order, read
//! alike through either; a write bumps its own instance's change signal once, and the
//! other's through `NOTIFY`, and that notice drops no cache (no `Invalidation` is sent for
//! it).
//!
//! PostgreSQL only (a SQLite file has one writing process); without `PLINTH_TEST_POSTGRES`
//! each test prints a `SKIPPED` line, or fails where skipping is not allowed.

use crate::pg::*;
use plinth_core::{Patch, Value};
use plinth_store::{Invalidation, PgStore, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;

/// Writers per instance, and records each creates (then updates).
const WRITERS: usize = 3;
const RECORDS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_writing_at_once_log_every_change_once_in_seq_order() {
    let Some(server) = server("two_instances_writing_at_once_log_every_change_once_in_seq_order")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(2).await;
    let (_, schema) = v1();
    for store in &stores {
        store.migrate(&schema, false).await.expect("migrate");
    }
    let model = Arc::clone(schema.model("book").expect("book"));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for w in 0..WRITERS {
            let (store, model) = (Arc::clone(store), Arc::clone(&model));
            tasks.push(tokio::spawn(async move {
                for n in 0..RECORDS {
                    let isbn = format!("{i}-{w}-{n}");
                    let made = store
                        .create(&ctx(), &model, book("T", &isbn, 1), None)
                        .await
                        .expect("create");
                    let patch = Patch {
                        fields: vec![None, None, Some(Value::Integer(2))],
                        ..Patch::default()
                    };
                    store
                        .update(&ctx(), &model, made.record.id, patch, Some(1))
                        .await
                        .expect("update");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("a writer");
    }
    let total = 2 * WRITERS * RECORDS * 2;
    let entries = stores[0].audit_list(0, 10_000).await.expect("the audit");
    let expected: Vec<_> = entries
        .iter()
        .filter(|x| x.action.starts_with("record."))
        .map(|x| (x.seq, x.record_id.expect("a record")))
        .collect();
    assert_eq!(expected.len(), total);
    for store in &stores {
        // Read in pages, as the feed does: the same sequence.
        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = store.changes_after(after, 7).await.expect("a page");
            if page.through == after {
                assert!(page.changes.is_empty() && !page.full);
                break;
            }
            after = page.through;
            read.extend(page.changes.into_iter().map(|c| (c.seq, c.record.id)));
        }
        assert_eq!(read, expected);
        let window = store.change_window().await.expect("the window");
        assert_eq!(window.head, entries.last().map_or(0, |x| x.seq));
    }
}

/// Waits until `signal` changes, at most `within`.
async fn bumped(signal: &mut tokio::sync::watch::Receiver<u64>, within: Duration) -> bool {
    tokio::time::timeout(within, signal.changed()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_one_instance_bumps_the_others_signal_and_drops_no_cache() {
    let Some(server) =
        server("a_write_through_one_instance_bumps_the_others_signal_and_drops_no_cache")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(2).await;
    let (a, b): (&Arc<PgStore>, &Arc<PgStore>) = (&stores[0], &stores[1]);
    let (_, schema) = v1();
    for store in &stores {
        store.migrate(&schema, false).await.expect("migrate");
    }
    let model = Arc::clone(schema.model("book").expect("book"));
    let mut signal = b.change_signal();
    let mut caches = b.invalidations().expect("PostgreSQL announces");
    // B's listener may still be connecting: write through A until B hears of one.
    let mut n = 0;
    loop {
        n += 1;
        assert!(n < 50, "B never heard of A's writes");
        a.create(&ctx(), &model, book("T", &format!("warm-{n}"), 1), None)
            .await
            .expect("create");
        if bumped(&mut signal, Duration::from_millis(200)).await {
            break;
        }
    }
    // Settle: what the listener's connection sent (its `All`, late notices) is drained.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while !matches!(caches.try_recv(), Err(TryRecvError::Empty)) {}
    signal.borrow_and_update();

    let made = a
        .create(&ctx(), &model, book("T", "watched", 1), None)
        .await
        .expect("create");
    assert!(
        bumped(&mut signal, Duration::from_secs(5)).await,
        "B's signal bumps after A's write"
    );
    // The change is in the log B reads, by then.
    let log = b.changes_after(0, 1000).await.expect("the log").changes;
    assert_eq!(log.last().map(|c| c.record.id), Some(made.record.id));
    // The notice was a change, not a cache flush.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heard: Result<Invalidation, _> = caches.try_recv();
    assert!(
        matches!(heard, Err(TryRecvError::Empty)),
        "a change sends no invalidation: {heard:?}"
    );
}

/// One store on a fresh database with `v1`'s models, and its `book`; the database lives as
/// long as the first.
async fn one_store(server: &str) -> (Database, Arc<PgStore>, Arc<plinth_core::ModelDef>) {
    let database = Database::create(server).await;
    let store = Arc::clone(&database.stores(1).await[0]);
    let (_, schema) = v1();
    store.migrate(&schema, false).await.expect("migrate");
    let model = Arc::clone(schema.model("book").expect("book"));
    (database, store, model)
}

/// A write bumps its own instance's signal once, not twice: by its notice while the LISTEN
/// connection is up (the notice reaches this instance too), else by itself. Twice, the
/// change feed would read the log twice a write, once for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_bumps_its_own_instances_signal_once() {
    let Some(server) = server("a_write_bumps_its_own_instances_signal_once") else {
        return;
    };
    let (_database, store, model) = one_store(&server).await;
    let mut signal = store.change_signal();
    // The listener bumps the signal once it listens.
    while *signal.borrow_and_update() == 0 {
        assert!(
            bumped(&mut signal, Duration::from_secs(5)).await,
            "the listener listens"
        );
    }
    for n in 0..5 {
        let before = *signal.borrow_and_update();
        store
            .create(&ctx(), &model, book("T", &format!("once-{n}"), 1), None)
            .await
            .expect("create");
        assert!(bumped(&mut signal, Duration::from_secs(5)).await, "bumped");
        // Time for a second bump, were there one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            *signal.borrow_and_update(),
            before + 1,
            "write {n}: one bump"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_starts_the_window_at_the_restored_head() {
    let Some(server) = server("a_restore_starts_the_window_at_the_restored_head") else {
        return;
    };
    let (_database, store, model) = one_store(&server).await;
    for n in 0..3 {
        store
            .create(&ctx(), &model, book("T", &format!("b{n}"), 1), None)
            .await
            .expect("create");
    }
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("plinth.backup");
    store.backup_to(&file).await.expect("backup");
    // Written after the backup: another history than the restored one.
    store
        .create(&ctx(), &model, book("T", "later", 1), None)
        .await
        .expect("create");
    store.restore_from(&file, true).await.expect("restore");
    let window = store.change_window().await.expect("the window");
    assert!(window.head > 0);
    assert_eq!(window.pruned_through, window.head);
    assert!(
        store
            .changes_after(0, 100)
            .await
            .expect("the log")
            .changes
            .is_empty()
    );
    // Writes after it are logged as before.
    store
        .create(&ctx(), &model, book("T", "after", 1), None)
        .await
        .expect("create");
    let log = store
        .changes_after(window.head, 100)
        .await
        .expect("the log")
        .changes;
    assert_eq!(log.len(), 1);
}

//! The audit trail across PostgreSQL instances: two stores on one database writing at once
//! append to one chain, in one total order, with no fork and no gap; and pruning from both
//! while they write leaves a chain that verifies.
//!
//! PostgreSQL only (the SQLite engine has one writer); without `PLINTH_TEST_POSTGRES` the
//! test prints a `SKIPPED` line, or fails where skipping is not allowed.

use crate::pg::*;
use plinth_core::{Patch, Timestamp, Value};
use plinth_store::{AuditVerdict, Store};
use std::sync::Arc;

/// Writers per instance, and records each creates (then updates).
const WRITERS: usize = 4;
const RECORDS: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_writing_at_once_append_one_gap_free_chain() {
    let Some(server) = server("two_instances_writing_at_once_append_one_gap_free_chain") else {
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
    for store in &stores {
        assert_eq!(
            store.audit_verify().await.expect("verify"),
            AuditVerdict::Intact {
                entries: total as u64
            }
        );
    }
    let entries = stores[1]
        .audit_list(0, 10_000)
        .await
        .expect("list the audit");
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(seqs, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_pruning_while_writing_keep_a_chain_that_verifies() {
    let Some(server) = server("two_instances_pruning_while_writing_keep_a_chain_that_verifies")
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
        let (writer, model) = (Arc::clone(store), Arc::clone(&model));
        tasks.push(tokio::spawn(async move {
            for n in 0..RECORDS * 2 {
                let isbn = format!("{i}-{n}");
                writer
                    .create(&ctx(), &model, book("T", &isbn, 1), None)
                    .await
                    .expect("create");
            }
        }));
        let pruner = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..RECORDS {
                let now = Timestamp::from_system(std::time::SystemTime::now());
                pruner.audit_prune(now, 3).await.expect("prune");
                assert!(matches!(
                    pruner.audit_verify().await.expect("verify"),
                    AuditVerdict::Intact { .. }
                ));
            }
        }));
    }
    for t in tasks {
        t.await.expect("a writer or pruner");
    }
    for store in &stores {
        assert!(matches!(
            store.audit_verify().await.expect("verify"),
            AuditVerdict::Intact { .. }
        ));
    }
    let entries = stores[0].audit_list(0, 10_000).await.expect("list");
    for w in entries.windows(2) {
        assert_eq!((w[1].seq, &w[1].prev_hash), (w[0].seq + 1, &w[0].hash));
    }
}

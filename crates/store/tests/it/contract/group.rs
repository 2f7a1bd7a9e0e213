//! Group commit: creates arriving together are committed together (the batch-size stats
//! show a batch of more than one), and batching changes no outcome: every create is
//! committed with its audit entry, a refused one leaves nothing (no record, no entry) while
//! those beside it commit, and one idempotency key sent many times at once makes one record.

use super::{Engine, admin, draft, model, schema, walk};
use plinth_core::{ListScope, Schema};
use plinth_store::{AuditVerdict, IdempotencyClaim, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

contract!(
    concurrent_creates_commit_in_shared_transactions_with_every_audit_entry,
    a_refused_create_in_a_batch_leaves_nothing_and_spares_the_others,
    one_idempotency_key_sent_at_once_makes_one_record,
);

/// Creates sent at once.
const BURST: usize = 200;

/// A `book` whose `sku` is unique.
fn books() -> Schema {
    schema(json!([{"name": "book", "fields": [
        {"name": "sku", "type": "string", "unique": true}
    ]}]))
}

/// Batches committed so far and the jobs they held, from the engine's group commit.
fn batches(store: &dyn Store) -> (u64, u64) {
    let stats = store.engine_stats();
    let group = stats
        .group
        .or(stats.writer)
        .expect("the engine reports its group commit");
    (group.batch_sizes.count, group.batch_sizes.sum)
}

/// Sends `bodies` as creates all at once; their results in the same order.
async fn burst(
    store: &Arc<dyn Store>,
    s: &Schema,
    bodies: Vec<(serde_json::Value, Option<IdempotencyClaim>)>,
) -> Vec<Result<plinth_store::Created, StoreError>> {
    let book = model(s, "book");
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|(body, claim)| {
            let (store, book) = (Arc::clone(store), Arc::clone(&book));
            tokio::spawn(async move {
                let d = draft(&book, &body);
                store.create(&admin(), &book, d, claim).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a create task"));
    }
    out
}

async fn concurrent_creates_commit_in_shared_transactions_with_every_audit_entry(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let before = batches(&*e.store);
    let bodies = (0..BURST)
        .map(|i| {
            (
                json!({"name": format!("b{i}"), "sku": format!("S-{i}")}),
                None,
            )
        })
        .collect();
    for made in burst(&e.store, &s, bodies).await {
        made.expect("a create");
    }
    let (count, sum) = batches(&*e.store);
    let (count, sum) = (count - before.0, sum - before.1);
    assert_eq!(
        sum, BURST as u64,
        "every create went through the group commit"
    );
    assert!(
        count < sum,
        "{BURST} creates at once took {count} transactions: none was shared"
    );
    let all = walk(&*e.store, &model(&s, "book"), &[], ListScope::All).await;
    assert_eq!(all.len(), BURST);
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    assert_eq!(
        entries
            .iter()
            .filter(|a| a.action == "record.create")
            .count(),
        BURST
    );
    assert_eq!(
        e.store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: entries.len() as u64
        }
    );
}

async fn a_refused_create_in_a_batch_leaves_nothing_and_spares_the_others(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let book = model(&s, "book");
    let taken = e
        .create(&admin(), &book, json!({"name": "first", "sku": "TAKEN"}))
        .await;
    // Every other create repeats the taken value.
    let bodies = (0..BURST)
        .map(|i| {
            let sku = if i % 2 == 0 {
                format!("S-{i}")
            } else {
                "TAKEN".to_owned()
            };
            (json!({"name": format!("b{i}"), "sku": sku}), None)
        })
        .collect();
    let results = burst(&e.store, &s, bodies).await;
    for (i, made) in results.iter().enumerate() {
        match (i % 2, made) {
            (0, Ok(_)) | (1, Err(StoreError::Conflict { .. })) => {}
            (_, other) => panic!("create {i}: {other:?}"),
        }
    }
    let all = walk(&*e.store, &book, &[], ListScope::All).await;
    assert_eq!(all.len(), 1 + BURST / 2);
    assert_eq!(all.iter().filter(|r| r.id == taken.id).count(), 1);
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    let created: Vec<_> = entries
        .iter()
        .filter(|a| a.action == "record.create")
        .collect();
    assert_eq!(
        created.len(),
        1 + BURST / 2,
        "a refused create left an entry"
    );
    assert!(
        created
            .iter()
            .all(|a| all.iter().any(|r| Some(r.id) == a.record_id)),
        "an entry names a record that was not written"
    );
    assert_eq!(
        e.store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: entries.len() as u64
        }
    );
}

async fn one_idempotency_key_sent_at_once_makes_one_record(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    const SENT: usize = 32;
    let claim = IdempotencyClaim {
        key: "the-key".to_owned(),
        body_digest: "digest".to_owned(),
    };
    let bodies = (0..SENT)
        .map(|_| (json!({"name": "once", "sku": "ONCE"}), Some(claim.clone())))
        .collect();
    let results = burst(&e.store, &s, bodies).await;
    let made: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("a create or its replay"))
        .collect();
    assert_eq!(made.iter().filter(|c| !c.replayed).count(), 1);
    assert!(made.iter().all(|c| c.record.id == made[0].record.id));
    let all = walk(&*e.store, &model(&s, "book"), &[], ListScope::All).await;
    assert_eq!(all.len(), 1);
}

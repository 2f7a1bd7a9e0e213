//! Group commit: writes arriving together are committed together (the batch-size stats
//! show a batch of more than one), and batching changes no outcome: every write is
//! committed with its audit entry, a refused one leaves nothing (no record, no entry) while
//! those beside it commit, one idempotency key sent many times at once makes one record,
//! and changes to one record sent at once each start from the one before.

use super::{Engine, admin, draft, model, patch, schema, walk};
use plinth_core::{ListScope, Record, RecordId, Schema};
use plinth_store::{AuditVerdict, IdempotencyClaim, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

contract!(
    concurrent_creates_commit_in_shared_transactions_with_every_audit_entry,
    a_refused_create_in_a_batch_leaves_nothing_and_spares_the_others,
    one_idempotency_key_sent_at_once_makes_one_record,
    concurrent_changes_commit_in_shared_transactions_with_every_audit_entry,
    changes_to_one_record_at_once_each_start_from_the_one_before,
    conditional_changes_at_once_one_wins_and_the_others_commit,
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

/// Asserts that the [`BURST`] writes (`what`) since `before` (from [`batches`]) all went
/// through the group commit, some of them sharing a transaction.
fn assert_shared(store: &dyn Store, before: (u64, u64), what: &str) {
    let (count, sum) = batches(store);
    let (count, sum) = (count - before.0, sum - before.1);
    assert_eq!(
        sum, BURST as u64,
        "every one of the {what} went through the group commit"
    );
    assert!(
        count < sum,
        "{BURST} {what} at once took {count} transactions: none was shared"
    );
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
    assert_shared(&*e.store, before, "creates");
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

/// A change to send at once with others.
#[derive(Clone)]
enum Change {
    Create(serde_json::Value),
    Update(RecordId, serde_json::Value, Option<i64>),
    Delete(RecordId, Option<i64>),
    Restore(RecordId),
}

/// Sends `changes` all at once; their results in the same order.
async fn changes_at_once(
    store: &Arc<dyn Store>,
    s: &Schema,
    changes: Vec<Change>,
) -> Vec<Result<Record, StoreError>> {
    let book = model(s, "book");
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|change| {
            let (store, book) = (Arc::clone(store), Arc::clone(&book));
            tokio::spawn(async move {
                match change {
                    Change::Create(body) => {
                        let d = draft(&book, &body);
                        let made = store.create(&admin(), &book, d, None).await;
                        made.map(|c| c.record)
                    }
                    Change::Update(id, body, expected) => {
                        let p = patch(&book, &body);
                        store.update(&admin(), &book, id, p, expected).await
                    }
                    Change::Delete(id, expected) => {
                        store.delete(&admin(), &book, id, expected).await
                    }
                    Change::Restore(id) => store.restore(&admin(), &book, id).await,
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a change task"));
    }
    out
}

/// `n` books made at once, in the order made.
async fn made(e: &Engine, s: &Schema, n: usize) -> Vec<Record> {
    let bodies = (0..n)
        .map(|i| {
            (
                json!({"name": format!("b{i}"), "sku": format!("S-{i}")}),
                None,
            )
        })
        .collect();
    let made = burst(&e.store, s, bodies).await;
    made.into_iter()
        .map(|c| c.expect("a create").record)
        .collect()
}

fn assert_intact(entries: &[plinth_store::AuditEntry], verdict: AuditVerdict) {
    assert_eq!(
        verdict,
        AuditVerdict::Intact {
            entries: entries.len() as u64
        }
    );
}

async fn concurrent_changes_commit_in_shared_transactions_with_every_audit_entry(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let books = made(e, &s, BURST).await;
    let before = batches(&*e.store);
    // A third deleted, the rest renamed; each from version 1.
    let changes = books
        .iter()
        .enumerate()
        .map(|(i, b)| match i % 3 {
            0 => Change::Delete(b.id, Some(1)),
            _ => Change::Update(b.id, json!({"name": format!("u{i}")}), Some(1)),
        })
        .collect();
    for (i, changed) in changes_at_once(&e.store, &s, changes)
        .await
        .into_iter()
        .enumerate()
    {
        let record = changed.unwrap_or_else(|e| panic!("change {i}: {e:?}"));
        assert_eq!((record.id, record.version), (books[i].id, 2));
    }
    assert_shared(&*e.store, before, "changes");
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    let count = |action: &str| entries.iter().filter(|a| a.action == action).count();
    let deleted = BURST.div_ceil(3);
    assert_eq!(count("record.delete"), deleted);
    assert_eq!(count("record.update"), BURST - deleted);
    let live = walk(&*e.store, &model(&s, "book"), &[], ListScope::All).await;
    assert_eq!(live.len(), BURST - deleted);
    assert!(live.iter().all(|r| r.name.starts_with('u')));
    // The deleted ones restored, all at once.
    let restores = books
        .iter()
        .step_by(3)
        .map(|b| Change::Restore(b.id))
        .collect();
    for restored in changes_at_once(&e.store, &s, restores).await {
        let record = restored.expect("a restore");
        assert_eq!((record.status.as_str(), record.version), ("active", 3));
    }
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    let restored = entries.iter().filter(|a| a.action == "record.restore");
    assert_eq!(restored.count(), deleted);
    let all = walk(&*e.store, &model(&s, "book"), &[], ListScope::All).await;
    assert_eq!(all.len(), BURST);
    assert_intact(&entries, e.store.audit_verify().await.expect("verify"));
}

async fn changes_to_one_record_at_once_each_start_from_the_one_before(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let book = made(e, &s, 1).await.remove(0);
    const SENT: usize = 40;
    let changes = (0..SENT)
        .map(|i| Change::Update(book.id, json!({"name": format!("n{i}")}), None))
        .collect();
    let mut versions: Vec<i64> = changes_at_once(&e.store, &s, changes)
        .await
        .into_iter()
        .map(|r| r.expect("an update").version)
        .collect();
    versions.sort_unstable();
    let expected: Vec<i64> = (2..=1 + SENT as i64).collect();
    assert_eq!(versions, expected, "each update made a version of its own");
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    let mut updates: Vec<_> = entries
        .iter()
        .filter(|a| a.action == "record.update" && a.record_id == Some(book.id))
        .collect();
    updates.sort_by_key(|a| a.seq);
    assert_eq!(updates.len(), SENT);
    let mut name = json!(book.name);
    for entry in &updates {
        let change = &entry.changes["name"];
        assert_eq!(
            change["from"], name,
            "entry {} starts from the update before it",
            entry.seq
        );
        name = change["to"].clone();
    }
    let now = e
        .store
        .get(&model(&s, "book"), book.id)
        .await
        .expect("a read")
        .expect("the book");
    assert_eq!((json!(now.name), now.version), (name, 1 + SENT as i64));
    assert_intact(&entries, e.store.audit_verify().await.expect("verify"));
}

async fn conditional_changes_at_once_one_wins_and_the_others_commit(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let books = made(e, &s, 21).await;
    let (target, others) = books.split_first().expect("books");
    const RACING: usize = 20;
    const CREATES: usize = 10;
    let missing = RecordId::new_v7();
    // Racing updates of one record from version 1, interleaved with an update of each
    // other record and a delete of a record that does not exist.
    let mut changes = Vec::new();
    for (i, other) in others.iter().enumerate() {
        changes.push(Change::Update(
            target.id,
            json!({"name": format!("t{i}")}),
            Some(1),
        ));
        changes.push(Change::Update(
            other.id,
            json!({"name": "renamed"}),
            Some(1),
        ));
    }
    changes.push(Change::Delete(missing, None));
    // Creates among them, and an update to a unique value another book holds.
    for i in 0..CREATES {
        changes.push(Change::Create(
            json!({"name": format!("new{i}"), "sku": format!("N-{i}")}),
        ));
    }
    changes.push(Change::Update(target.id, json!({"sku": "S-5"}), None));
    let results = changes_at_once(&e.store, &s, changes.clone()).await;
    let (mut won, mut stale) = (0, 0);
    for (change, result) in changes.iter().zip(&results) {
        match (change, result) {
            (Change::Update(id, ..), Ok(r)) if *id == target.id => {
                assert_eq!(r.version, 2);
                won += 1;
            }
            (Change::Update(id, ..), Err(StoreError::Stale { expected, current }))
                if *id == target.id =>
            {
                assert_eq!((*expected, *current), (1, 2));
                stale += 1;
            }
            (Change::Update(_, body, None), Err(StoreError::Conflict { .. })) => {
                assert_eq!(body["sku"], "S-5", "only the taken sku conflicts");
            }
            (Change::Update(..), Ok(r)) => assert_eq!((r.name.as_str(), r.version), ("renamed", 2)),
            (Change::Delete(..), Err(StoreError::NotFound)) => {}
            (Change::Create(body), Ok(r)) => assert_eq!(json!(r.name), body["name"]),
            (_, other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((won, stale), (1, RACING - 1));
    let entries = e.store.audit_list(0, 10_000).await.expect("the audit");
    let updates = entries
        .iter()
        .filter(|a| a.action == "record.update")
        .count();
    assert_eq!(
        updates,
        1 + others.len(),
        "an entry for each update that won"
    );
    let created = entries.iter().filter(|a| a.action == "record.create");
    assert_eq!(created.count(), books.len() + CREATES);
    assert!(!entries.iter().any(|a| a.record_id == Some(missing)));
    assert_intact(&entries, e.store.audit_verify().await.expect("verify"));
}

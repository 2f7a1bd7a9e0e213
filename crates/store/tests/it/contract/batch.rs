//! Batch writes (`Store::batch`): all or nothing in one transaction, each update and delete
//! authorised on the record read inside it, the failing item named by its index; and on
//! SQLite a failed batch rolls back alone, never the writes committed in its group.

use super::{Engine, admin, as_user, draft, model, patch, schema, walk};
use plinth_core::{ListScope, ModelDef, Record, Role, Schema};
use plinth_store::{BatchOp, StoreError};
use serde_json::json;
use std::sync::Arc;

contract!(
    a_failing_item_rolls_back_the_whole_batch_and_names_its_index,
    updates_and_deletes_are_authorised_on_the_record_inside_the_transaction,
    a_failed_batch_never_takes_concurrent_writes_down_with_it,
);

fn books() -> Schema {
    schema(json!([
        {"name": "book", "fields": [{"name": "sku", "type": "string", "unique": true}]},
        {"name": "diary", "user_read": "own", "fields": [{"name": "mood", "type": "string"}]}
    ]))
}

fn create(m: &ModelDef, sku: &str) -> BatchOp {
    BatchOp::Create(draft(m, &json!({"name": sku, "sku": sku})))
}

/// The index and cause of a batch's failure.
fn item(err: StoreError) -> (usize, StoreError) {
    match err {
        StoreError::Item { index, source } => (index, *source),
        other => panic!("expected an item's failure, got {other:?}"),
    }
}

/// Every record of `m`, deleted ones included.
async fn records(e: &Engine, m: &Arc<ModelDef>) -> Vec<Record> {
    let mut all = walk(&*e.store, m, &[], ListScope::All).await;
    all.extend(walk(&*e.store, m, &[("status", "deleted")], ListScope::All).await);
    all.sort_by_key(|r| r.id);
    all
}

/// What the database holds of `book`, and how long the audit trail and change log are.
async fn state(e: &Engine, book: &Arc<ModelDef>) -> (Vec<Record>, usize, i64) {
    let audit = e.store.audit_list(0, 10_000).await.expect("audit").len();
    let head = e.store.change_window().await.expect("window").head;
    (records(e, book).await, audit, head)
}

async fn a_failing_item_rolls_back_the_whole_batch_and_names_its_index(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let book = model(&s, "book");
    let a = e
        .create(&admin(), &book, json!({"name": "a", "sku": "A"}))
        .await;
    let before = state(e, &book).await;
    let failing = [
        (create(&book, "A"), "a taken value"),
        (
            BatchOp::Update {
                id: a.id,
                patch: patch(&book, &json!({"name": "a2"})),
                expected_version: Some(7),
            },
            "a stale version",
        ),
        (
            BatchOp::Delete {
                id: plinth_core::RecordId::new_v7(),
                expected_version: None,
            },
            "no such record",
        ),
    ];
    for (last, why) in failing {
        let ops = vec![
            create(&book, "X"),
            BatchOp::Update {
                id: a.id,
                patch: patch(&book, &json!({"name": "renamed"})),
                expected_version: Some(1),
            },
            create(&book, "Y"),
            last,
        ];
        let err = e
            .store
            .batch(&admin(), &book, ops, None)
            .await
            .expect_err(why);
        let (index, cause) = item(err);
        assert_eq!(index, 3, "{why}");
        assert!(
            matches!(
                cause,
                StoreError::Conflict { .. } | StoreError::Stale { .. } | StoreError::NotFound
            ),
            "{why}: {cause:?}"
        );
        assert_eq!(state(e, &book).await, before, "{why}");
    }
    // The same batch without the failing item writes all of it, in order.
    let ops = vec![
        create(&book, "X"),
        BatchOp::Update {
            id: a.id,
            patch: patch(&book, &json!({"name": "renamed"})),
            expected_version: Some(1),
        },
        BatchOp::Delete {
            id: a.id,
            expected_version: Some(2),
        },
    ];
    let done = e
        .store
        .batch(&admin(), &book, ops, None)
        .await
        .expect("batch");
    assert!(!done.replayed);
    assert_eq!(done.records.len(), 3);
    assert_eq!(done.records[1].name, "renamed");
    assert_eq!(done.records[2].status, plinth_core::Status::Deleted);
    assert_eq!(done.records[2].version, 3);
    let (_, audit, head) = state(e, &book).await;
    assert_eq!(audit, before.1 + 3);
    assert_eq!(head, before.2 + 3);
    assert!(matches!(
        e.store.audit_verify().await.expect("verify"),
        plinth_store::AuditVerdict::Intact { .. }
    ));
}

async fn updates_and_deletes_are_authorised_on_the_record_inside_the_transaction(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let (book, diary) = (model(&s, "book"), model(&s, "diary"));
    let alice = e.user("alice@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let hers = e
        .create(&as_user(&alice), &book, json!({"name": "a", "sku": "A"}))
        .await;
    let secret = e
        .create(&as_user(&alice), &diary, json!({"name": "d"}))
        .await;
    let update = |id| BatchOp::Update {
        id,
        patch: patch(&book, &json!({"name": "bob's now"})),
        expected_version: None,
    };
    let delete = |id| BatchOp::Delete {
        id,
        expected_version: None,
    };
    // Readable but not Bob's: forbidden; not even readable: not found.
    for (m, op, expected) in [
        (&book, update(hers.id), "forbidden"),
        (&book, delete(hers.id), "forbidden"),
        (&diary, delete(secret.id), "not found"),
    ] {
        let ops = vec![BatchOp::Create(draft(m, &json!({"name": "b"}))), op];
        let err = e
            .store
            .batch(&as_user(&bob), m, ops, None)
            .await
            .expect_err(expected);
        let (index, cause) = item(err);
        assert_eq!(index, 1);
        match expected {
            "forbidden" => assert!(matches!(cause, StoreError::Forbidden), "{cause:?}"),
            _ => assert!(matches!(cause, StoreError::NotFound), "{cause:?}"),
        }
    }
    assert_eq!(e.get(&book, hers.id).await, hers);
    assert_eq!(e.get(&diary, secret.id).await, secret);
    // Alice may.
    let done = e
        .store
        .batch(&as_user(&alice), &book, vec![update(hers.id)], None)
        .await
        .expect("her own record");
    assert_eq!(done.records[0].owner_id, Some(alice.id));
}

async fn a_failed_batch_never_takes_concurrent_writes_down_with_it(e: &Engine) {
    let s = books();
    e.store.migrate(&s, false).await.expect("migrate");
    let book = model(&s, "book");
    e.create(&admin(), &book, json!({"name": "t", "sku": "TAKEN"}))
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, book) = (Arc::clone(&e.store), Arc::clone(&book));
        tasks.spawn(async move {
            if i % 4 == 0 {
                let ops = vec![create(&book, &format!("B{i}")), create(&book, "TAKEN")];
                let err = store
                    .batch(&admin(), &book, ops, None)
                    .await
                    .expect_err("taken");
                assert!(matches!(err, StoreError::Item { index: 1, .. }), "{err:?}");
                None
            } else {
                let d = draft(&book, &json!({"name": "s", "sku": format!("S{i}")}));
                let created = store
                    .create(&admin(), &book, d, None)
                    .await
                    .expect("create");
                Some(created.record.id)
            }
        });
    }
    let mut made = Vec::new();
    while let Some(done) = tasks.join_next().await {
        made.extend(done.expect("the task"));
    }
    assert_eq!(made.len(), 30);
    for id in made {
        e.get(&book, id).await;
    }
    let names: Vec<String> = records(e, &book)
        .await
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names.len(), 31, "{names:?}");
    assert!(
        names.iter().all(|n| n != "B0"),
        "a failed batch's create survived"
    );
}

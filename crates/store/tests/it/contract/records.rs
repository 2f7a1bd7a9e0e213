//! Record writes: create (owner, version, times, idempotent replay), get, update, delete,
//! restore and purge. References, unique values and import are in `references`.

use super::{Engine, admin, as_user, draft, model, patch};
use plinth_core::{RecordId, Role, Status, Value};
use plinth_store::{IdempotencyClaim, StoreError};
use serde_json::json;

contract!(
    create_sets_owner_version_and_times,
    the_same_idempotency_key_and_body_replay_the_first_create,
    a_purged_record_frees_its_idempotency_key,
    get_finds_records_whatever_their_status,
    update_bumps_the_version_and_honours_the_expected_one,
    a_deleted_record_cannot_be_updated,
    delete_is_soft_and_checks_versions,
    restore_undoes_a_delete_only,
    purge_removes_for_good_and_checks_versions,
);

pub(super) fn decls() -> serde_json::Value {
    json!([
        {"name": "customer", "fields": [
            {"name": "email", "type": "string", "unique": true},
            {"name": "score", "type": "integer"}
        ]},
        {"name": "order", "fields": [
            {"name": "customer", "type": "reference", "model": "customer"},
            {"name": "total", "type": "integer"}
        ]},
        {"name": "diary", "user_read": "own"},
        {"name": "entry", "fields": [
            {"name": "diary", "type": "reference", "model": "diary"}
        ]}
    ])
}

fn claim(key: &str, digest: &str) -> Option<IdempotencyClaim> {
    Some(IdempotencyClaim {
        key: key.to_owned(),
        body_digest: digest.to_owned(),
    })
}

pub(super) fn conflict_field(err: &StoreError) -> Option<&str> {
    match err {
        StoreError::Conflict { field, .. } => Some(field.as_deref().unwrap_or("")),
        _ => None,
    }
}

async fn create_sets_owner_version_and_times(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let user = e.user("ann@example.com", Role::User).await;
    let before = plinth_core::Timestamp::from_system(std::time::SystemTime::now());
    let owned = e
        .create(&as_user(&user), &customer, json!({"name": "a", "score": 3}))
        .await;
    assert_eq!(owned.owner_id, Some(user.id));
    assert_eq!(owned.version, 1);
    assert_eq!(owned.status, Status::Active);
    assert_eq!(owned.created_at, owned.updated_at);
    assert!(owned.created_at >= before, "created in the past");
    assert_eq!(owned.fields, [Value::Null, Value::Integer(3)]);
    assert_eq!(e.get(&customer, owned.id).await, owned);
    // The local administrator is no stored user: its records have no owner.
    let unowned = e.create(&admin(), &customer, json!({"name": "b"})).await;
    assert_eq!(unowned.owner_id, None);
    assert_ne!(unowned.id, owned.id);
    assert!(
        unowned.created_at > owned.created_at,
        "times follow commits"
    );
    let inactive = e
        .create(
            &admin(),
            &customer,
            json!({"name": "c", "status": "inactive"}),
        )
        .await;
    assert_eq!(e.get(&customer, inactive.id).await.status, Status::Inactive);
}

async fn the_same_idempotency_key_and_body_replay_the_first_create(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let (ann, bob) = (
        e.user("ann@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let body = json!({"name": "once", "score": 1});
    let first = e
        .store
        .create(
            &as_user(&ann),
            &customer,
            draft(&customer, &body),
            claim("k1", "d1"),
        )
        .await
        .expect("first create");
    assert!(!first.replayed);
    // Changed since: the replay answers with the record as it is now.
    let changed = e
        .store
        .update(
            &as_user(&ann),
            &customer,
            first.record.id,
            patch(&customer, &json!({"score": 2})),
            None,
        )
        .await
        .expect("update");
    let again = e
        .store
        .create(
            &as_user(&ann),
            &customer,
            draft(&customer, &body),
            claim("k1", "d1"),
        )
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.record, changed);
    // The same key with another body is a conflict on the header.
    let err = e
        .store
        .create(
            &as_user(&ann),
            &customer,
            draft(&customer, &body),
            claim("k1", "d2"),
        )
        .await
        .expect_err("another body");
    assert_eq!(conflict_field(&err), Some("Idempotency-Key"), "{err:?}");
    // Keys are scoped to the user: another user's same key makes a record of its own.
    let other = e
        .store
        .create(
            &as_user(&bob),
            &customer,
            draft(&customer, &body),
            claim("k1", "d2"),
        )
        .await
        .expect("another user's key");
    assert!(!other.replayed);
    assert_ne!(other.record.id, first.record.id);
    assert_eq!(other.record.owner_id, Some(bob.id));
    // …and to the model.
    let order = model(&s, "order");
    let in_order = e
        .store
        .create(
            &as_user(&ann),
            &order,
            draft(&order, &json!({"name": "o"})),
            claim("k1", "d1"),
        )
        .await
        .expect("the same key on another model");
    assert!(!in_order.replayed);
    // Without a key nothing is replayed.
    let plain = e.create(&as_user(&ann), &customer, body).await;
    assert_ne!(plain.id, first.record.id);
}

async fn a_purged_record_frees_its_idempotency_key(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let body = json!({"name": "gone"});
    let first = e
        .store
        .create(
            &admin(),
            &customer,
            draft(&customer, &body),
            claim("k", "d"),
        )
        .await
        .expect("create");
    e.store
        .purge(&admin(), &customer, first.record.id, None)
        .await
        .expect("purge");
    // The purge removed the key with the record: the same request makes a new record.
    let again = e
        .store
        .create(
            &admin(),
            &customer,
            draft(&customer, &body),
            claim("k", "d"),
        )
        .await
        .expect("create after purge");
    assert!(!again.replayed);
    assert_ne!(again.record.id, first.record.id);
    let replay = e
        .store
        .create(
            &admin(),
            &customer,
            draft(&customer, &body),
            claim("k", "d"),
        )
        .await
        .expect("replay of the new record");
    assert!(replay.replayed);
    assert_eq!(replay.record.id, again.record.id);
}

async fn get_finds_records_whatever_their_status(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e.create(&admin(), &customer, json!({"name": "x"})).await;
    let deleted = e
        .store
        .delete(&admin(), &customer, r.id, None)
        .await
        .expect("delete");
    assert_eq!(e.get(&customer, r.id).await, deleted);
    assert_eq!(deleted.status, Status::Deleted);
    assert!(
        e.store
            .get(&customer, RecordId::new_v7())
            .await
            .expect("get")
            .is_none()
    );
    // Another model's id is not found in this one.
    assert!(
        e.store
            .get(&model(&s, "order"), r.id)
            .await
            .expect("get")
            .is_none()
    );
}

async fn update_bumps_the_version_and_honours_the_expected_one(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let ann = e.user("ann@example.com", Role::User).await;
    let r = e
        .create(
            &as_user(&ann),
            &customer,
            json!({"name": "a", "email": "a@x.io", "score": 1}),
        )
        .await;
    let v2 = e
        .store
        .update(
            &admin(),
            &customer,
            r.id,
            patch(&customer, &json!({"score": 2})),
            None,
        )
        .await
        .expect("update");
    assert_eq!(v2.version, 2);
    assert_eq!(
        v2.fields,
        [Value::Text("a@x.io".to_owned()), Value::Integer(2)]
    );
    assert_eq!(
        (v2.name.as_str(), v2.created_at, v2.owner_id),
        ("a", r.created_at, Some(ann.id))
    );
    assert!(v2.updated_at > r.updated_at);
    assert_eq!(e.get(&customer, r.id).await, v2);

    let v3 = e
        .store
        .update(
            &admin(),
            &customer,
            r.id,
            patch(
                &customer,
                &json!({"name": "b", "status": "inactive", "email": null}),
            ),
            Some(2),
        )
        .await
        .expect("update at the expected version");
    assert_eq!(v3.version, 3);
    assert_eq!((v3.name.as_str(), v3.status), ("b", Status::Inactive));
    assert_eq!(v3.fields, [Value::Null, Value::Integer(2)]);

    match e
        .store
        .update(
            &admin(),
            &customer,
            r.id,
            patch(&customer, &json!({"score": 9})),
            Some(2),
        )
        .await
    {
        Err(StoreError::Stale {
            expected: 2,
            current: 3,
        }) => {}
        other => panic!("a stale version: {other:?}"),
    }
    assert_eq!(
        e.get(&customer, r.id).await,
        v3,
        "a stale write changes nothing"
    );
    for expected in [None, Some(1)] {
        let err = e
            .store
            .update(
                &admin(),
                &customer,
                RecordId::new_v7(),
                patch(&customer, &json!({"score": 9})),
                expected,
            )
            .await
            .expect_err("no such record");
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
}

async fn a_deleted_record_cannot_be_updated(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e.create(&admin(), &customer, json!({"name": "a"})).await;
    let deleted = e
        .store
        .delete(&admin(), &customer, r.id, None)
        .await
        .expect("delete");
    for expected in [None, Some(deleted.version)] {
        let err = e
            .store
            .update(
                &admin(),
                &customer,
                r.id,
                patch(&customer, &json!({"name": "b"})),
                expected,
            )
            .await
            .expect_err("a deleted record");
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    assert_eq!(e.get(&customer, r.id).await, deleted);
}

async fn delete_is_soft_and_checks_versions(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e
        .create(&admin(), &customer, json!({"name": "a", "score": 5}))
        .await;
    match e.store.delete(&admin(), &customer, r.id, Some(7)).await {
        Err(StoreError::Stale {
            expected: 7,
            current: 1,
        }) => {}
        other => panic!("a stale delete: {other:?}"),
    }
    let deleted = e
        .store
        .delete(&admin(), &customer, r.id, Some(1))
        .await
        .expect("delete");
    assert_eq!((deleted.status, deleted.version), (Status::Deleted, 2));
    assert_eq!(deleted.fields, r.fields, "a soft delete keeps the values");
    assert_eq!(e.get(&customer, r.id).await, deleted);
    let err = e
        .store
        .delete(&admin(), &customer, r.id, None)
        .await
        .expect_err("deleted twice");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = e
        .store
        .delete(&admin(), &customer, RecordId::new_v7(), None)
        .await
        .expect_err("no such record");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn restore_undoes_a_delete_only(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e.create(&admin(), &customer, json!({"name": "a"})).await;
    let err = e
        .store
        .restore(&admin(), &customer, r.id)
        .await
        .expect_err("restore a live record");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    e.store
        .delete(&admin(), &customer, r.id, None)
        .await
        .expect("delete");
    let restored = e
        .store
        .restore(&admin(), &customer, r.id)
        .await
        .expect("restore");
    assert_eq!((restored.status, restored.version), (Status::Active, 3));
    assert_eq!(e.get(&customer, r.id).await, restored);
    let err = e
        .store
        .restore(&admin(), &customer, RecordId::new_v7())
        .await
        .expect_err("no such record");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn purge_removes_for_good_and_checks_versions(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e.create(&admin(), &customer, json!({"name": "a"})).await;
    match e.store.purge(&admin(), &customer, r.id, Some(2)).await {
        Err(StoreError::Stale {
            expected: 2,
            current: 1,
        }) => {}
        other => panic!("a stale purge: {other:?}"),
    }
    e.store
        .purge(&admin(), &customer, r.id, Some(1))
        .await
        .expect("purge");
    assert!(e.store.get(&customer, r.id).await.expect("get").is_none());
    let err = e
        .store
        .purge(&admin(), &customer, r.id, None)
        .await
        .expect_err("purged twice");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // A deleted record can be purged too.
    let d = e.create(&admin(), &customer, json!({"name": "d"})).await;
    e.store
        .delete(&admin(), &customer, d.id, None)
        .await
        .expect("delete");
    e.store
        .purge(&admin(), &customer, d.id, None)
        .await
        .expect("purge a deleted record");
    assert!(e.store.get(&customer, d.id).await.expect("get").is_none());
}

//! What ties records together: a purge refused while referenced, references that must
//! name existing (and, for own-only models, the writer's own) records, unique values, and
//! import of exact records. The models are `records::decls`.

use super::records::{conflict_field, decls};
use super::{Engine, admin, as_user, draft, model, patch};
use plinth_core::{Record, RecordId, Role, Status, Value};
use plinth_store::StoreError;
use serde_json::json;

contract!(
    purge_is_refused_while_the_record_is_referenced,
    references_must_name_existing_records,
    users_reference_only_their_own_records_of_an_own_only_model,
    unique_values_conflict_naming_the_field,
    import_record_keeps_every_value,
);

async fn purge_is_refused_while_the_record_is_referenced(e: &Engine) {
    let s = e.migrate(decls()).await;
    let (customer, order) = (model(&s, "customer"), model(&s, "order"));
    let c = e.create(&admin(), &customer, json!({"name": "c"})).await;
    let o = e
        .create(
            &admin(),
            &order,
            json!({"name": "o", "customer": c.id.to_string()}),
        )
        .await;
    // Even a soft-deleted order still references the customer.
    e.store
        .delete(&admin(), &order, o.id, None)
        .await
        .expect("delete the order");
    let err = e
        .store
        .purge(&admin(), &customer, c.id, None)
        .await
        .expect_err("still referenced");
    match &err {
        StoreError::Conflict { reason, .. } => {
            assert!(reason.contains("order.customer"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.get(&customer, c.id).await, c);
    e.store
        .purge(&admin(), &order, o.id, None)
        .await
        .expect("purge the order");
    e.store
        .purge(&admin(), &customer, c.id, None)
        .await
        .expect("purge once nothing references it");
}

async fn references_must_name_existing_records(e: &Engine) {
    let s = e.migrate(decls()).await;
    let (customer, order) = (model(&s, "customer"), model(&s, "order"));
    let nobody = RecordId::new_v7().to_string();
    let err = e
        .store
        .create(
            &admin(),
            &order,
            draft(&order, &json!({"name": "o", "customer": nobody})),
            None,
        )
        .await
        .expect_err("a dangling reference");
    assert!(
        matches!(&err, StoreError::InvalidReference { field } if field == "customer"),
        "{err:?}"
    );
    let c = e.create(&admin(), &customer, json!({"name": "c"})).await;
    let o = e
        .create(
            &admin(),
            &order,
            json!({"name": "o", "customer": c.id.to_string()}),
        )
        .await;
    assert_eq!(o.fields[0], Value::Reference(c.id));
    let err = e
        .store
        .update(
            &admin(),
            &order,
            o.id,
            patch(&order, &json!({"customer": nobody})),
            None,
        )
        .await
        .expect_err("a dangling reference");
    assert!(
        matches!(&err, StoreError::InvalidReference { field } if field == "customer"),
        "{err:?}"
    );
    // A customer of another model's id is no customer.
    let err = e
        .store
        .create(
            &admin(),
            &order,
            draft(&order, &json!({"name": "o2", "customer": o.id.to_string()})),
            None,
        )
        .await
        .expect_err("an id of another model");
    assert!(
        matches!(err, StoreError::InvalidReference { .. }),
        "{err:?}"
    );
    assert_eq!(e.get(&order, o.id).await, o);
}

async fn users_reference_only_their_own_records_of_an_own_only_model(e: &Engine) {
    let s = e.migrate(decls()).await;
    let (diary, entry) = (model(&s, "diary"), model(&s, "entry"));
    let (ann, bob) = (
        e.user("ann@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let hers = e
        .create(&as_user(&ann), &diary, json!({"name": "ann's"}))
        .await;
    let body = json!({"name": "e", "diary": hers.id.to_string()});
    // To Bob, Ann's diary does not exist: the same answer as for an unknown id.
    let err = e
        .store
        .create(&as_user(&bob), &entry, draft(&entry, &body), None)
        .await
        .expect_err("another user's record");
    assert!(
        matches!(&err, StoreError::InvalidReference { field } if field == "diary"),
        "{err:?}"
    );
    let own = e.create(&as_user(&ann), &entry, body.clone()).await;
    assert_eq!(own.fields[0], Value::Reference(hers.id));
    let his = e.create(&as_user(&bob), &entry, json!({"name": "b"})).await;
    let err = e
        .store
        .update(
            &as_user(&bob),
            &entry,
            his.id,
            patch(&entry, &json!({"diary": hers.id.to_string()})),
            None,
        )
        .await
        .expect_err("another user's record");
    assert!(
        matches!(err, StoreError::InvalidReference { .. }),
        "{err:?}"
    );
    // Admins see every record.
    let admin_user = e.user("root@example.com", Role::Admin).await;
    e.create(&as_user(&admin_user), &entry, body.clone()).await;
    e.create(&admin(), &entry, body).await;
}

async fn unique_values_conflict_naming_the_field(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let a = e
        .create(&admin(), &customer, json!({"name": "a", "email": "a@x.io"}))
        .await;
    let err = e
        .store
        .create(
            &admin(),
            &customer,
            draft(&customer, &json!({"name": "b", "email": "a@x.io"})),
            None,
        )
        .await
        .expect_err("a taken value");
    assert_eq!(conflict_field(&err), Some("email"), "{err:?}");
    let b = e
        .create(&admin(), &customer, json!({"name": "b", "email": "b@x.io"}))
        .await;
    let err = e
        .store
        .update(
            &admin(),
            &customer,
            b.id,
            patch(&customer, &json!({"email": "a@x.io"})),
            None,
        )
        .await
        .expect_err("a taken value");
    assert_eq!(conflict_field(&err), Some("email"), "{err:?}");
    assert_eq!(e.get(&customer, b.id).await, b);
    // NULL is no value: any number of records may lack one.
    e.create(&admin(), &customer, json!({"name": "n1"})).await;
    e.create(&admin(), &customer, json!({"name": "n2"})).await;
    // A deleted record keeps its value.
    e.store
        .delete(&admin(), &customer, a.id, None)
        .await
        .expect("delete");
    let err = e
        .store
        .create(
            &admin(),
            &customer,
            draft(&customer, &json!({"name": "c", "email": "a@x.io"})),
            None,
        )
        .await
        .expect_err("a deleted record's value");
    assert_eq!(conflict_field(&err), Some("email"), "{err:?}");
}

async fn import_record_keeps_every_value(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let owner = uuid::Uuid::now_v7();
    let at = plinth_core::Timestamp::from_micros(1_600_000_000_123_456).expect("a time");
    let later = plinth_core::Timestamp::from_micros(1_700_000_000_654_321).expect("a time");
    let record = Record {
        id: RecordId::new_v7(),
        name: "imported 𝄞".to_owned(),
        status: Status::Deleted,
        created_at: at,
        updated_at: later,
        owner_id: Some(owner),
        version: 17,
        fields: vec![Value::Text("i@x.io".to_owned()), Value::Integer(-4)],
    };
    e.store
        .import_record(&customer, record.clone())
        .await
        .expect("import");
    assert_eq!(e.get(&customer, record.id).await, record);
    let err = e
        .store
        .import_record(&customer, record.clone())
        .await
        .expect_err("the same id twice");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

//! Values unique per owner (`unique = "owner"`): one owner may not repeat a value, two owners
//! may share one, and the conflict says "this owner"; changing between global and per-owner
//! uniqueness is an index change, refused while the data breaks the new rule.

use super::{Engine, as_user, draft, model, patch, schema};
use plinth_core::{Role, Schema};
use plinth_store::StoreError;
use serde_json::json;

contract!(
    a_value_unique_per_owner_repeats_across_owners_only,
    unique_changes_between_global_and_per_owner_as_the_data_allows,
);

/// An own-read `order` whose `sku` is unique as `unique` says.
fn orders(unique: serde_json::Value) -> Schema {
    schema(json!([{"name": "order", "user_read": "own", "fields": [
        {"name": "sku", "type": "string", "unique": unique}
    ]}]))
}

/// The conflict's field and reason.
fn conflict(err: &StoreError) -> (Option<&str>, &str) {
    match err {
        StoreError::Conflict { field, reason } => (field.as_deref(), reason.as_str()),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn a_value_unique_per_owner_repeats_across_owners_only(e: &Engine) {
    let s = orders(json!("owner"));
    e.store.migrate(&s, false).await.expect("migrate");
    let order = model(&s, "order");
    let (alice, bob) = (
        e.user("alice@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let body = json!({"name": "o", "sku": "A-1"});
    let mine = e.create(&as_user(&alice), &order, body.clone()).await;
    // Bob may have the value Alice has, and nothing tells him she has it.
    let his = e.create(&as_user(&bob), &order, body.clone()).await;
    assert_eq!(his.owner_id, Some(bob.id));
    // Alice may not have it twice, by create or by update.
    let err = e
        .store
        .create(&as_user(&alice), &order, draft(&order, &body), None)
        .await
        .expect_err("a repeated value of one owner");
    assert_eq!(
        conflict(&err),
        (
            Some("sku"),
            "this owner already has a record with this value"
        )
    );
    let other = e
        .create(
            &as_user(&alice),
            &order,
            json!({"name": "o2", "sku": "B-2"}),
        )
        .await;
    let err = e
        .store
        .update(
            &as_user(&alice),
            &order,
            other.id,
            patch(&order, &json!({"sku": "A-1"})),
            None,
        )
        .await
        .expect_err("updated onto a value the owner has");
    assert_eq!(conflict(&err).0, Some("sku"));
    assert_eq!(e.get(&order, other.id).await, other);
    assert_eq!(e.get(&order, mine.id).await, mine);
}

async fn unique_changes_between_global_and_per_owner_as_the_data_allows(e: &Engine) {
    let (global, per_owner) = (orders(json!(true)), orders(json!("owner")));
    e.store.migrate(&global, false).await.expect("migrate");
    let (alice, bob) = (
        e.user("alice@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let order = model(&global, "order");
    e.create(&as_user(&alice), &order, json!({"name": "a", "sku": "A-1"}))
        .await;
    // Globally unique: Bob is refused Alice's value.
    let err = e
        .store
        .create(
            &as_user(&bob),
            &order,
            draft(&order, &json!({"name": "b", "sku": "A-1"})),
            None,
        )
        .await
        .expect_err("globally unique");
    assert_eq!(
        conflict(&err),
        (Some("sku"), "another record already has this value")
    );

    let plan = e.store.plan(&per_owner).await.expect("plan");
    let steps: Vec<String> = plan.steps.iter().map(|s| s.describe()).collect();
    assert_eq!(steps, ["change the index of order.sku"]);
    assert!(!plan.steps[0].is_destructive());
    e.store
        .migrate(&per_owner, false)
        .await
        .expect("to per owner");
    let order = model(&per_owner, "order");
    e.create(&as_user(&bob), &order, json!({"name": "b", "sku": "A-1"}))
        .await;

    // Back to global uniqueness: refused while two owners share a value, naming the field,
    // and nothing changes.
    match e.store.migrate(&global, false).await {
        Err(StoreError::Migration(msg)) => {
            assert!(msg.contains("order.sku"), "{msg}");
            assert!(msg.contains("unique"), "{msg}");
        }
        other => panic!("global uniqueness over shared values: {other:?}"),
    }
    assert_eq!(e.store.plan(&global).await.expect("plan").steps.len(), 1);
    let err = e
        .store
        .create(
            &as_user(&alice),
            &order,
            draft(&order, &json!({"name": "a2", "sku": "A-1"})),
            None,
        )
        .await
        .expect_err("still unique per owner");
    assert_eq!(conflict(&err).0, Some("sku"));
    // One owner holding a value twice cannot become unique per owner either.
    let plain = orders(json!(false));
    e.store
        .migrate(&plain, false)
        .await
        .expect("drop uniqueness");
    let order = model(&plain, "order");
    e.create(
        &as_user(&alice),
        &order,
        json!({"name": "a3", "sku": "A-1"}),
    )
    .await;
    match e.store.migrate(&per_owner, false).await {
        Err(StoreError::Migration(msg)) => {
            assert!(
                msg.contains("order.sku") && msg.contains("per owner"),
                "{msg}"
            );
        }
        other => panic!("per-owner uniqueness over one owner's duplicates: {other:?}"),
    }
}

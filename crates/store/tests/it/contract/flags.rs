//! Feature flags: stored and read back exactly, a taken key refused, changes versioned and
//! conditional (on the flag's id too, so a flag made again under a deleted one's key is
//! another), deletes, and each change's audit entry written with it (none for a refusal
//! or a change to nothing new).

use super::{Engine, admin};
use plinth_core::Role;
use plinth_core::Timestamp;
use plinth_core::flags::{Audience, FlagChanges, FlagKey, FlagRule, Rollout};
use plinth_store::{FlagVersion, NewFlag, StoreError};
use serde_json::json;

contract!(
    flags_are_stored_changed_and_deleted_with_their_audit_entries,
    a_condition_on_a_deleted_flag_refuses_the_one_made_again_under_its_key
);

fn key(s: &str) -> FlagKey {
    FlagKey::parse(s).expect("a valid key")
}

/// `flag` (by id) at `version`.
fn at(flag: &plinth_core::flags::Flag, version: i64) -> Option<FlagVersion> {
    Some(FlagVersion {
        id: flag.id,
        version,
    })
}

/// The actions of the audit entries about flags, in order.
async fn flag_actions(e: &Engine) -> Vec<String> {
    let entries = e.store.audit_list(0, 1000).await.expect("list the audit");
    entries
        .into_iter()
        .filter(|a| a.model.as_deref() == Some("_flags"))
        .map(|a| a.action)
        .collect()
}

async fn flags_are_stored_changed_and_deleted_with_their_audit_entries(e: &Engine) {
    let user = uuid::Uuid::now_v7();
    let rule = FlagRule {
        enabled: true,
        rollout: Rollout::from_percent(12.34).expect("a rollout"),
        allow: vec![Audience::User(user), Audience::Role(Role::Admin)],
        deny: vec![Audience::ApiKey(user)],
        on_from: Timestamp::from_micros(1_700_000_000_000_001),
        off_after: None,
    };
    let new = NewFlag {
        key: key("new-checkout"),
        description: "the one-page checkout".to_owned(),
        rule: rule.clone(),
    };
    let made = e
        .store
        .create_flag(&admin(), new.clone())
        .await
        .expect("create");
    assert_eq!(
        (made.version, &made.rule, made.created_at),
        (1, &rule, made.updated_at)
    );
    let read = e.store.get_flag(&key("new-checkout")).await.expect("read");
    assert_eq!(read.as_ref(), Some(&made));
    let dup = e.store.create_flag(&admin(), new).await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { field: Some(f), .. }) if f == "key"),
        "{dup:?}"
    );
    let other = NewFlag {
        key: key("a.first"),
        description: String::new(),
        rule: FlagRule {
            enabled: false,
            rollout: Rollout::NONE,
            allow: vec![],
            deny: vec![],
            on_from: None,
            off_after: None,
        },
    };
    e.store
        .create_flag(&admin(), other)
        .await
        .expect("create another");
    let keys: Vec<String> = e
        .store
        .list_flags()
        .await
        .expect("list")
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    assert_eq!(keys, ["a.first", "new-checkout"]);

    // A change bumps the version; a stale one is refused and changes nothing.
    let change = FlagChanges {
        rollout: Some(Rollout::FULL),
        on_from: Some(None),
        ..FlagChanges::default()
    };
    let changed = e
        .store
        .update_flag(&admin(), &key("new-checkout"), change.clone(), at(&made, 1))
        .await
        .expect("update");
    assert_eq!(
        (changed.version, changed.rule.rollout, changed.rule.on_from),
        (2, Rollout::FULL, None)
    );
    assert!(changed.updated_at > made.updated_at);
    let stale = e
        .store
        .update_flag(
            &admin(),
            &key("new-checkout"),
            FlagChanges {
                enabled: Some(false),
                ..FlagChanges::default()
            },
            at(&made, 1),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Stale {
                expected: 1,
                current: 2
            })
        ),
        "{stale:?}"
    );
    // Nothing new: the same flag, no new version, no entry.
    let same = e
        .store
        .update_flag(&admin(), &key("new-checkout"), change, None)
        .await
        .expect("a no-op");
    assert_eq!(same, changed);
    let missing = e
        .store
        .update_flag(&admin(), &key("missing"), FlagChanges::default(), None)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    let stale = e
        .store
        .delete_flag(&admin(), &key("new-checkout"), at(&made, 1))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    e.store
        .delete_flag(&admin(), &key("new-checkout"), at(&made, 2))
        .await
        .expect("delete");
    assert_eq!(
        e.store.get_flag(&key("new-checkout")).await.expect("read"),
        None
    );
    let gone = e
        .store
        .delete_flag(&admin(), &key("new-checkout"), None)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");

    assert_eq!(
        flag_actions(e).await,
        ["flag.create", "flag.create", "flag.update", "flag.delete"]
    );
    let entries = e.store.audit_list(0, 1000).await.expect("list the audit");
    let update = entries
        .iter()
        .find(|a| a.action == "flag.update")
        .expect("the update's entry");
    assert_eq!(update.record_id.map(|r| *r.as_uuid()), Some(made.id));
    assert_eq!(
        update.changes["rollout"],
        json!({"from": 12.34, "to": 100.0})
    );
    assert_eq!(
        e.store.audit_verify().await.expect("verify"),
        plinth_store::AuditVerdict::Intact { entries: 4 }
    );
}

async fn a_condition_on_a_deleted_flag_refuses_the_one_made_again_under_its_key(e: &Engine) {
    let new = NewFlag {
        key: key("kill-switch"),
        description: String::new(),
        rule: FlagRule {
            enabled: false,
            rollout: Rollout::NONE,
            allow: vec![],
            deny: vec![],
            on_from: None,
            off_after: None,
        },
    };
    let old = e
        .store
        .create_flag(&admin(), new.clone())
        .await
        .expect("create");
    e.store
        .delete_flag(&admin(), &key("kill-switch"), None)
        .await
        .expect("delete");
    let again = e.store.create_flag(&admin(), new).await.expect("again");
    assert_eq!(
        again.version, old.version,
        "the same key at the same version"
    );
    let on = FlagChanges {
        enabled: Some(true),
        ..FlagChanges::default()
    };
    let stale = e
        .store
        .update_flag(&admin(), &key("kill-switch"), on, at(&old, 1))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    let stale = e
        .store
        .delete_flag(&admin(), &key("kill-switch"), at(&old, 1))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    let held = e.store.get_flag(&key("kill-switch")).await.expect("read");
    assert_eq!(held, Some(again.clone()), "nothing changed");
    e.store
        .delete_flag(&admin(), &key("kill-switch"), at(&again, 1))
        .await
        .expect("the current one's condition holds");
}

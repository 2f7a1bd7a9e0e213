//! Users: create, look up (email case-insensitively), page, change (versions, the last
//! admin), delete (with their credentials), count admins.

use super::{Engine, HASH, admin, as_user, model};
use plinth_core::auth::Email;
use plinth_core::{Role, Timestamp};
use plinth_store::{NewApiKey, NewUser, Refresh, StoreError, UserChanges};
use serde_json::json;
use std::time::{Duration, SystemTime};

contract!(
    accounts_work_before_the_first_migration,
    create_user_and_find_them_by_id_and_by_email,
    an_email_is_taken_whatever_its_case,
    list_users_pages_by_id,
    update_user_bumps_the_version_and_honours_the_expected_one,
    a_new_password_role_or_email_ends_the_users_sessions,
    the_last_admin_cannot_be_demoted_or_deleted,
    delete_user_removes_their_tokens_and_keys_but_not_their_records,
    import_user_keeps_every_value,
    a_verified_address_is_kept_until_the_address_changes,
);

fn email(s: &str) -> Email {
    Email::parse(s).expect("a valid email")
}

fn hour_from_now() -> Timestamp {
    Timestamp::from_system(SystemTime::now() + Duration::from_secs(3600))
}

async fn accounts_work_before_the_first_migration(e: &Engine) {
    let ada = e.user("ada@example.com", Role::Admin).await;
    assert_eq!(e.store.count_admins().await.expect("count"), 1);
    assert_eq!(
        e.store.list_users(None, 10).await.expect("list"),
        std::slice::from_ref(&ada)
    );
    e.store
        .insert_refresh(
            &super::admin(),
            ada.id,
            uuid::Uuid::now_v7(),
            "t",
            hour_from_now(),
            super::started_now(),
        )
        .await
        .expect("a refresh token");
    e.store
        .create_api_key(
            &admin(),
            NewApiKey {
                user_id: ada.id,
                name: "k".to_owned(),
                prefix: "plk_k".to_owned(),
                key_hash: "h".to_owned(),
                role: Role::Admin,
                expires_at: None,
            },
        )
        .await
        .expect("a key");
    // Migrating later keeps them.
    e.migrate(json!([])).await;
    assert_eq!(e.store.get_user(ada.id).await.expect("get"), Some(ada));
    assert!(e.store.find_api_key("h").await.expect("find").is_some());
}

async fn create_user_and_find_them_by_id_and_by_email(e: &Engine) {
    let before = Timestamp::from_system(SystemTime::now());
    let ada = e.user("Ada@Example.com", Role::Admin).await;
    assert_eq!(ada.email, "Ada@Example.com", "kept as given");
    assert_eq!((ada.role, ada.version), (Role::Admin, 1));
    assert_eq!(ada.password_hash, super::HASH);
    assert_eq!(ada.created_at, ada.updated_at);
    assert!(ada.created_at >= before);
    assert_eq!(
        e.store.get_user(ada.id).await.expect("get"),
        Some(ada.clone())
    );
    for spelling in ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com"] {
        let found = e
            .store
            .find_user_by_email(&email(spelling))
            .await
            .expect("find");
        assert_eq!(found.as_ref(), Some(&ada), "{spelling}");
    }
    assert_eq!(
        e.store
            .find_user_by_email(&email("eve@example.com"))
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        e.store.get_user(uuid::Uuid::now_v7()).await.expect("get"),
        None
    );
    let bob = e.user("bob@example.com", Role::User).await;
    assert_eq!(bob.role, Role::User);
    assert_ne!(bob.id, ada.id);
}

async fn an_email_is_taken_whatever_its_case(e: &Engine) {
    e.user("ada@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let err = e
        .store
        .create_user(
            &admin(),
            NewUser {
                email: email("ADA@example.COM"),
                password_hash: HASH.to_owned(),
                role: Role::User,
            },
        )
        .await
        .expect_err("a taken email");
    assert!(
        matches!(&err, StoreError::Conflict { field: Some(f), .. } if f == "email"),
        "{err:?}"
    );
    let changes = UserChanges {
        email: Some(email("Ada@Example.Com")),
        ..UserChanges::default()
    };
    let err = e
        .store
        .update_user(&admin(), bob.id, changes, None)
        .await
        .expect_err("a taken email");
    assert!(
        matches!(&err, StoreError::Conflict { field: Some(f), .. } if f == "email"),
        "{err:?}"
    );
    assert_eq!(e.store.get_user(bob.id).await.expect("get"), Some(bob));
}

async fn list_users_pages_by_id(e: &Engine) {
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(e.user(&format!("u{i}@example.com"), Role::User).await.id);
    }
    ids.sort_unstable();
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = e.store.list_users(after, 3).await.expect("list");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|u| u.id));
    }
    assert_eq!(seen, ids);
    assert_eq!(e.store.list_users(None, 100).await.expect("list").len(), 7);
    assert!(
        e.store
            .list_users(ids.last().copied(), 5)
            .await
            .expect("list")
            .is_empty()
    );
    let first = e.store.list_users(None, 1).await.expect("list");
    assert_eq!(first.iter().map(|u| u.id).collect::<Vec<_>>(), [ids[0]]);
}

async fn update_user_bumps_the_version_and_honours_the_expected_one(e: &Engine) {
    let bob = e.user("bob@example.com", Role::User).await;
    let changed = e
        .store
        .update_user(
            &admin(),
            bob.id,
            UserChanges {
                email: Some(email("Robert@Example.com")),
                ..UserChanges::default()
            },
            Some(1),
        )
        .await
        .expect("update");
    assert_eq!(
        (changed.email.as_str(), changed.version),
        ("Robert@Example.com", 2)
    );
    assert_eq!(
        (changed.role, changed.created_at),
        (Role::User, bob.created_at)
    );
    assert!(changed.updated_at > bob.updated_at);
    let found = e
        .store
        .find_user_by_email(&email("robert@example.com"))
        .await
        .expect("find");
    assert_eq!(found, Some(changed.clone()));
    assert_eq!(
        e.store
            .find_user_by_email(&email("bob@example.com"))
            .await
            .expect("find"),
        None
    );

    let promoted = e
        .store
        .update_user(
            &admin(),
            bob.id,
            UserChanges {
                role: Some(Role::Admin),
                password_hash: Some("$argon2id$other".to_owned()),
                ..UserChanges::default()
            },
            None,
        )
        .await
        .expect("update");
    assert_eq!((promoted.role, promoted.version), (Role::Admin, 3));
    assert_eq!(promoted.password_hash, "$argon2id$other");
    assert_eq!(e.store.count_admins().await.expect("count"), 1);

    match e
        .store
        .update_user(&admin(), bob.id, UserChanges::default(), Some(2))
        .await
    {
        Err(StoreError::Stale {
            expected: 2,
            current: 3,
        }) => {}
        other => panic!("a stale version: {other:?}"),
    }
    for expected in [None, Some(1)] {
        let err = e
            .store
            .update_user(
                &admin(),
                uuid::Uuid::now_v7(),
                UserChanges::default(),
                expected,
            )
            .await
            .expect_err("no such user");
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
}

async fn a_new_password_role_or_email_ends_the_users_sessions(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let later = hour_from_now();
    let changes = [
        UserChanges {
            email: Some(email("ann2@example.com")),
            ..UserChanges::default()
        },
        UserChanges {
            password_hash: Some("$argon2id$new".to_owned()),
            ..UserChanges::default()
        },
        UserChanges {
            role: Some(Role::Admin),
            ..UserChanges::default()
        },
    ];
    for (i, change) in changes.into_iter().enumerate() {
        let token = format!("t{i}");
        e.store
            .insert_refresh(
                &super::admin(),
                ann.id,
                uuid::Uuid::now_v7(),
                &token,
                later,
                super::started_now(),
            )
            .await
            .expect("insert");
        e.store
            .update_user(&admin(), ann.id, change, None)
            .await
            .expect("update");
        let outcome = e
            .store
            .rotate_refresh(
                &super::admin(),
                &token,
                &format!("n{i}"),
                later,
                super::no_cutoff(),
            )
            .await
            .expect("rotate");
        assert_eq!(outcome, Refresh::Invalid, "change {i}");
    }
}

async fn the_last_admin_cannot_be_demoted_or_deleted(e: &Engine) {
    assert_eq!(e.store.count_admins().await.expect("count"), 0);
    let root = e.user("root@example.com", Role::Admin).await;
    let user = e.user("user@example.com", Role::User).await;
    assert_eq!(e.store.count_admins().await.expect("count"), 1);
    let demote = || UserChanges {
        role: Some(Role::User),
        ..UserChanges::default()
    };
    let err = e
        .store
        .update_user(&admin(), root.id, demote(), None)
        .await
        .expect_err("demote the last admin");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = e
        .store
        .delete_user(&admin(), root.id)
        .await
        .expect_err("delete the last admin");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        e.store.get_user(root.id).await.expect("get"),
        Some(root.clone())
    );
    // Other changes to the last admin are fine, and so is a user's demotion to user.
    e.store
        .update_user(
            &admin(),
            root.id,
            UserChanges {
                role: Some(Role::Admin),
                ..UserChanges::default()
            },
            None,
        )
        .await
        .expect("keep the admin an admin");
    e.store
        .update_user(&admin(), user.id, demote(), None)
        .await
        .expect("a user stays a user");
    // With a second admin, either may go.
    let second = e.user("second@example.com", Role::Admin).await;
    assert_eq!(e.store.count_admins().await.expect("count"), 2);
    e.store
        .update_user(&admin(), root.id, demote(), None)
        .await
        .expect("demote one of two");
    assert_eq!(e.store.count_admins().await.expect("count"), 1);
    let err = e
        .store
        .delete_user(&admin(), second.id)
        .await
        .expect_err("now the last admin");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    e.store
        .delete_user(&admin(), root.id)
        .await
        .expect("delete a user");
    let err = e
        .store
        .delete_user(&admin(), root.id)
        .await
        .expect_err("deleted twice");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn delete_user_removes_their_tokens_and_keys_but_not_their_records(e: &Engine) {
    let s = e.migrate(json!([])).await;
    let m = model(&s, "resource");
    e.user("root@example.com", Role::Admin).await;
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let record = e.create(&as_user(&ann), &m, json!({"name": "hers"})).await;
    let later = hour_from_now();
    for (user, token) in [(&ann, "ann-token"), (&bob, "bob-token")] {
        e.store
            .insert_refresh(
                &super::admin(),
                user.id,
                uuid::Uuid::now_v7(),
                token,
                later,
                super::started_now(),
            )
            .await
            .expect("insert");
        e.store
            .create_api_key(
                &admin(),
                NewApiKey {
                    user_id: user.id,
                    name: "k".to_owned(),
                    prefix: "plk_x".to_owned(),
                    key_hash: format!("{token}-key"),
                    role: Role::User,
                    expires_at: None,
                },
            )
            .await
            .expect("a key");
    }
    e.store.delete_user(&admin(), ann.id).await.expect("delete");
    assert_eq!(e.store.get_user(ann.id).await.expect("get"), None);
    assert_eq!(
        e.store
            .find_user_by_email(&email("ann@example.com"))
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "ann-token", "x", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    assert!(
        e.store
            .find_api_key("ann-token-key")
            .await
            .expect("find")
            .is_none()
    );
    assert!(
        e.store
            .list_api_keys(Some(ann.id))
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(e.store.list_api_keys(None).await.expect("list").len(), 1);
    // Bob's credentials are untouched; Ann's record keeps its owner.
    assert!(
        e.store
            .find_api_key("bob-token-key")
            .await
            .expect("find")
            .is_some()
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "bob-token", "y", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: bob.id }
    );
    assert_eq!(e.get(&m, record.id).await.owner_id, Some(ann.id));
    // The address is free again.
    e.user("ann@example.com", Role::User).await;
}

async fn import_user_keeps_every_value(e: &Engine) {
    let user = plinth_store::User {
        id: uuid::Uuid::now_v7(),
        email: "Imported@Example.com".to_owned(),
        role: Role::Admin,
        password_hash: HASH.to_owned(),
        created_at: Timestamp::from_micros(1_600_000_000_000_001).expect("a time"),
        updated_at: Timestamp::from_micros(1_700_000_000_000_002).expect("a time"),
        version: 9,
        email_verified_at: Some(Timestamp::from_micros(1_650_000_000_000_003).expect("a time")),
    };
    e.store.import_user(user.clone()).await.expect("import");
    assert_eq!(
        e.store.get_user(user.id).await.expect("get"),
        Some(user.clone())
    );
    let found = e
        .store
        .find_user_by_email(&email("imported@example.com"))
        .await
        .expect("find");
    assert_eq!(found, Some(user.clone()));
    assert_eq!(e.store.count_admins().await.expect("count"), 1);
}

async fn a_verified_address_is_kept_until_the_address_changes(e: &Engine) {
    let ada = e.user("ada@example.com", Role::User).await;
    assert_eq!(ada.email_verified_at, None);
    let verify = UserChanges {
        email_verified: Some(true),
        ..UserChanges::default()
    };
    let ada = e
        .store
        .update_user(&admin(), ada.id, verify.clone(), None)
        .await
        .expect("verify");
    let at = ada.email_verified_at.expect("verified");
    assert_eq!(ada.version, 2);
    // Verifying again changes nothing, not even the time.
    let again = e
        .store
        .update_user(&admin(), ada.id, verify, None)
        .await
        .expect("verify again");
    assert_eq!((again.email_verified_at, again.version), (Some(at), 2));
    // Another spelling of the same address keeps it verified; a new address does not.
    let case = UserChanges {
        email: Some(email("ADA@example.com")),
        ..UserChanges::default()
    };
    let ada = e
        .store
        .update_user(&admin(), ada.id, case, None)
        .await
        .expect("case");
    assert_eq!(ada.email_verified_at, Some(at));
    let moved = UserChanges {
        email: Some(email("ada@elsewhere.example")),
        ..UserChanges::default()
    };
    let ada = e
        .store
        .update_user(&admin(), ada.id, moved, None)
        .await
        .expect("move");
    assert_eq!(ada.email_verified_at, None);
    // A new address proved in the same change (a confirmed email change) is verified.
    let proved = UserChanges {
        email: Some(email("ada@third.example")),
        email_verified: Some(true),
        ..UserChanges::default()
    };
    let ada = e
        .store
        .update_user(&admin(), ada.id, proved, None)
        .await
        .expect("proved move");
    assert!(ada.email_verified_at.is_some());
    assert_eq!(
        e.store.get_user(ada.id).await.expect("get"),
        Some(ada.clone())
    );
    let events: Vec<_> = e
        .store
        .audit_list(0, 1000)
        .await
        .expect("the audit")
        .into_iter()
        .filter(|x| x.action == "account.email_verified")
        .map(|x| x.changes["email_verified"]["to"].clone())
        .collect();
    assert_eq!(events, [json!(true), json!(false), json!(true)]);
}

//! API keys: create, find (live only), list, revoke (own or any), touch.

use super::{Engine, admin};
use plinth_core::{Role, Timestamp};
use plinth_store::{ApiKey, NewApiKey, StoreError, User};
use std::time::{Duration, SystemTime};

contract!(
    a_created_key_is_found_by_its_hash_with_its_user,
    keys_are_listed_per_user_or_all,
    a_revoked_key_is_no_longer_found_and_only_its_owner_may_revoke_it,
    touch_records_the_last_use,
);

fn new_key(user: &User, hash: &str, expires_at: Option<Timestamp>) -> NewApiKey {
    NewApiKey {
        user_id: user.id,
        name: format!("key {hash}"),
        prefix: format!("plk_{hash}"),
        key_hash: hash.to_owned(),
        role: user.role,
        expires_at,
    }
}

async fn make(e: &Engine, user: &User, hash: &str) -> ApiKey {
    e.store
        .create_api_key(&admin(), new_key(user, hash, None))
        .await
        .expect("create a key")
}

async fn a_created_key_is_found_by_its_hash_with_its_user(e: &Engine) {
    let ann = e.user("ann@example.com", Role::Admin).await;
    let expires = Timestamp::from_system(SystemTime::now() + Duration::from_secs(86_400));
    let mut wanted = new_key(&ann, "h1", Some(expires));
    wanted.role = Role::User;
    let key = e
        .store
        .create_api_key(&admin(), wanted)
        .await
        .expect("create");
    assert_eq!(
        (
            key.user_id,
            key.name.as_str(),
            key.prefix.as_str(),
            key.role
        ),
        (ann.id, "key h1", "plk_h1", Role::User)
    );
    assert_eq!(
        (key.expires_at, key.last_used_at, key.revoked_at),
        (Some(expires), None, None)
    );
    let (found, user) = e
        .store
        .find_api_key("h1")
        .await
        .expect("find")
        .expect("a live key");
    assert_eq!((found, user), (key, ann.clone()));
    assert!(e.store.find_api_key("h2").await.expect("find").is_none());
    // Expiry is the caller's to check: an expired key is found, with its expiry.
    let past = Timestamp::from_system(SystemTime::now() - Duration::from_secs(1));
    e.store
        .create_api_key(&admin(), new_key(&ann, "old", Some(past)))
        .await
        .expect("create");
    let (old, _) = e
        .store
        .find_api_key("old")
        .await
        .expect("find")
        .expect("the key");
    assert_eq!(old.expires_at, Some(past));
}

async fn keys_are_listed_per_user_or_all(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let a1 = make(e, &ann, "a1").await;
    let b1 = make(e, &bob, "b1").await;
    let a2 = make(e, &ann, "a2").await;
    let mut hers = e.store.list_api_keys(Some(ann.id)).await.expect("list");
    hers.sort_by_key(|k| k.id);
    assert_eq!(hers, [a1.clone(), a2.clone()]);
    assert_eq!(
        e.store.list_api_keys(Some(bob.id)).await.expect("list"),
        std::slice::from_ref(&b1)
    );
    let mut all = e.store.list_api_keys(None).await.expect("list");
    all.sort_by_key(|k| k.id);
    let mut expected = vec![a1, b1, a2];
    expected.sort_by_key(|k| k.id);
    assert_eq!(all, expected);
    assert!(
        e.store
            .list_api_keys(Some(uuid::Uuid::now_v7()))
            .await
            .expect("list")
            .is_empty()
    );
}

async fn a_revoked_key_is_no_longer_found_and_only_its_owner_may_revoke_it(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let key = make(e, &ann, "k").await;
    let err = e
        .store
        .revoke_api_key(&admin(), key.id, Some(bob.id))
        .await
        .expect_err("another user's key");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(e.store.find_api_key("k").await.expect("find").is_some());
    let revoked = e
        .store
        .revoke_api_key(&admin(), key.id, Some(ann.id))
        .await
        .expect("revoke own");
    let at = revoked.revoked_at.expect("revoked");
    assert_eq!(
        ApiKey {
            revoked_at: None,
            ..revoked.clone()
        },
        key
    );
    assert!(e.store.find_api_key("k").await.expect("find").is_none());
    // Still listed, as revoked; revoking again changes nothing.
    assert_eq!(
        e.store.list_api_keys(Some(ann.id)).await.expect("list"),
        [revoked]
    );
    let again = e
        .store
        .revoke_api_key(&admin(), key.id, None)
        .await
        .expect("again");
    assert_eq!(again.revoked_at, Some(at));
    // Without an owner (an admin), any key may be revoked.
    let bobs = make(e, &bob, "b").await;
    e.store
        .revoke_api_key(&admin(), bobs.id, None)
        .await
        .expect("revoke any");
    assert!(e.store.find_api_key("b").await.expect("find").is_none());
    let err = e
        .store
        .revoke_api_key(&admin(), uuid::Uuid::now_v7(), None)
        .await
        .expect_err("no such key");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn touch_records_the_last_use(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let key = make(e, &ann, "k").await;
    let other = make(e, &ann, "other").await;
    let before = Timestamp::from_system(SystemTime::now());
    e.store.touch_api_key(key.id).await.expect("touch");
    let (touched, _) = e
        .store
        .find_api_key("k")
        .await
        .expect("find")
        .expect("the key");
    let used = touched.last_used_at.expect("a last use");
    assert!(used >= before, "{used:?} < {before:?}");
    assert_eq!(
        ApiKey {
            last_used_at: None,
            ..touched
        },
        key
    );
    let (untouched, _) = e
        .store
        .find_api_key("other")
        .await
        .expect("find")
        .expect("the key");
    assert_eq!(untouched, other);
    e.store.touch_api_key(key.id).await.expect("touch again");
    let (again, _) = e
        .store
        .find_api_key("k")
        .await
        .expect("find")
        .expect("the key");
    assert!(again.last_used_at.expect("a last use") >= used);
}

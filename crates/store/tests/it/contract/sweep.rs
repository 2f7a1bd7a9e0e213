//! Sweeping in bounded batches: refresh tokens only when their whole family is dead, old
//! idempotency keys; and the absolute session lifetime, carried through rotation.

use super::{Engine, admin, draft, model, no_cutoff, walk};
use plinth_core::{Role, Timestamp};
use plinth_store::{IdempotencyClaim, Refresh};
use serde_json::json;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

contract!(
    a_session_past_its_absolute_lifetime_no_longer_rotates,
    only_dead_refresh_families_are_swept_in_batches,
    old_idempotency_keys_are_swept_in_batches,
);

fn at(offset_secs: i64) -> Timestamp {
    let now = SystemTime::now();
    let by = Duration::from_secs(offset_secs.unsigned_abs());
    Timestamp::from_system(if offset_secs >= 0 { now + by } else { now - by })
}

/// A moment strictly between what happened before and what happens after (timestamps are
/// in microseconds).
async fn moment() -> Timestamp {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = at(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

async fn rotate(e: &Engine, old: &str, new: &str, cutoff: Timestamp) -> Refresh {
    e.store
        .rotate_refresh(&super::admin(), old, new, at(3600), cutoff)
        .await
        .expect("rotate")
}

async fn a_session_past_its_absolute_lifetime_no_longer_rotates(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await.id;
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            Uuid::now_v7(),
            "a",
            at(3600),
            super::started_now(),
        )
        .await
        .expect("insert");
    let started_before = moment().await;
    // Rotated after the cutoff moment: the new token is younger than it, but the session
    // (the family) is not.
    assert_eq!(
        rotate(e, "a", "b", no_cutoff()).await,
        Refresh::Rotated { user_id: user }
    );
    assert_eq!(
        rotate(e, "b", "c", started_before).await,
        Refresh::Invalid,
        "the family's start is carried through rotation"
    );
    // Refused for its age, not spent: still usable under a later cutoff, and not reuse.
    assert_eq!(
        rotate(e, "b", "c", no_cutoff()).await,
        Refresh::Rotated { user_id: user }
    );
    // A family started after the cutoff rotates.
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            Uuid::now_v7(),
            "young",
            at(3600),
            super::started_now(),
        )
        .await
        .expect("insert");
    assert_eq!(
        rotate(e, "young", "young2", started_before).await,
        Refresh::Rotated { user_id: user }
    );
}

/// Sweeps refresh tokens in batches of `limit` until a batch deletes fewer; the batch sizes.
async fn sweep_refresh(e: &Engine, cutoff: Timestamp, limit: u32) -> Vec<u64> {
    let mut sizes = Vec::new();
    loop {
        let n = e
            .store
            .sweep_refresh(cutoff, limit)
            .await
            .expect("sweep refresh tokens");
        assert!(
            n <= u64::from(limit),
            "a batch of {n} over the limit {limit}"
        );
        sizes.push(n);
        if n < u64::from(limit) {
            return sizes;
        }
    }
}

async fn only_dead_refresh_families_are_swept_in_batches(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await.id;
    let insert = async |family: Uuid, token: &str, expires: Timestamp| {
        e.store
            .insert_refresh(
                &super::admin(),
                user,
                family,
                token,
                expires,
                super::started_now(),
            )
            .await
            .expect("insert");
    };
    // An old live session (rotated once), then the cutoff moment.
    let old = Uuid::now_v7();
    insert(old, "old1", at(3600)).await;
    rotate(e, "old1", "old2", no_cutoff()).await;
    let cutoff = moment().await;
    // Dead: every token expired (three of them).
    let expired = Uuid::now_v7();
    for t in ["exp1", "exp2", "exp3"] {
        insert(expired, t, at(-60)).await;
    }
    // Dead: logged out (rotated, then revoked).
    insert(Uuid::now_v7(), "out1", at(3600)).await;
    rotate(e, "out1", "out2", no_cutoff()).await;
    assert!(
        e.store
            .revoke_refresh_family(&super::admin(), "out2")
            .await
            .expect("logout")
    );
    // Live: a spent token and a live one; and an expired token beside a live one.
    let live = Uuid::now_v7();
    insert(live, "live1", at(3600)).await;
    rotate(e, "live1", "live2", no_cutoff()).await;
    let mixed = Uuid::now_v7();
    insert(mixed, "mixed-old", at(-60)).await;
    insert(mixed, "mixed-new", at(3600)).await;

    // With no session past its lifetime, the five dead rows go, two at a time.
    assert_eq!(sweep_refresh(e, no_cutoff(), 2).await, [2, 2, 1]);
    for gone in ["exp1", "exp2", "exp3", "out1", "out2"] {
        assert!(
            !e.store
                .revoke_refresh_family(&super::admin(), gone)
                .await
                .expect("look up"),
            "{gone} was kept"
        );
    }
    // Live families keep every row: their spent token is still reuse (which revokes the
    // family), and the one beside an expired token still rotates.
    assert_eq!(
        rotate(e, "live1", "x", no_cutoff()).await,
        Refresh::Reused {
            user_id: user,
            family: live
        }
    );
    assert_eq!(
        rotate(e, "mixed-new", "mixed-next", no_cutoff()).await,
        Refresh::Rotated { user_id: user }
    );
    // Now the family revoked for reuse is dead, and so is the old session under a cutoff
    // after its start, its live token included: four rows. The younger family stays.
    assert_eq!(sweep_refresh(e, cutoff, 100).await, [4]);
    for gone in ["old1", "old2", "live1", "live2"] {
        assert!(
            !e.store
                .revoke_refresh_family(&super::admin(), gone)
                .await
                .expect("look up"),
            "{gone} was kept"
        );
    }
    for kept in ["mixed-old", "mixed-new", "mixed-next"] {
        assert!(
            e.store
                .revoke_refresh_family(&super::admin(), kept)
                .await
                .expect("look up"),
            "{kept} was swept from a live family"
        );
    }
    assert_eq!(sweep_refresh(e, no_cutoff(), 100).await, [3], "now revoked");
}

async fn old_idempotency_keys_are_swept_in_batches(e: &Engine) {
    let s = e.migrate(json!([])).await;
    let m = model(&s, "resource");
    let create = async |key: &str, name: &str| {
        let claim = IdempotencyClaim {
            key: key.to_owned(),
            body_digest: format!("digest-{name}"),
        };
        let body = json!({ "name": name });
        e.store
            .create(&admin(), &m, draft(&m, &body), Some(claim))
            .await
            .expect("create")
    };
    for i in 0..5 {
        create(&format!("old-{i}"), "first").await;
    }
    let before = moment().await;
    create("new", "first").await;
    let mut sizes = Vec::new();
    loop {
        let n = e
            .store
            .sweep_idempotency(before, 2)
            .await
            .expect("sweep keys");
        sizes.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    // A swept key is free: the same key with another body makes a new record. The young
    // key is still remembered (a conflict), and the records themselves are untouched.
    let again = create("old-0", "second").await;
    assert!(!again.replayed, "a swept key replayed");
    let young = e
        .store
        .create(
            &admin(),
            &m,
            draft(&m, &json!({"name": "second"})),
            Some(IdempotencyClaim {
                key: "new".to_owned(),
                body_digest: "digest-second".to_owned(),
            }),
        )
        .await;
    assert!(young.is_err(), "a young key was swept: {young:?}");
    let replay = create("new", "first").await;
    assert!(replay.replayed, "the young key no longer replays");
    let all = walk(e.store.as_ref(), &m, &[], plinth_core::ListScope::All).await;
    assert_eq!(all.len(), 7);
}

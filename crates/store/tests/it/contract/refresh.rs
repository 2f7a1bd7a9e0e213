//! Refresh-token families: rotation, reuse (the family is revoked), logout, expiry.

use super::Engine;
use plinth_core::{Role, Timestamp};
use plinth_store::Refresh;
use std::time::{Duration, SystemTime};

contract!(
    a_live_token_rotates_and_a_spent_one_revokes_its_family,
    unknown_expired_and_logged_out_tokens_are_invalid,
    a_session_is_found_by_any_of_its_tokens_and_ends_with_a_logout_or_reuse,
);

fn at(offset_secs: i64) -> Timestamp {
    let now = SystemTime::now();
    let t = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    };
    Timestamp::from_system(t)
}

async fn a_live_token_rotates_and_a_spent_one_revokes_its_family(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await.id;
    let (family, later) = (uuid::Uuid::now_v7(), at(3600));
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            family,
            "first",
            later,
            super::started_now(),
        )
        .await
        .expect("insert");
    assert_eq!(
        e.store
            .rotate_refresh(
                &super::admin(),
                "first",
                "second",
                later,
                super::no_cutoff()
            )
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
    assert_eq!(
        e.store
            .rotate_refresh(
                &super::admin(),
                "second",
                "third",
                later,
                super::no_cutoff()
            )
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
    // Another family of the same user is independent of what happens next.
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            uuid::Uuid::now_v7(),
            "other",
            later,
            super::started_now(),
        )
        .await
        .expect("insert");
    // "first" was spent: presenting it again is reuse, and the family is revoked…
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "first", "n1", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Reused {
            user_id: user,
            family
        }
    );
    // …with its live token, and the replacement the reuse asked for was not stored.
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "third", "n2", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "n1", "n3", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "other", "o2", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
}

async fn unknown_expired_and_logged_out_tokens_are_invalid(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await.id;
    let later = at(3600);
    assert_eq!(
        e.store
            .rotate_refresh(
                &super::admin(),
                "never-issued",
                "n",
                later,
                super::no_cutoff()
            )
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    assert!(
        !e.store
            .revoke_refresh_family(&super::admin(), "never-issued")
            .await
            .expect("logout")
    );
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            uuid::Uuid::now_v7(),
            "old",
            at(-1),
            super::started_now(),
        )
        .await
        .expect("insert");
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "old", "n", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    // Logged out: revoked without being spent. Presenting it again is no attack.
    let family = uuid::Uuid::now_v7();
    e.store
        .insert_refresh(
            &super::admin(),
            user,
            family,
            "a",
            later,
            super::started_now(),
        )
        .await
        .expect("insert");
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "a", "b", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
    assert!(
        e.store
            .revoke_refresh_family(&super::admin(), "b")
            .await
            .expect("logout")
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "b", "c", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    // A spent token of a logged-out family is still reuse (worth the alarm).
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "a", "d", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Reused {
            user_id: user,
            family
        }
    );
    assert_eq!(
        e.store
            .rotate_refresh(&super::admin(), "d", "e", later, super::no_cutoff())
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
}

async fn a_session_is_found_by_any_of_its_tokens_and_ends_with_a_logout_or_reuse(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await.id;
    let later = at(3600);
    let (one, two) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (family, token) in [(one, "one-a"), (two, "two-a")] {
        e.store
            .insert_refresh(
                &super::admin(),
                user,
                family,
                token,
                later,
                super::started_now(),
            )
            .await
            .expect("insert");
    }
    let admin = super::admin();
    let rotate = |old: &'static str, new: &'static str| {
        e.store
            .rotate_refresh(&admin, old, new, later, super::no_cutoff())
    };
    assert_eq!(
        rotate("one-a", "one-b").await.expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
    let of = |token: &'static str| e.store.refresh_family_of(token);
    assert_eq!(of("one-a").await.expect("read"), Some(one), "a spent token");
    assert_eq!(
        of("one-b").await.expect("read"),
        Some(one),
        "the live token"
    );
    assert_eq!(of("two-a").await.expect("read"), Some(two));
    assert_eq!(of("nothing").await.expect("read"), None);
    let live = |family| e.store.refresh_family_live(family);
    assert!(live(one).await.expect("read"));
    assert!(live(two).await.expect("read"));
    assert!(
        !live(uuid::Uuid::now_v7()).await.expect("read"),
        "an unknown session"
    );

    // A logout ends its session only.
    assert!(
        e.store
            .revoke_refresh_family(&super::admin(), "one-b")
            .await
            .expect("logout")
    );
    assert!(!live(one).await.expect("read"));
    assert!(live(two).await.expect("read"));
    // Reuse of a spent token ends its session.
    rotate("two-a", "two-b").await.expect("rotate");
    let reused = rotate("two-a", "two-c").await.expect("reuse");
    assert!(matches!(reused, Refresh::Reused { family, .. } if family == two));
    assert!(!live(two).await.expect("read"));
}

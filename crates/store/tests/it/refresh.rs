//! Refresh-token families: what presenting a token again means.

use plinth_store::{AccountStore, Refresh, SqliteOptions, SqliteStore, Store};
use std::time::Duration;

#[tokio::test]
async fn a_logged_out_refresh_token_is_invalid_and_only_a_spent_one_is_reuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("plinth.db")))
        .await
        .expect("open");
    let user = uuid::Uuid::now_v7();
    let later = plinth_core::Timestamp::from_system(
        std::time::SystemTime::now() + Duration::from_secs(3600),
    );
    // Logged out: revoked, never spent. Presenting it again is not an attack.
    store
        .insert_refresh(user, uuid::Uuid::now_v7(), "logged-out", later)
        .await
        .expect("insert");
    assert!(
        store
            .revoke_refresh_family("logged-out")
            .await
            .expect("logout")
    );
    assert_eq!(
        store
            .rotate_refresh("logged-out", "n1", later)
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    // Spent, then presented again: reuse, and the family (with the newer token) is revoked.
    let family = uuid::Uuid::now_v7();
    store
        .insert_refresh(user, family, "first", later)
        .await
        .expect("insert");
    assert_eq!(
        store
            .rotate_refresh("first", "second", later)
            .await
            .expect("rotate"),
        Refresh::Rotated { user_id: user }
    );
    assert_eq!(
        store
            .rotate_refresh("first", "n2", later)
            .await
            .expect("rotate"),
        Refresh::Reused {
            user_id: user,
            family
        }
    );
    assert_eq!(
        store
            .rotate_refresh("second", "n3", later)
            .await
            .expect("rotate"),
        Refresh::Invalid
    );
    store.close().await;
}

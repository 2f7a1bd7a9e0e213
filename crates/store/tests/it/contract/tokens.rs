//! One-time account tokens: a sign-up with its first token, single use, the newest token
//! of a purpose voiding older ones, expiry, purpose checks, an email change applied from
//! its sealed address, and the audit entries (never the token or an address).

use super::Engine;
use plinth_core::auth::Email;
use plinth_core::{Role, Timestamp};
use plinth_store::{AuditQuery, NewAccountToken, NewUser, TokenPurpose, TokenUse};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

contract!(
    a_sign_up_stores_its_token_and_a_token_is_spent_once,
    a_newer_token_voids_the_older_and_expiry_and_purpose_hold,
    an_email_change_moves_the_account_and_a_reset_ends_its_sessions,
    expired_tokens_are_swept_and_live_ones_kept,
);

fn at(offset_secs: u64) -> Timestamp {
    Timestamp::from_system(SystemTime::now() + Duration::from_secs(offset_secs))
}

fn token(purpose: TokenPurpose, user_id: Uuid, hash: &str, email: Option<&str>) -> NewAccountToken {
    NewAccountToken {
        purpose,
        user_id,
        token_hash: hash.to_owned(),
        email: email.map(|m| Email::parse(m).expect("email")),
        expires_at: at(3600),
    }
}

async fn a_sign_up_stores_its_token_and_a_token_is_spent_once(e: &Engine) {
    let new = NewUser {
        email: Email::parse("ann@example.com").expect("email"),
        password_hash: "$argon2id$fake".to_owned(),
        role: Role::User,
    };
    let first = token(TokenPurpose::VerifyEmail, Uuid::nil(), "verify-1", None);
    let user = e
        .store
        .sign_up(&super::admin(), new, Some(first))
        .await
        .expect("sign up");
    assert!(user.email_verified_at.is_none());
    let now = at(0);
    let spent = e
        .store
        .redeem_account_token(&super::admin(), "verify-1", now, TokenUse::VerifyEmail)
        .await
        .expect("redeem")
        .expect("a live token");
    assert_eq!(spent.id, user.id);
    assert!(spent.email_verified_at.is_some());
    let again = e
        .store
        .redeem_account_token(&super::admin(), "verify-1", now, TokenUse::VerifyEmail)
        .await
        .expect("redeem");
    assert!(again.is_none(), "a token works once");
    let entries = e
        .store
        .audit_query(&AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    let actions: Vec<_> = entries.iter().map(|x| x.action.as_str()).collect();
    assert!(
        actions.contains(&"auth.signup") && actions.contains(&"account.email_verified"),
        "{actions:?}"
    );
    let text = format!("{entries:?}");
    assert!(
        !text.contains("verify-1") && !text.contains("ann@example.com"),
        "{text}"
    );
}

async fn a_newer_token_voids_the_older_and_expiry_and_purpose_hold(e: &Engine) {
    let user = e.user("bob@example.com", Role::User).await.id;
    let ctx = super::admin();
    for hash in ["reset-1", "reset-2"] {
        let t = token(TokenPurpose::PasswordReset, user, hash, None);
        e.store.issue_account_token(&ctx, t).await.expect("issue");
    }
    let reset = || TokenUse::ResetPassword {
        password_hash: "$argon2id$new".to_owned(),
    };
    let now = at(0);
    let r = e
        .store
        .redeem_account_token(&ctx, "reset-1", now, reset())
        .await
        .expect("redeem");
    assert!(r.is_none(), "the older token is void");
    // Another purpose does not spend it; past its expiry it is refused.
    let r = e
        .store
        .redeem_account_token(&ctx, "reset-2", now, TokenUse::VerifyEmail)
        .await
        .expect("redeem");
    assert!(r.is_none());
    let r = e
        .store
        .redeem_account_token(&ctx, "reset-2", at(7200), reset())
        .await
        .expect("redeem");
    assert!(r.is_none(), "expired");
    let r = e
        .store
        .redeem_account_token(&ctx, "reset-2", now, reset())
        .await
        .expect("redeem");
    assert_eq!(r.expect("live").password_hash, "$argon2id$new");
    let r = e
        .store
        .redeem_account_token(&ctx, "unknown", now, reset())
        .await
        .expect("redeem");
    assert!(r.is_none());
}

async fn an_email_change_moves_the_account_and_a_reset_ends_its_sessions(e: &Engine) {
    let user = e.user("cat@example.com", Role::User).await.id;
    let ctx = super::admin();
    e.store
        .insert_refresh(
            &ctx,
            user,
            Uuid::now_v7(),
            "session-1",
            at(3600),
            super::started_now(),
        )
        .await
        .expect("session");
    let t = token(
        TokenPurpose::EmailChange,
        user,
        "change-1",
        Some("cat@new.example"),
    );
    e.store.issue_account_token(&ctx, t).await.expect("issue");
    let moved = e
        .store
        .redeem_account_token(&ctx, "change-1", at(0), TokenUse::ChangeEmail)
        .await
        .expect("redeem")
        .expect("live");
    assert_eq!(moved.email, "cat@new.example");
    assert!(moved.email_verified_at.is_some());
    let found = e
        .store
        .find_user_by_email(&Email::parse("CAT@new.example").expect("email"))
        .await
        .expect("find");
    assert_eq!(found.map(|u| u.id), Some(user));
    let family = e
        .store
        .refresh_family_of("session-1")
        .await
        .expect("family")
        .expect("stored");
    assert!(
        !e.store.refresh_family_live(family).await.expect("live"),
        "the new address ended the session"
    );
    // A taken new address is a conflict, and the token stays unspent.
    e.user("dan@example.com", Role::User).await;
    let t = token(
        TokenPurpose::EmailChange,
        user,
        "change-2",
        Some("dan@example.com"),
    );
    e.store.issue_account_token(&ctx, t).await.expect("issue");
    let err = e
        .store
        .redeem_account_token(&ctx, "change-2", at(0), TokenUse::ChangeEmail)
        .await;
    assert!(
        matches!(err, Err(plinth_store::StoreError::Conflict { .. })),
        "{err:?}"
    );
}

async fn expired_tokens_are_swept_and_live_ones_kept(e: &Engine) {
    let user = e.user("eve@example.com", Role::User).await.id;
    let ctx = super::admin();
    let mut t = token(TokenPurpose::VerifyEmail, user, "old", None);
    t.expires_at = Timestamp::from_system(SystemTime::now() - Duration::from_secs(60));
    e.store.issue_account_token(&ctx, t).await.expect("issue");
    let t = token(TokenPurpose::PasswordReset, user, "live", None);
    e.store.issue_account_token(&ctx, t).await.expect("issue");
    assert_eq!(
        e.store
            .sweep_account_tokens(at(0), 10)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(
        e.store
            .sweep_account_tokens(at(0), 10)
            .await
            .expect("sweep"),
        0
    );
    let reset = TokenUse::ResetPassword {
        password_hash: "$argon2id$x".to_owned(),
    };
    let r = e
        .store
        .redeem_account_token(&ctx, "live", at(0), reset)
        .await
        .expect("redeem");
    assert!(r.is_some(), "the live token survived the sweep");
}

//! OpenID Connect: a pending login is taken once, not after it expires, not for another
//! provider, with its verifier sealed at rest; a sign-in finds, links (verified email only)
//! or creates (when allowed) its account, writing nothing when it refuses.

use super::Engine;
use plinth_core::auth::Email;
use plinth_core::{Role, Timestamp};
use plinth_store::{OidcOutcome, OidcRefusal, OidcSignIn, PendingOidcLogin};
use std::time::{Duration, SystemTime};

contract!(
    a_pending_login_is_taken_once_and_only_while_fresh,
    a_sign_in_finds_links_or_creates_and_refuses_without_writing,
);

const VERIFIER: &str = "pkce-verifier-that-must-be-sealed-0123456789abcdef";

fn pending(hash: &str, expires_at: Timestamp) -> PendingOidcLogin {
    PendingOidcLogin {
        state_hash: hash.to_owned(),
        provider: "test".to_owned(),
        nonce: "n0nce".to_owned(),
        verifier: VERIFIER.to_owned(),
        expires_at,
    }
}

async fn a_pending_login_is_taken_once_and_only_while_fresh(e: &Engine) {
    let later = Timestamp::from_system(SystemTime::now() + Duration::from_secs(600));
    let past = Timestamp::from_system(SystemTime::now() - Duration::from_secs(1));
    let s = &e.store;
    s.put_oidc_login(pending("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", later))
        .await
        .expect("put");
    s.put_oidc_login(pending("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", past))
        .await
        .expect("put an expired one");
    s.put_oidc_login(pending("cccccccccccccccccccccccccccccccc", later))
        .await
        .expect("put");
    assert!(
        !e.raw_contents("_plinth_oidc_logins")
            .await
            .contains(VERIFIER),
        "the verifier is stored in the clear"
    );
    let got = s
        .take_oidc_login("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "test")
        .await
        .expect("take")
        .expect("the login");
    assert_eq!(
        (got.verifier.as_str(), got.nonce.as_str()),
        (VERIFIER, "n0nce")
    );
    let again = s.take_oidc_login("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "test");
    assert!(again.await.expect("take").is_none(), "taken twice");
    let expired = s.take_oidc_login("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "test");
    assert!(expired.await.expect("take").is_none(), "an expired login");
    let other = s.take_oidc_login("cccccccccccccccccccccccccccccccc", "other");
    assert!(other.await.expect("take").is_none(), "another provider's");
    let unknown = s.take_oidc_login("dddddddddddddddddddddddddddddddd", "test");
    assert!(unknown.await.expect("take").is_none());
}

fn sign_in(sub: &str, email: Option<&str>, verified: bool, may_create: bool) -> OidcSignIn {
    OidcSignIn {
        provider: "test".to_owned(),
        subject: sub.to_owned(),
        email: email.map(|e| Email::parse(e).expect("an email")),
        email_verified: verified,
        may_create,
        password_hash: "$argon2id$v=19$m=1024,t=1,p=1$unusable$unusable".to_owned(),
    }
}

async fn a_sign_in_finds_links_or_creates_and_refuses_without_writing(e: &Engine) {
    let s = &e.store;
    let ctx = super::admin();
    let ada = e.user("ada@example.com", Role::User).await;
    let count = async || s.list_users(None, 100).await.expect("users").len();
    // Refusals write nothing.
    for (si, why) in [
        (
            sign_in("s1", Some("ada@example.com"), false, true),
            OidcRefusal::UnverifiedEmail,
        ),
        (
            sign_in("s2", None, true, true),
            OidcRefusal::UnverifiedEmail,
        ),
        (
            sign_in("s3", Some("new@example.com"), true, false),
            OidcRefusal::SignupClosed,
        ),
    ] {
        match s.oidc_sign_in(&ctx, si).await.expect("sign in") {
            OidcOutcome::Refused(r) => assert_eq!(r, why),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(count().await, 1);
    // A verified email links the existing account; the subject then finds it.
    let linked = s.oidc_sign_in(&ctx, sign_in("s1", Some("ADA@example.com"), true, false));
    assert!(matches!(linked.await.expect("link"), OidcOutcome::Linked(u) if u.id == ada.id));
    let known = s.oidc_sign_in(&ctx, sign_in("s1", None, false, false));
    assert!(matches!(known.await.expect("find"), OidcOutcome::Known(u) if u.id == ada.id));
    // A new verified address makes a verified user.
    let created = s.oidc_sign_in(&ctx, sign_in("s4", Some("new@example.com"), true, true));
    let OidcOutcome::Created(user) = created.await.expect("create") else {
        panic!("expected a new account");
    };
    assert_eq!(user.role, Role::User);
    assert!(user.email_verified_at.is_some());
    let stored = s.get_user(user.id).await.expect("read").expect("the user");
    assert!(stored.email_verified_at.is_some());
    assert_eq!(count().await, 2);
}

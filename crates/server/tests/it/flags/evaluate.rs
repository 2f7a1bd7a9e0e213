//! `GET /api/v1/flags/evaluate`: each rule changes the answer a caller gets (allow, deny,
//! the schedule, the rollout, the master switch), a flag off for the caller is left out
//! (nobody learns the names of flags disabled or targeted at others), Plinth's own flags
//! are not listed, and a 10 % rollout takes 10 % of principals.

use crate::helpers::{TestApp, assert_error};
use plinth_core::flags::{FlagKey, Subject};
use plinth_core::{Principal, Role, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::SystemTime;

#[tokio::test]
async fn allow_deny_schedule_and_the_switch_each_change_the_answer() {
    let app = TestApp::spawn().await;
    let (ann, ann_token) = app.user("ann@example.com").await;
    let (_, bob_token) = app.user("bob@example.com").await;
    let key = app.create_key(&ann_token, &json!({"name": "ci"})).await;
    let key = key.data(StatusCode::CREATED).clone();
    let (key_id, ann_key) = (
        key["id"].as_str().expect("an id").to_owned(),
        key["key"].as_str().expect("a key").to_owned(),
    );
    // Nothing yet: an empty answer for everyone.
    assert_eq!(app.evaluate(Some(&ann_token)).await, json!({}));
    assert_eq!(app.evaluate(None).await, json!({}));

    app.flag_ok(&json!({"key": "beta", "enabled": true, "rollout": 0}))
        .await;
    app.flag_ok(&json!({"key": "plinth.replica_reads", "enabled": true, "rollout": 100}))
        .await;
    // Whether beta is on for the caller: listed as true, or not listed at all.
    let beta = async |credential: Option<&str>| {
        let answer = app.evaluate(credential).await;
        assert_ne!(answer["beta"], false, "a flag off is left out: {answer}");
        answer["beta"] == true
    };
    assert!(!beta(Some(&ann_token)).await, "0 %");
    assert_eq!(
        app.evaluate(Some(&ann_token)).await,
        json!({}),
        "no plinth.* flag, no flag that is off"
    );

    // Allowed by user: ann (by token or by key), not bob.
    app.patch_flag_ok("beta", &json!({"allow": [format!("user:{}", ann.id)]}))
        .await;
    assert!(beta(Some(&ann_token)).await);
    assert!(beta(Some(&ann_key)).await);
    assert!(!beta(Some(&bob_token)).await);
    // Allowed by API key: only requests made with it.
    app.patch_flag_ok("beta", &json!({"allow": [format!("api_key:{key_id}")]}))
        .await;
    assert!(beta(Some(&ann_key)).await);
    assert!(!beta(Some(&ann_token)).await);
    // Allowed by role.
    app.patch_flag_ok("beta", &json!({"allow": ["role:user"]}))
        .await;
    assert!(beta(Some(&bob_token)).await);
    assert!(!beta(Some(&app.admin_token)).await);
    // Deny wins over allow.
    app.patch_flag_ok("beta", &json!({"deny": [format!("user:{}", ann.id)]}))
        .await;
    assert!(!beta(Some(&ann_token)).await);
    assert!(beta(Some(&bob_token)).await);
    // Outside the schedule: off; inside: as before.
    let later = "2999-01-01T00:00:00Z";
    app.patch_flag_ok("beta", &json!({"on_from": later})).await;
    assert!(!beta(Some(&bob_token)).await, "before on_from");
    app.patch_flag_ok(
        "beta",
        &json!({"on_from": "2000-01-01T00:00:00Z", "off_after": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert!(!beta(Some(&bob_token)).await, "after off_after");
    app.patch_flag_ok("beta", &json!({"off_after": later}))
        .await;
    assert!(beta(Some(&bob_token)).await, "inside the schedule");
    // The master switch.
    app.patch_flag_ok("beta", &json!({"enabled": false})).await;
    assert!(!beta(Some(&bob_token)).await, "disabled");

    // Guests: only what is on for everyone, never the names of the rest.
    app.patch_flag_ok(
        "beta",
        &json!({"enabled": true, "allow": [], "rollout": 99.99}),
    )
    .await;
    assert_eq!(app.evaluate(None).await, json!({}));
    app.patch_flag_ok("beta", &json!({"rollout": 100})).await;
    assert_eq!(app.evaluate(None).await, json!({"beta": true}));
    assert!(!beta(Some(&ann_token)).await, "ann is still denied");

    // A bad credential is a 401, never a guest's answer; parameters are refused.
    let r = app
        .flags_as(Method::GET, "/evaluate", Some("not.a.token"), None)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = app
        .flags_as(
            Method::POST,
            "/evaluate",
            Some(&app.admin_token),
            Some(&json!({})),
        )
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let r = app.flags_as(Method::GET, "/evaluate", None, None).await;
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("no-store"))
    );
}

/// The flag as stored (read back through the store), decided for 10,000 principals: a
/// 10 % rollout is on for 10 % ± 1.5 of them, and every answer matches the endpoint's for
/// the few accounts that exist.
#[tokio::test]
async fn a_ten_percent_rollout_is_on_for_ten_percent_of_principals() {
    let app = TestApp::spawn().await;
    app.flag_ok(&json!({"key": "ten", "enabled": true, "rollout": 10}))
        .await;
    let key = FlagKey::parse("ten").expect("a key");
    let flag = app
        .state
        .store()
        .get_flag(&key)
        .await
        .expect("read")
        .expect("stored");
    let now = Timestamp::from_system(SystemTime::now());
    let on = (0..10_000)
        .map(|_| Subject::of(&Principal::user(uuid::Uuid::now_v7(), Role::User), None))
        .filter(|s| flag.rule.decide(&key, s, now))
        .count();
    assert!(
        (850..=1150).contains(&on),
        "{on} of 10000 principals on at 10 %"
    );
    for i in 0..5 {
        let (user, token) = app.user(&format!("u{i}@example.com")).await;
        let subject = Subject::of(&Principal::user(user.id, Role::User), None);
        let on = app.evaluate(Some(&token)).await.get("ten").cloned();
        let want = flag.rule.decide(&key, &subject, now).then_some(json!(true));
        assert_eq!(on, want, "user {i}");
    }
}

/// A signed-in user sees only the flags on for them: never one disabled, scheduled, denied
/// to them or targeted at someone else, at any rollout.
#[tokio::test]
async fn a_user_never_sees_a_flag_that_is_off_for_them() {
    let app = TestApp::spawn().await;
    let (ann, ann_token) = app.user("ann@example.com").await;
    let (bob, bob_token) = app.user("bob@example.com").await;
    for body in [
        json!({"key": "disabled", "enabled": false, "rollout": 100}),
        json!({"key": "for-bob", "enabled": true, "allow": [format!("user:{}", bob.id)]}),
        json!({"key": "not-ann", "enabled": true, "rollout": 100, "deny": [format!("user:{}", ann.id)]}),
        json!({"key": "later", "enabled": true, "rollout": 100, "on_from": "2999-01-01T00:00:00Z"}),
        json!({"key": "admins", "enabled": true, "allow": ["role:admin"]}),
        json!({"key": "everyone", "enabled": true, "rollout": 100}),
    ] {
        app.flag_ok(&body).await;
    }
    assert_eq!(
        app.evaluate(Some(&ann_token)).await,
        json!({"everyone": true})
    );
    assert_eq!(
        app.evaluate(Some(&bob_token)).await,
        json!({"for-bob": true, "not-ann": true, "everyone": true})
    );
    assert_eq!(
        app.evaluate(Some(&app.admin_token)).await,
        json!({"not-ann": true, "admins": true, "everyone": true})
    );
    assert_eq!(
        app.evaluate(None).await,
        json!({"not-ann": true, "everyone": true})
    );
}

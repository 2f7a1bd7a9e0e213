//! Two instances on one PostgreSQL database: they give every caller the same answers, and
//! a change through one reaches the other's evaluation by the database's notification
//! (well within the 30 s of `flags.reload_seconds`, the only other way it would).
//!
//! PostgreSQL only: each test prints why it is skipped when `PLINTH_TEST_POSTGRES` is unset.

use crate::helpers::{TestApp, TestDb, postgres_server};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long a change may take to reach the other instance.
const WITHIN: Duration = Duration::from_secs(5);

/// Polls B's evaluation as `credential` until `key` is `want`; fails after [`WITHIN`].
async fn seen(b: &TestApp, credential: &str, key: &str, want: Value) -> Duration {
    let since = Instant::now();
    loop {
        if b.evaluate(Some(credential)).await[key] == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < WITHIN,
            "B still answers otherwise for {key} after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_through_one_instance_reaches_the_others_evaluation() {
    let Some(server) =
        postgres_server("a_change_through_one_instance_reaches_the_others_evaluation")
    else {
        return;
    };
    let a = TestApp::spawn_on(
        TestDb::postgres(&server).await,
        Vec::new(),
        Default::default(),
        crate::helpers::test_auth_config(),
    )
    .await;
    let b = a.spawn_peer().await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(a.user(&format!("u{i}@example.com")).await.1);
    }
    a.flag_ok(&json!({"key": "half", "enabled": true, "rollout": 50}))
        .await;
    // The new flag reaches B, which then gives every account A's answer.
    for token in &users {
        seen(
            &b,
            token,
            "half",
            a.evaluate(Some(token)).await["half"].clone(),
        )
        .await;
    }
    // Held now: a change through A reaches B by notification. At 100 % first, so the
    // switch's effect on one account shows that B was told.
    a.patch_flag_ok("half", &json!({"rollout": 100})).await;
    for token in &users {
        seen(&b, token, "half", json!(true)).await;
    }
    a.patch_flag_ok("half", &json!({"enabled": false})).await;
    // Off: left out of every answer.
    let took = seen(&b, &users[0], "half", Value::Null).await;
    eprintln!("a change reached the other instance in {took:?}");
    for token in &users {
        assert_eq!(b.evaluate(Some(token)).await["half"], Value::Null);
    }
    // And back the other way: through B, seen by A.
    b.patch_flag_ok("half", &json!({"enabled": true, "rollout": 100}))
        .await;
    seen(&a, &users[1], "half", json!(true)).await;
    let r = b
        .flags_as(reqwest::Method::DELETE, "/half", Some(&b.admin_token), None)
        .await;
    assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT);
    seen(&a, &users[1], "half", Value::Null).await;
}

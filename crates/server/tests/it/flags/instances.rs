//! Two instances on one PostgreSQL database: they give every caller the same answers, and
//! a change through one reaches the other's evaluation by the database's notification
//! (well within the 30 s of `flags.reload_seconds`, the only other way it would).
//!
//! A load of the flags that hangs does not hold up the notices behind it.
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

/// A flag load that hangs (the table locked) does not hold up the notices behind it: an
/// API key revoked through A is refused by B while B's cache entry for it (500 ms) is
/// still fresh, so B was told, though B's load of the flags is still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_flag_load_does_not_delay_a_revocation_notice() {
    const CACHE_TTL: Duration = Duration::from_millis(500);
    const DECISIVE: Duration = Duration::from_millis(200);
    let Some(server) = postgres_server("a_hung_flag_load_does_not_delay_a_revocation_notice")
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
    let (_, token) = a.user("ada@example.com").await;
    let pg = a.database().postgres_database().expect("PostgreSQL");
    // The table locked until the test ends, and a flags notice: B's load waits on it.
    let locker = pg.connect().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE _plinth_flags IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the flags");
    pg.connect()
        .await
        .batch_execute("SELECT pg_notify('plinth_invalidate', 'flags')")
        .await
        .expect("notify");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let made = a.create_key(&token, &json!({"name": "ci"})).await;
        let data = made.data(reqwest::StatusCode::CREATED);
        let id = data["id"].as_str().expect("an id").to_owned();
        let key = data["key"].as_str().expect("a key").to_owned();
        // B checks the key and caches it from now on.
        let cached = Instant::now();
        b.call_as(reqwest::Method::GET, "/api/v1/resource", Some(&key), None)
            .await
            .data(reqwest::StatusCode::OK);
        b.me(Some(&key)).await.data(reqwest::StatusCode::OK);
        let r = a
            .call_as(
                reqwest::Method::DELETE,
                &format!("/api/v1/auth/api-keys/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "{}", r.body);
        if cached.elapsed() >= DECISIVE {
            continue; // Too slow to tell a notice from the cache's expiry: another round.
        }
        loop {
            let status = b
                .call_as(reqwest::Method::GET, "/api/v1/resource", Some(&key), None)
                .await
                .status;
            assert!(
                cached.elapsed() < CACHE_TTL,
                "B still answers {status} for a revoked key: the notice waited for the flags"
            );
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("no round was fast enough to decide");
}

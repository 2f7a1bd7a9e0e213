//! Abuse limits: login attempts per account and address and per client address, requests
//! per principal, and a login that costs the same whether or not the email exists. Limits
//! keyed by a client behind a proxy, and the per-account ceiling, are in
//! `login_throttling.rs`.

use crate::helpers::{
    PASSWORD, Resp, TEST_KEY, TestApp, WRONG_PASSWORD, assert_error, test_auth_config,
};
use plinth_server::auth::ManualClock;
use plinth_server::{AuthConfig, ServerConfig, SigningKey};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@example.com";

/// Checks a 429: the envelope, and `Retry-After` in whole seconds, at least 1.
fn assert_rate_limited(r: &Resp) {
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry = r.header("retry-after").expect("a Retry-After header");
    let secs: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry:?} is not whole seconds"));
    assert!((1..=61).contains(&secs), "Retry-After {secs}");
}

async fn spawn(configure: impl FnOnce(&mut AuthConfig)) -> TestApp {
    let mut auth = test_auth_config();
    configure(&mut auth);
    TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await
}

#[tokio::test]
async fn logins_are_limited_per_account_and_address_even_with_the_right_password() {
    let app = spawn(|c| c.login_per_account_address = 3).await;
    app.user("ada@example.com").await;
    for _ in 0..3 {
        let r = app.login(ADMIN, WRONG_PASSWORD).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let r = app.login(ADMIN, PASSWORD).await;
    assert_rate_limited(&r);
    // The account is the unit, whatever the case of its address.
    assert_rate_limited(&app.login("ADMIN@example.com", PASSWORD).await);
    // Another account from the same address is not affected, and the admin's existing
    // session still works.
    app.login_ok("ada@example.com", PASSWORD).await;
    app.get_path("/api/v1/resource").await.data(StatusCode::OK);
}

#[tokio::test]
async fn unknown_accounts_are_limited_like_known_ones() {
    let app = spawn(|c| c.login_per_account_address = 2).await;
    let unknown = "nobody@example.com";
    for _ in 0..2 {
        assert_error(
            &app.login(unknown, PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    // Otherwise the 429 would tell an attacker which accounts exist.
    assert_rate_limited(&app.login(unknown, PASSWORD).await);
}

#[tokio::test]
async fn logins_are_limited_per_client_address() {
    let app = spawn(|c| {
        c.login_per_account_address = 100;
        c.login_per_address = 3;
    })
    .await;
    for i in 0..3 {
        let r = app
            .login(&format!("guess{i}@example.com"), WRONG_PASSWORD)
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    assert_rate_limited(&app.login(ADMIN, PASSWORD).await);
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures() {
    let app = spawn(|c| c.login_per_account_address = 3).await;
    for _ in 0..2 {
        assert_error(
            &app.login(ADMIN, WRONG_PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    app.login_ok(ADMIN, PASSWORD).await;
    for _ in 0..2 {
        assert_error(
            &app.login(ADMIN, WRONG_PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    app.login_ok(ADMIN, PASSWORD).await;
}

#[tokio::test]
async fn requests_are_limited_per_principal() {
    let app = spawn(|c| c.requests_per_minute = 5).await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    for i in 0..5 {
        let r = app
            .call_as(Method::GET, "/api/v1/resource", Some(&a), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.body);
    }
    let sixth = app
        .call_as(Method::GET, "/api/v1/resource", Some(&a), None)
        .await;
    assert_rate_limited(&sixth);
    let write = app
        .call_as(
            Method::POST,
            "/api/v1/resource",
            Some(&a),
            Some(&serde_json::json!({"name": "x"})),
        )
        .await;
    assert_rate_limited(&write);
    // Other principals keep their own budget.
    app.call_as(Method::GET, "/api/v1/resource", Some(&b), None)
        .await
        .data(StatusCode::OK);
    app.get_path("/api/v1/resource").await.data(StatusCode::OK);
    app.call_as(Method::GET, "/api/v1/resource", None, None)
        .await
        .data(StatusCode::OK);
    assert_eq!(
        app.count_all("resource").await,
        0,
        "the refused write wrote"
    );
}

#[tokio::test]
async fn guests_are_limited_by_address() {
    let app = spawn(|c| c.requests_per_minute = 3).await;
    for _ in 0..3 {
        app.call_as(Method::GET, "/api/v1/resource", None, None)
            .await
            .data(StatusCode::OK);
    }
    assert_rate_limited(
        &app.call_as(Method::GET, "/api/v1/resource", None, None)
            .await,
    );
    app.get_path("/api/v1/resource").await.data(StatusCode::OK);
}

#[tokio::test]
async fn limits_last_one_window_and_then_start_over() {
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    auth.login_per_account_address = 2;
    auth.requests_per_minute = 2;
    let app = TestApp::spawn_clocked(auth, &clock).await;
    for _ in 0..2 {
        let r = app.login(ADMIN, WRONG_PASSWORD).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let r = app.login(ADMIN, PASSWORD).await;
    assert_rate_limited(&r);
    assert_eq!(r.header("retry-after"), Some("60"));
    for _ in 0..2 {
        app.call_as(Method::GET, "/api/v1/resource", None, None)
            .await
            .data(StatusCode::OK);
    }
    assert_rate_limited(
        &app.call_as(Method::GET, "/api/v1/resource", None, None)
            .await,
    );
    clock.advance(Duration::from_secs(59));
    let r = app.login(ADMIN, PASSWORD).await;
    assert_rate_limited(&r);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_rate_limited(
        &app.call_as(Method::GET, "/api/v1/resource", None, None)
            .await,
    );
    clock.advance(Duration::from_secs(1));
    app.login_ok(ADMIN, PASSWORD).await;
    app.call_as(Method::GET, "/api/v1/resource", None, None)
        .await
        .data(StatusCode::OK);
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

async fn timed_login(app: &TestApp, email: &str) -> Duration {
    let start = Instant::now();
    let r = app.login(email, WRONG_PASSWORD).await;
    let took = start.elapsed();
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    took
}

#[tokio::test]
async fn an_unknown_email_costs_as_much_as_a_wrong_password() {
    // The real argon2id cost: this is what an attacker would time.
    let mut auth = AuthConfig::new(SigningKey::new(TEST_KEY.to_vec()).expect("test key"));
    auth.login_per_account_address = 1000;
    auth.login_per_address = 1000;
    let app = TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await;
    // Warm up both paths (connections, caches) before measuring.
    timed_login(&app, ADMIN).await;
    timed_login(&app, "warmup@example.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..5 {
        // Interleaved, so load from other tests weighs on both sides alike.
        known.push(timed_login(&app, ADMIN).await);
        unknown.push(timed_login(&app, &format!("nobody{i}@example.com")).await);
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 2 >= known,
        "an unknown email answers in {unknown:?}, a wrong password in {known:?}: the unknown \
         email must run a real password verification"
    );
}

#[tokio::test]
async fn guessing_the_current_password_counts_like_logins() {
    let app = spawn(|a| a.login_per_account_address = 2).await;
    let (_, token) = app.user("ada@example.com").await;
    let guess = serde_json::json!({"current_password": WRONG_PASSWORD, "new_password": "a brand new passphrase"});
    for _ in 0..2 {
        let r = app
            .call_as(Method::PATCH, "/api/v1/auth/me", Some(&token), Some(&guess))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let r = app
        .call_as(Method::PATCH, "/api/v1/auth/me", Some(&token), Some(&guess))
        .await;
    assert_rate_limited(&r);
    // Even the right current password waits for the window now; nothing changed.
    let right =
        serde_json::json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    let r = app
        .call_as(Method::PATCH, "/api/v1/auth/me", Some(&token), Some(&right))
        .await;
    assert_rate_limited(&r);
    app.me(Some(&token)).await.data(StatusCode::OK);
}

//! What ends a session besides logout and a new password: an admin changing the account's
//! email, and the session's absolute lifetime; and the sweeper that deletes dead sessions
//! and old idempotency keys while the server runs.

use crate::helpers::{PASSWORD, TestApp, Tokens, assert_error, test_auth_config};
use plinth_server::ServerConfig;
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn an_admin_changing_a_users_email_ends_the_users_sessions() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com").await;
    let old = app.login_ok("ada@example.com", PASSWORD).await;
    app.me(Some(&old.access)).await.data(StatusCode::OK);
    let changed = app
        .call_as(
            Method::PATCH,
            &format!("/api/v1/users/{}", ada.id),
            Some(&app.admin_token),
            Some(&json!({"email": "ada.lovelace@example.com"})),
        )
        .await;
    changed.data(StatusCode::OK);
    assert_error(
        &app.refresh(&old.refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &app.me(Some(&old.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // Ada signs in again with the new address; the admin's own session is untouched.
    let new = app.login_ok("ada.lovelace@example.com", PASSWORD).await;
    app.me(Some(&new.access)).await.data(StatusCode::OK);
    app.me(Some(&app.admin_token)).await.data(StatusCode::OK);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let mut auth = test_auth_config();
    auth.refresh_ttl = 24 * HOUR;
    auth.session_max = 48 * HOUR;
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(auth, &clock).await;
    app.user("ada@example.com").await;
    let mut tokens = app.login_ok("ada@example.com", PASSWORD).await;
    // Refreshed within the idle lifetime each time: 20 h, 40 h…
    for _ in 0..2 {
        clock.advance(20 * HOUR);
        tokens = Tokens::from_resp(&app.refresh(&tokens.refresh).await);
    }
    // …but at 60 h the session is past its 48 h.
    clock.advance(20 * HOUR);
    assert_error(
        &app.refresh(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // A new login starts a new session.
    let fresh = app.login_ok("ada@example.com", PASSWORD).await;
    clock.advance(20 * HOUR);
    Tokens::from_resp(&app.refresh(&fresh.refresh).await);
}

/// Polls `check` until it holds, for at most 30 s (the sweeper runs every 50 ms here).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never swept: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_sweeper_deletes_dead_sessions_and_old_idempotency_keys() {
    let config = ServerConfig {
        sweep_interval: Duration::from_millis(50),
        idempotency_window: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    app.user("ada@example.com").await;
    let live = app.login_ok("ada@example.com", PASSWORD).await;
    let ended = app.login_ok("ada@example.com", PASSWORD).await;
    assert_eq!(
        app.logout(&ended.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    // A logged-out token is known until its family is swept (logout answers 204 for it),
    // then unknown (401).
    eventually("the logged-out session", async || {
        app.logout(&ended.refresh).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    // The key is remembered within the window (the same key with another body is a 409),
    // and forgotten once swept: the retry makes a new record.
    let first = app
        .create_idempotent("resource", "order-1", &json!({"name": "first"}))
        .await;
    first.data(StatusCode::CREATED);
    eventually("the old idempotency key", async || {
        let r = app
            .create_idempotent("resource", "order-1", &json!({"name": "second"}))
            .await;
        r.status == StatusCode::CREATED
    })
    .await;
    assert_eq!(app.count_all("resource").await, 2);
    // The live session survived every sweep.
    Tokens::from_resp(&app.refresh(&live.refresh).await);
}

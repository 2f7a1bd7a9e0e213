//! Login throttling that an attacker cannot turn against the owner: the strict limit is per
//! account and client address, the per-account ceiling is far higher, and the client address
//! comes from `X-Forwarded-For` only when the peer is a trusted proxy.

use crate::helpers::{PASSWORD, Resp, TestApp, WRONG_PASSWORD, assert_error, test_auth_config};
use plinth_server::auth::TrustedProxies;
use plinth_server::{AuthConfig, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ADMIN: &str = "admin@example.com";

async fn spawn(configure: impl FnOnce(&mut AuthConfig)) -> TestApp {
    let mut auth = test_auth_config();
    configure(&mut auth);
    TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await
}

/// Trusts the test client's own address (loopback) as a proxy, so `X-Forwarded-For`
/// names the client.
fn behind_loopback_proxy(c: &mut AuthConfig) {
    c.trusted_proxies = TrustedProxies::parse(&["127.0.0.1", "::1"]).expect("valid proxies");
}

/// A login sent as if through a proxy that reports `forwarded_for`.
async fn login_from(app: &TestApp, forwarded_for: &str, email: &str, password: &str) -> Resp {
    let req = app
        .request_as(Method::POST, "/api/v1/auth/login", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}));
    app.send(req).await
}

fn assert_refused(r: &Resp) {
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

fn assert_throttled(r: &Resp) {
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out_elsewhere() {
    let app = spawn(behind_loopback_proxy).await;
    let attacker = "203.0.113.66";
    for _ in 0..5 {
        assert_refused(&login_from(&app, attacker, ADMIN, WRONG_PASSWORD).await);
    }
    // The attacker keeps going; from that address the account is throttled, even with the
    // right password…
    for _ in 0..20 {
        assert_throttled(&login_from(&app, attacker, ADMIN, WRONG_PASSWORD).await);
    }
    assert_throttled(&login_from(&app, attacker, ADMIN, PASSWORD).await);
    // …but the owner, elsewhere, logs in, and the refused attempts did not use up the
    // account's ceiling.
    let r = login_from(&app, "198.51.100.7", ADMIN, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    login_from(&app, "2001:db8::7", ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn the_per_account_ceiling_still_applies_across_addresses() {
    let app = spawn(|c| {
        behind_loopback_proxy(c);
        c.login_per_account_address = 3;
        c.login_per_account = 6;
    })
    .await;
    app.user("ada@example.com").await;
    for address in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..3 {
            assert_refused(&login_from(&app, address, ADMIN, WRONG_PASSWORD).await);
        }
    }
    // Six attempts from two addresses: the account is at its ceiling from everywhere…
    assert_throttled(&login_from(&app, "198.51.100.7", ADMIN, PASSWORD).await);
    assert_throttled(&login_from(&app, "203.0.113.3", ADMIN, WRONG_PASSWORD).await);
    // …and only that account.
    login_from(&app, "198.51.100.7", "ada@example.com", PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    // No trusted proxies (the default), and a list that does not hold the peer: either way
    // rotating `X-Forwarded-For` does not dodge the per-address limits.
    let trusts_others = |c: &mut AuthConfig| {
        c.trusted_proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("valid");
    };
    for app in [spawn(|_| {}).await, spawn(trusts_others).await] {
        for i in 0..5 {
            let r = login_from(&app, &format!("203.0.113.{i}"), ADMIN, WRONG_PASSWORD).await;
            assert_refused(&r);
        }
        assert_throttled(&login_from(&app, "203.0.113.99", ADMIN, PASSWORD).await);
        assert_throttled(&app.login(ADMIN, PASSWORD).await);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_address_limit_is_per_client() {
    let app = spawn(|c| {
        behind_loopback_proxy(c);
        c.login_per_address = 2;
    })
    .await;
    // The client is the rightmost address the trusted proxies did not add.
    let chain = "198.51.100.1, 203.0.113.5, 127.0.0.1";
    for i in 0..2 {
        let r = login_from(&app, chain, &format!("x{i}@example.com"), WRONG_PASSWORD).await;
        assert_refused(&r);
    }
    assert_throttled(&login_from(&app, "203.0.113.5", ADMIN, PASSWORD).await);
    // A client that forged the left part of the header is still 203.0.113.5.
    assert_throttled(&login_from(&app, "9.9.9.9, 203.0.113.5", ADMIN, PASSWORD).await);
    // Another client behind the same proxy is not affected.
    login_from(&app, "203.0.113.6", ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
}

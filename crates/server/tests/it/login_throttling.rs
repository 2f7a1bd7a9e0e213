//! Login throttling that an attacker cannot turn against the owner: the strict limit is per
//! account and client address, the per-account ceiling is far higher and spares addresses
//! the owner logged in from, IPv6 clients count by /64, and the client address comes from
//! `X-Forwarded-For` only when the peer is a trusted proxy. Also: what a flood of oversize
//! or distinct emails from one address costs.

use crate::helpers::{PASSWORD, Resp, TestApp, WRONG_PASSWORD, assert_error, test_auth_config};
use plinth_server::auth::{ManualClock, TrustedProxies};
use plinth_server::{AuthConfig, ServerConfig};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

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
    login_from_bytes(app, forwarded_for.as_bytes(), email, password).await
}

/// As [`login_from`], with any bytes a header value may hold.
async fn login_from_bytes(
    app: &TestApp,
    forwarded_for: &[u8],
    email: &str,
    password: &str,
) -> Resp {
    let value = HeaderValue::from_bytes(forwarded_for).expect("a header value");
    let req = app
        .request_as(Method::POST, "/api/v1/auth/login", None)
        .header("x-forwarded-for", value)
        .json(&json!({"email": email, "password": password}));
    app.send(req).await
}

const DAY: Duration = Duration::from_secs(24 * 3600);

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

#[tokio::test]
async fn oversize_emails_are_refused_before_any_limit_and_distinct_ones_stop_at_the_address_limit()
{
    let app = spawn(|c| {
        c.login_per_address = 3;
        c.login_per_account_address = 3;
    })
    .await;
    // A flood of distinct, huge emails from one address: each a 400 naming the field, and
    // none of them reaches a limiter (they would have used up the address's 3 attempts).
    for i in 0..40 {
        let email = format!("{i}{}@example.com", "a".repeat(64 * 1024));
        let r = app.login(&email, WRONG_PASSWORD).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["email"]
        );
    }
    // 254 bytes is still an email: an ordinary failed login, counted.
    let longest = format!("{}@example.com", "a".repeat(254 - 12));
    assert_refused(&app.login(&longest, WRONG_PASSWORD).await);
    assert_error(
        &app.login(&format!("a{longest}"), WRONG_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
    );
    // Distinct ordinary emails stop at the per-address limit, the account's own too.
    for i in 0..2 {
        assert_refused(
            &app.login(&format!("guess{i}@example.com"), WRONG_PASSWORD)
                .await,
        );
    }
    assert_throttled(&app.login("guess9@example.com", WRONG_PASSWORD).await);
    assert_throttled(&app.login(ADMIN, PASSWORD).await);
}

#[tokio::test]
async fn attempts_refused_for_their_address_do_not_count_for_the_account_from_it() {
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    auth.login_per_address = 3;
    auth.login_per_account_address = 3;
    let app = TestApp::spawn_clocked(auth, &clock).await;
    for i in 0..3 {
        assert_refused(
            &app.login(&format!("guess{i}@example.com"), WRONG_PASSWORD)
                .await,
        );
    }
    clock.advance(Duration::from_secs(30));
    // Refused by the per-address limit (checked first): nothing is counted for the admin
    // account from this address.
    for _ in 0..3 {
        assert_throttled(&app.login(ADMIN, WRONG_PASSWORD).await);
    }
    // The address's window ends; the admin's count from here is still zero.
    clock.advance(Duration::from_secs(30));
    app.login_ok(ADMIN, PASSWORD).await;
}

#[tokio::test]
async fn the_owner_still_logs_in_from_a_known_address_when_the_account_is_at_its_ceiling() {
    // The defaults: 5 per account and address, 100 per account, 20 per address.
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    behind_loopback_proxy(&mut auth);
    let app = TestApp::spawn_clocked(auth, &clock).await;
    let home = "198.51.100.7";
    login_from(&app, home, ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
    // An hour later, the attack.
    clock.advance(Duration::from_secs(3600));
    // 20 addresses x 5 wrong passwords: the account's ceiling of 100 is reached.
    for a in 0..20 {
        let address = format!("203.0.113.{a}");
        for _ in 0..5 {
            assert_refused(&login_from(&app, &address, ADMIN, WRONG_PASSWORD).await);
        }
    }
    assert_throttled(&login_from(&app, "203.0.113.200", ADMIN, WRONG_PASSWORD).await);
    // From a brand-new address even the owner waits for the window to end…
    assert_throttled(&login_from(&app, "198.51.100.8", ADMIN, PASSWORD).await);
    // …but from an address they logged in from, they get in.
    login_from(&app, home, ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn a_known_address_is_forgotten_its_time_after_the_last_login() {
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    behind_loopback_proxy(&mut auth);
    auth.login_per_account_address = 1;
    auth.login_per_account = 2;
    auth.login_remember = DAY;
    let app = TestApp::spawn_clocked(auth, &clock).await;
    let home = "198.51.100.7";
    let attack = |round: u32| {
        let app = &app;
        async move {
            for a in 0..2 {
                let address = format!("203.0.{round}.{a}");
                assert_refused(&login_from(app, &address, ADMIN, WRONG_PASSWORD).await);
            }
            assert_throttled(&login_from(app, "203.0.113.200", ADMIN, WRONG_PASSWORD).await);
        }
    };
    login_from(&app, home, ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
    clock.advance(DAY - Duration::from_secs(3600));
    attack(1).await;
    // 23 hours later: still known, and this login starts its day again.
    login_from(&app, home, ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
    clock.advance(DAY);
    attack(2).await;
    assert_throttled(&login_from(&app, home, ADMIN, PASSWORD).await);
}

#[tokio::test]
async fn ipv6_clients_count_by_their_64() {
    let app = spawn(|c| {
        behind_loopback_proxy(c);
        c.login_per_address = 3;
        c.login_per_account_address = 1;
    })
    .await;
    assert_refused(&login_from(&app, "2001:db8:1:2::1", ADMIN, WRONG_PASSWORD).await);
    // Another address in the same /64 shares the account's count from there…
    assert_throttled(&login_from(&app, "2001:db8:1:2::ffff", ADMIN, PASSWORD).await);
    assert_refused(
        &login_from(
            &app,
            "2001:db8:1:2:a:b:c:d",
            "x@example.com",
            WRONG_PASSWORD,
        )
        .await,
    );
    // …and the address's: that is its third attempt.
    assert_throttled(&login_from(&app, "2001:db8:1:2::9", "y@example.com", WRONG_PASSWORD).await);
    // The next /64 is another client.
    login_from(&app, "2001:db8:1:3::1", ADMIN, PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn a_forwarded_for_line_with_non_utf8_bytes_still_names_the_client() {
    let app = spawn(|c| {
        behind_loopback_proxy(c);
        c.login_per_address = 2;
    })
    .await;
    // The client sent bytes 0x80-0xFF; the proxy appended the address it saw to that line.
    let line = b"\xff\x80junk\xfe, 203.0.113.9";
    for i in 0..2 {
        let r = login_from_bytes(&app, line, &format!("x{i}@example.com"), WRONG_PASSWORD).await;
        assert_refused(&r);
    }
    // Those attempts were the client's…
    assert_throttled(&login_from(&app, "203.0.113.9", ADMIN, PASSWORD).await);
    // …not the proxy's own (a request with no header is attributed to the proxy).
    app.login_ok(ADMIN, PASSWORD).await;
}

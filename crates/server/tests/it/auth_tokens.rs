//! Access tokens under attack: expired, tampered, foreign-key, `alg: none`, algorithm
//! confusion, odd schemes, and tokens of users who were deleted or demoted. Every refusal is
//! tried on a guest-readable list, so a bad credential is shown to be refused, never
//! silently downgraded to a guest.

use crate::helpers::{TEST_KEY, TestApp, assert_error, make_user, test_auth_config};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::Role;
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use std::time::{Duration, SystemTime};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

/// HMAC (RFC 2104) over any SHA-2 digest with the given block size, written out so the
/// tests forge tokens without trusting the crate under test.
fn hmac<D: Digest>(block: usize, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > block {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new().chain_update(&ipad).chain_update(msg).finalize();
    D::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A JWT with this header and payload, signed by `sign` over `header.payload`.
pub(crate) fn forge(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let head = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(head.as_bytes());
    format!("{head}.{}", b64(&sig))
}

pub(crate) fn hs256(key: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |m| hmac::<Sha256>(64, key, m)
}

/// Claims as Plinth issues them, for `sub` with `role`, valid for 15 minutes. `ver` is the
/// account version the token was issued at (1 for an account never changed).
fn claims(sub: &str, role: &str) -> Value {
    let now = unix_now();
    json!({"sub": sub, "ver": 1, "role": role, "iss": "plinth", "iat": now, "exp": now + 900, "jti": "x"})
}

pub(crate) fn hs256_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

/// Asserts that `credential` is refused with 401 on a list guests may read.
async fn refused(app: &TestApp, credential: &str, what: &str) {
    let r = app
        .call_as(Method::GET, "/api/v1/resource", Some(credential), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{what} was accepted: {}",
        r.body
    );
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

async fn accepted_as(app: &TestApp, credential: &str) -> Value {
    app.me(Some(credential)).await.data(StatusCode::OK).clone()
}

#[tokio::test]
async fn a_token_forged_with_the_real_key_is_accepted_so_the_forger_is_sound() {
    let app = TestApp::spawn().await;
    let token = forge(
        &hs256_header(),
        &claims(&app.admin_id, "admin"),
        hs256(TEST_KEY),
    );
    assert_eq!(accepted_as(&app, &token).await["id"], json!(app.admin_id));
}

#[tokio::test]
async fn an_expired_access_token_is_401() {
    let mut auth = test_auth_config();
    auth.access_ttl = Duration::from_secs(1);
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(auth, &clock).await;
    app.user("ada@example.com").await;
    let tokens = app
        .login_ok("ada@example.com", crate::helpers::PASSWORD)
        .await;
    let r = app.login("ada@example.com", crate::helpers::PASSWORD).await;
    assert_eq!(r.data(StatusCode::OK)["expires_in"], json!(1));
    accepted_as(&app, &tokens.access).await;
    // At the expiry plus the validator's 5 s of clock-skew leeway it still passes; one
    // second later it does not.
    clock.advance(Duration::from_secs(1 + 5));
    accepted_as(&app, &tokens.access).await;
    clock.advance(Duration::from_secs(1));
    refused(&app, &tokens.access, "an expired token").await;
    // The refresh token still gets a fresh access token.
    let fresh = crate::helpers::Tokens::from_resp(&app.refresh(&tokens.refresh).await);
    accepted_as(&app, &fresh.access).await;
}

/// The claims of a token the server issued, as JSON.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64 payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn tokens_with_wrong_claims_are_401_even_when_signed_with_the_real_key() {
    let app = TestApp::spawn().await;
    let now = unix_now();
    // Every case starts from the claims of a token the server issued, re-signed with the
    // real key (and accepted, as the control shows), and changes exactly one thing, so
    // each refusal is for the reason the case names.
    let real = claims_of(&app.admin_token);
    let keys: Vec<&str> = real
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected_keys = vec!["exp", "iat", "iss", "jti", "role", "sub", "ver"];
    expected_keys.sort_unstable();
    let mut got_keys = keys.clone();
    got_keys.sort_unstable();
    assert_eq!(got_keys, expected_keys, "the claims a real token carries");
    let control = forge(&hs256_header(), &real, hs256(TEST_KEY));
    assert_eq!(accepted_as(&app, &control).await["id"], json!(app.admin_id));

    let with = |key: &str, value: Value| {
        let mut c = real.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = real.clone();
        c.as_object_mut().expect("an object").remove(key);
        c
    };
    let cases = [
        ("expired an hour ago", with("exp", json!(now - 3600))),
        ("another issuer", with("iss", json!("evil"))),
        ("an issuer differing in case", with("iss", json!("Plinth"))),
        ("no issuer", without("iss")),
        ("no expiry", without("exp")),
        ("no subject", without("sub")),
        ("no account version", without("ver")),
        (
            "an account version the account never had",
            with("ver", json!(real["ver"].as_i64().expect("ver") + 1)),
        ),
        ("a subject that is not a UUID", with("sub", json!("admin"))),
        (
            "an unknown subject",
            with("sub", json!(crate::helpers::MISSING_ID)),
        ),
    ];
    for (what, c) in cases {
        refused(&app, &forge(&hs256_header(), &c, hs256(TEST_KEY)), what).await;
    }
    // The control is still accepted: nothing above was refused for an unrelated reason.
    accepted_as(&app, &control).await;
}

/// `nbf` (not before) in the future, and `iat` (issued at) in the future beyond the 5 s of
/// clock-skew leeway, are refused; within the leeway, or in the past, they are accepted.
#[tokio::test]
async fn tokens_not_yet_valid_or_issued_in_the_future_are_401() {
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(test_auth_config(), &clock).await;
    let now = i64::try_from(
        clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits");
    let real = claims_of(&app.admin_token);
    let with = |changes: &[(&str, i64)]| {
        let mut c = real.clone();
        for (key, value) in changes {
            c[*key] = json!(value);
        }
        forge(&hs256_header(), &c, hs256(TEST_KEY))
    };
    for (what, token) in [
        ("nbf an hour ahead", with(&[("nbf", now + 3600)])),
        ("nbf past the leeway", with(&[("nbf", now + 6)])),
        ("iat an hour ahead", with(&[("iat", now + 3600)])),
        ("iat past the leeway", with(&[("iat", now + 6)])),
    ] {
        refused(&app, &token, what).await;
    }
    for token in [
        with(&[("nbf", now - 60)]),
        with(&[("nbf", now + 5), ("iat", now + 5)]),
        with(&[("iat", now - 60)]),
    ] {
        assert_eq!(accepted_as(&app, &token).await["id"], json!(app.admin_id));
    }
    // Once the clock reaches them, the same tokens are accepted.
    let later = with(&[
        ("nbf", now + 3600),
        ("iat", now + 3600),
        ("exp", now + 4500),
    ]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(accepted_as(&app, &later).await["id"], json!(app.admin_id));
}

#[tokio::test]
async fn a_tampered_payload_is_401() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user("ada@example.com").await;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64 payload");
    let mut payload: Value = serde_json::from_slice(&payload).expect("JSON payload");
    assert_eq!(payload["role"], json!("user"));
    payload["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    );
    refused(&app, &tampered, "a payload promoted to admin").await;
    payload["sub"] = json!(app.admin_id);
    let hijack = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    );
    refused(&app, &hijack, "a payload naming the admin").await;
    // A flipped signature byte is refused too; the untouched token still works.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64 signature");
    sig[0] ^= 1;
    refused(
        &app,
        &format!("{}.{}.{}", parts[0], parts[1], b64(&sig)),
        "a flipped signature",
    )
    .await;
    assert_eq!(accepted_as(&app, &token).await["role"], json!("user"));
}

#[tokio::test]
async fn a_role_claim_grants_nothing_the_store_does_not_say() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user("ada@example.com").await;
    // Correctly signed, but claiming admin for a user: the role comes from the account.
    let token = forge(
        &hs256_header(),
        &claims(&user.id.to_string(), "admin"),
        hs256(TEST_KEY),
    );
    assert_eq!(accepted_as(&app, &token).await["role"], json!("user"));
    let r = app
        .call_as(Method::GET, "/api/v1/users", Some(&token), None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn a_signature_from_another_key_is_401() {
    let app = TestApp::spawn().await;
    let other = b"another-signing-key-with-enough-bytes-0123456789";
    let token = forge(
        &hs256_header(),
        &claims(&app.admin_id, "admin"),
        hs256(other),
    );
    refused(&app, &token, "a foreign key's token").await;
    refused(
        &app,
        &forge(&hs256_header(), &claims(&app.admin_id, "admin"), hs256(b"")),
        "an empty key",
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_401() {
    let app = TestApp::spawn().await;
    let c = claims(&app.admin_id, "admin");
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        refused(&app, &forge(&header, &c, |_| Vec::new()), alg).await;
        // With the signature of a real token kept, too.
        let real = forge(&hs256_header(), &c, hs256(TEST_KEY));
        let sig = real.rsplit('.').next().expect("a signature");
        let unsigned = forge(&header, &c, |_| Vec::new());
        refused(&app, &format!("{unsigned}{sig}"), alg).await;
    }
}

#[tokio::test]
async fn algorithm_confusion_is_401() {
    let app = TestApp::spawn().await;
    let c = claims(&app.admin_id, "admin");
    let hs512 = forge(&json!({"alg": "HS512", "typ": "JWT"}), &c, |m| {
        hmac::<Sha512>(128, TEST_KEY, m)
    });
    refused(&app, &hs512, "HS512 with the real key").await;
    // RS256/ES256 headers whose "signature" is an HMAC with the server's key: the classic
    // confusion where a verifier uses its key as whatever the header asks for.
    for alg in ["RS256", "ES256", "PS256", "hs256"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        refused(&app, &forge(&header, &c, hs256(TEST_KEY)), alg).await;
    }
    let with_jwk =
        json!({"alg": "HS256", "typ": "JWT", "jwk": {"kty": "oct", "k": b64(b"attacker")}});
    refused(
        &app,
        &forge(&with_jwk, &c, hs256(b"attacker")),
        "an embedded jwk",
    )
    .await;
}

#[tokio::test]
async fn garbage_and_other_schemes_are_401() {
    let app = TestApp::spawn().await;
    refused(&app, "abc", "Bearer abc").await;
    refused(&app, "a.b.c", "Bearer a.b.c").await;
    refused(&app, "plk_nothing", "an unknown API key").await;
    let headers: [(&str, String); 6] = [
        (
            "authorization",
            "Basic YWRtaW5AZXhhbXBsZS5jb206cGFzcw==".to_owned(),
        ),
        ("authorization", format!("Token {}", app.admin_token)),
        ("authorization", format!("Basic {}", app.admin_token)),
        ("authorization", "Bearer".to_owned()),
        ("authorization", "Bearer    ".to_owned()),
        ("x-api-key", "plk_garbage".to_owned()),
    ];
    for (name, value) in headers {
        let r = app
            .send(
                app.request_as(Method::GET, "/api/v1/resource", None)
                    .header(name, &value),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {value} → {}",
            r.body
        );
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_deleted_users_token_is_401() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("ada@example.com").await;
    let session = app
        .login_ok("ada@example.com", crate::helpers::PASSWORD)
        .await;
    accepted_as(&app, &token).await;
    let r = app
        .send(app.request(Method::DELETE, &format!("/api/v1/users/{}", user.id)))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    refused(&app, &token, "a deleted user's token").await;
    refused(&app, &session.access, "a deleted user's login").await;
    let again = app.refresh(&session.refresh).await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_role_change_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let (second, token) = make_user(&app.state, "root@example.com", Role::Admin).await;
    let session = app
        .login_ok("root@example.com", crate::helpers::PASSWORD)
        .await;
    let path = format!("/api/v1/users/{}", second.id);
    app.call_as(Method::GET, "/api/v1/users", Some(&token), None)
        .await
        .data(StatusCode::OK);
    let record = app
        .create_as("resource", &app.admin_token, &json!({"name": "r"}))
        .await;
    let demote = app
        .call_as(Method::PATCH, &path, None, Some(&json!({"role": "user"})))
        .await;
    assert_error(&demote, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let demote = app
        .send(
            app.request(Method::PATCH, &path)
                .json(&json!({"role": "user"})),
        )
        .await;
    assert_eq!(demote.data(StatusCode::OK)["role"], json!("user"));
    // The admin-era session cannot be refreshed…
    let refresh = app.refresh(&session.refresh).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // …and the tokens issued while an admin lost admin power at once: refused outright or
    // acting as a user, never as an admin.
    let id = crate::helpers::id_of(&record);
    for old in [&token, &session.access] {
        let me = app.me(Some(old)).await;
        if me.status == StatusCode::OK {
            assert_eq!(me.body["data"]["role"], json!("user"));
        } else {
            assert_error(&me, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        }
        let users = app
            .call_as(Method::GET, "/api/v1/users", Some(old), None)
            .await;
        assert_not_allowed(&users);
        let write = app
            .call_as(
                Method::PATCH,
                &format!("/api/v1/resource/{id}"),
                Some(old),
                Some(&json!({"name": "x"})),
            )
            .await;
        assert_not_allowed(&write);
    }
    assert_eq!(app.get_ok("resource", &id).await["name"], json!("r"));
    // A new login acts as what the account is now.
    let now = app
        .login_ok("root@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(accepted_as(&app, &now.access).await["role"], json!("user"));
    let users = app
        .call_as(Method::GET, "/api/v1/users", Some(&now.access), None)
        .await;
    assert_error(&users, StatusCode::FORBIDDEN, "FORBIDDEN");
    // And a promotion works at once too.
    let (user, _) = app.user("ada@example.com").await;
    let promote = app
        .send(
            app.request(Method::PATCH, &format!("/api/v1/users/{}", user.id))
                .json(&json!({"role": "admin"})),
        )
        .await;
    promote.data(StatusCode::OK);
    let promoted = app
        .login_ok("ada@example.com", crate::helpers::PASSWORD)
        .await;
    app.call_as(Method::GET, "/api/v1/users", Some(&promoted.access), None)
        .await
        .data(StatusCode::OK);
}

/// A refusal: 401 (the credential no longer counts) or 403 (it counts, without the power).
fn assert_not_allowed(r: &crate::helpers::Resp) {
    if r.status == StatusCode::UNAUTHORIZED {
        assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    } else {
        assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
}

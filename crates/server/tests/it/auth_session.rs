//! `/api/v1/auth/{login,refresh,logout,me}`: the session endpoints, every error they give,
//! refresh rotation with reuse detection, and password changes.

use crate::helpers::{
    NEW_PASSWORD, PASSWORD, Resp, TestApp, Tokens, WRONG_PASSWORD, assert_error, test_auth_config,
};
use plinth_server::ServerConfig;
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const ADMIN: &str = "admin@example.com";

/// A server whose login limits stay out of the way of these tests.
async fn app() -> TestApp {
    let mut auth = test_auth_config();
    auth.login_per_address = 1000;
    auth.login_per_account = 1000;
    auth.login_per_account_address = 1000;
    TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await
}

/// The error body without its request id, for comparing two answers.
fn without_request_id(r: &Resp) -> Value {
    let mut body = r.body.clone();
    if let Some(e) = body["error"].as_object_mut() {
        e.remove("request_id");
    }
    body
}

#[tokio::test]
async fn login_returns_a_bearer_pair_whose_access_token_works() {
    let app = app().await;
    let r = app.login(ADMIN, PASSWORD).await;
    let tokens = Tokens::from_resp(&r);
    assert_eq!(r.body["data"]["expires_in"], json!(15 * 60));
    let me = app.me(Some(&tokens.access)).await;
    let data = me.data(StatusCode::OK);
    assert_eq!(data["id"], json!(app.admin_id));
    assert_eq!(data["role"], json!("admin"));
    // Emails are one account whatever their case, and surrounding spaces do not matter.
    app.login_ok(" Admin@EXAMPLE.com ", PASSWORD).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = app().await;
    let wrong = app.login(ADMIN, WRONG_PASSWORD).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let not_an_email = app.login("nobody", PASSWORD).await;
    assert_error(&not_an_email, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(without_request_id(&wrong), without_request_id(&unknown));
    assert_eq!(
        without_request_id(&wrong),
        without_request_id(&not_an_email)
    );
    assert_ne!(wrong.request_id(), unknown.request_id());
}

#[tokio::test]
async fn malformed_login_bodies_are_400_naming_the_fields() {
    let app = app().await;
    let url = app.url("/api/v1/auth/login");
    let syntax = app
        .send(
            app.request_as(Method::POST, "/api/v1/auth/login", None)
                .header("content-type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    assert_eq!(
        assert_error(&syntax, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["body"]
    );
    let no_type = app
        .send(
            app.request_as(Method::POST, "/api/v1/auth/login", None)
                .body("{}"),
        )
        .await;
    assert_error(
        &no_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let cases: [(Value, &[&str]); 5] = [
        (json!({}), &["email", "password"]),
        (json!({"email": ADMIN}), &["password"]),
        (
            json!({"email": 1, "password": true}),
            &["email", "password"],
        ),
        (
            json!({"email": ADMIN, "password": PASSWORD, "role": "admin"}),
            &["role"],
        ),
        (json!([ADMIN, PASSWORD]), &["body"]),
    ];
    for (body, fields) in cases {
        let r = app
            .call_as(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await;
        let mut got = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        got.sort();
        assert_eq!(got, fields, "{body} at {url}");
    }
}

#[tokio::test]
async fn refresh_rotates_and_spends_the_old_token() {
    let app = app().await;
    let first = app.login_ok(ADMIN, PASSWORD).await;
    let second = Tokens::from_resp(&app.refresh(&first.refresh).await);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    app.me(Some(&second.access)).await.data(StatusCode::OK);
    // The new refresh token rotates again; the chain goes on.
    let third = Tokens::from_resp(&app.refresh(&second.refresh).await);
    assert_ne!(third.refresh, second.refresh);
    app.me(Some(&third.access)).await.data(StatusCode::OK);
}

#[tokio::test]
async fn a_spent_refresh_token_revokes_its_whole_family() {
    let app = app().await;
    let other_session = app.login_ok(ADMIN, PASSWORD).await;
    let first = app.login_ok(ADMIN, PASSWORD).await;
    let second = Tokens::from_resp(&app.refresh(&first.refresh).await);
    // A thief replays the spent token: refused…
    let replay = app.refresh(&first.refresh).await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // …and the legitimate newer token of the same family is dead too.
    let newer = app.refresh(&second.refresh).await;
    assert_error(&newer, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let again = app.refresh(&first.refresh).await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // Another family (another login) is untouched.
    Tokens::from_resp(&app.refresh(&other_session.refresh).await);
}

#[tokio::test]
async fn bad_refresh_requests_are_refused() {
    let app = app().await;
    let tokens = app.login_ok(ADMIN, PASSWORD).await;
    for bogus in [
        "plr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "nonsense",
        "",
        &tokens.access,
    ] {
        let r = app.refresh(bogus).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let missing = app
        .call_as(Method::POST, "/api/v1/auth/refresh", None, Some(&json!({})))
        .await;
    assert_eq!(
        assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["refresh_token"]
    );
    let typed = app
        .call_as(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": 7})),
        )
        .await;
    assert_eq!(
        assert_error(&typed, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["refresh_token"]
    );
    // None of that harmed the real token.
    Tokens::from_resp(&app.refresh(&tokens.refresh).await);
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let app = app().await;
    let other_session = app.login_ok(ADMIN, PASSWORD).await;
    let first = app.login_ok(ADMIN, PASSWORD).await;
    let second = Tokens::from_resp(&app.refresh(&first.refresh).await);
    let out = app.logout(&second.refresh).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert!(out.raw.is_empty());
    let after = app.refresh(&second.refresh).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let unknown = app.logout("plr_unknown").await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let missing = app
        .call_as(Method::POST, "/api/v1/auth/logout", None, Some(&json!({})))
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    Tokens::from_resp(&app.refresh(&other_session.refresh).await);
}

#[tokio::test]
async fn me_shows_the_account_and_never_a_secret() {
    let app = app().await;
    let (user, token) = app.user("ada@example.com").await;
    let r = app.me(Some(&token)).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["id"], json!(user.id.to_string()));
    assert_eq!(data["email"], json!("ada@example.com"));
    assert_eq!(data["role"], json!("user"));
    let mut keys: Vec<&str> = data
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "email_verified",
            "id",
            "role",
            "updated_at",
            "version"
        ]
    );
    let text = String::from_utf8_lossy(&r.raw).to_lowercase();
    assert!(
        !text.contains("password") && !text.contains("hash"),
        "{text}"
    );
    let guest = app.me(None).await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

async fn change(app: &TestApp, token: &str, body: &Value) -> Resp {
    app.call_as(Method::PATCH, "/api/v1/auth/me", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn password_change_refusals_change_nothing() {
    let app = app().await;
    let (_, token) = app.user("ada@example.com").await;
    let cases: [(Value, &[&str]); 7] = [
        (
            json!({"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}),
            &["current_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "short"}),
            &["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "Password1234"}),
            &["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "ada@example.com"}),
            &["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"}),
            &["role"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "email": "x@example.com"}),
            &["email"],
        ),
        (json!({}), &["current_password", "new_password"]),
    ];
    for (body, fields) in cases {
        let r = change(&app, &token, &body).await;
        let mut got = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        got.sort();
        assert_eq!(got, fields, "{body}");
    }
    let me = app.me(Some(&token)).await;
    assert_eq!(me.data(StatusCode::OK)["role"], json!("user"));
    assert_eq!(me.body["data"]["email"], json!("ada@example.com"));
    assert_eq!(me.body["data"]["version"], json!(1), "nothing was written");
    app.login_ok("ada@example.com", PASSWORD).await;
    let guest = app
        .call_as(
            Method::PATCH,
            "/api/v1/auth/me",
            None,
            Some(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_password_change_ends_the_old_sessions() {
    let app = app().await;
    app.user("ada@example.com").await;
    let session = app.login_ok("ada@example.com", PASSWORD).await;
    let r = change(
        &app,
        &session.access,
        &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.data(StatusCode::OK)["email"], json!("ada@example.com"));
    let old_refresh = app.refresh(&session.refresh).await;
    assert_error(&old_refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // The access token of the old password ends at once too (tokens carry the account
    // version they were issued at).
    let old_access = app.me(Some(&session.access)).await;
    assert_error(&old_access, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let old_password = app.login("ada@example.com", PASSWORD).await;
    assert_error(&old_password, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let fresh = app.login_ok("ada@example.com", NEW_PASSWORD).await;
    let me = app.me(Some(&fresh.access)).await;
    assert_eq!(me.data(StatusCode::OK)["role"], json!("user"));
}

#[tokio::test]
async fn one_refresh_token_rotates_once_even_when_sent_twice_at_once() {
    let app = app().await;
    let bystander = app.login_ok(ADMIN, PASSWORD).await;
    for round in 0..5 {
        let tokens = app.login_ok(ADMIN, PASSWORD).await;
        let (a, b) = tokio::join!(app.refresh(&tokens.refresh), app.refresh(&tokens.refresh));
        // Exactly one of the two spends the token; the other presents a spent token and is
        // refused, which revokes the family.
        let (winner, loser) = match (a.status, b.status) {
            (StatusCode::OK, _) => (&a, &b),
            (_, StatusCode::OK) => (&b, &a),
            _ => panic!(
                "round {round}: neither refresh succeeded: {} and {}",
                a.body, b.body
            ),
        };
        assert_error(loser, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        let pair = Tokens::from_resp(winner);
        assert_ne!(
            pair.refresh, tokens.refresh,
            "round {round}: a new refresh token"
        );
        // The family, the winner's new refresh token and access token included, is revoked
        // by the replay.
        let me = app.me(Some(&pair.access)).await;
        assert_error(&me, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        for spent in [&tokens.refresh, &pair.refresh] {
            let again = app.refresh(spent).await;
            assert_error(&again, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        }
    }
    // Other families of the same account are untouched.
    let rotated = Tokens::from_resp(&app.refresh(&bystander.refresh).await);
    app.me(Some(&rotated.access)).await.data(StatusCode::OK);
}

#[tokio::test]
async fn an_expired_refresh_token_is_401() {
    let mut auth = test_auth_config();
    auth.refresh_ttl = std::time::Duration::from_secs(1);
    // The database decides a refresh token's expiry by its own clock, so instead of waiting
    // the token is issued two seconds in the past: its one-second lifetime is over.
    let clock = ManualClock::starting_at(SystemTime::now() - Duration::from_secs(2));
    let app = TestApp::spawn_clocked(auth, &clock).await;
    let tokens = app.login_ok(ADMIN, PASSWORD).await;
    let r = app.refresh(&tokens.refresh).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

//! Sign-up and email verification over a real SMTP server (`plinth_testkit::smtp`): the
//! tests read the messages the server really sent and take the token from their `token:`
//! line. Also the harness the other mail tests share (`email_flows.rs`).

use crate::helpers::{PASSWORD, Resp, TestApp, Tokens, assert_error, test_auth_config};
use plinth_server::auth::{ManualClock, Signup};
use plinth_server::mail::MailConfig;
use plinth_server::{AuthConfig, ServerConfig};
use plinth_store::AuditQuery;
use plinth_testkit::smtp::{SmtpMessage, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a test waits for a message that must come.
pub(crate) const MAIL_WAIT: Duration = Duration::from_secs(10);
/// How long a test waits before concluding that no message comes.
pub(crate) const NO_MAIL_WAIT: Duration = Duration::from_millis(700);
/// The `public_url` of the mail tests.
pub(crate) const PUBLIC_URL: &str = "https://app.example.com";

/// Auth settings with sign-up open and mail going to `sink`.
pub(crate) fn mail_auth(sink: &SmtpSink) -> AuthConfig {
    let mut auth = test_auth_config();
    auth.signup = Signup::Open;
    auth.public_url = Some(PUBLIC_URL.to_owned());
    auth.mail = Some(
        MailConfig::parse(&sink.url(), "Plinth <no-reply@example.com>").expect("mail settings"),
    );
    auth
}

/// A server whose mail goes to a fresh sink, with `configure`d auth settings.
pub(crate) async fn mail_app(configure: impl FnOnce(&mut AuthConfig)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let mut auth = mail_auth(&sink);
    configure(&mut auth);
    let app = TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await;
    (app, sink)
}

/// As [`mail_app`], going by a clock the test moves.
pub(crate) async fn clocked_mail_app(clock: &ManualClock) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_clocked(mail_auth(&sink), clock).await;
    (app, sink)
}

/// `POST path` with a JSON body and no credential.
pub(crate) async fn post(app: &TestApp, path: &str, body: &Value) -> Resp {
    app.call_as(Method::POST, path, None, Some(body)).await
}

/// The next message to `to`, which must come.
pub(crate) async fn mail_to(sink: &SmtpSink, to: &str) -> SmtpMessage {
    sink.next_to(to, MAIL_WAIT)
        .await
        .unwrap_or_else(|| panic!("no message to {to} (all: {:?})", sink.all()))
}

/// The token of the next message to `to`, which must carry one.
pub(crate) async fn token_to(sink: &SmtpSink, to: &str) -> String {
    let message = mail_to(sink, to).await;
    message
        .token()
        .unwrap_or_else(|| panic!("a message without a token line: {}", message.data))
}

/// Checks that no message to `to` comes.
pub(crate) async fn no_mail_to(sink: &SmtpSink, to: &str) {
    if let Some(m) = sink.next_to(to, NO_MAIL_WAIT).await {
        panic!("an unexpected message to {to}: {}", m.data);
    }
}

/// Checks the `202 {"data":{"status":"pending"}}` answer.
pub(crate) fn assert_pending(r: &Resp) {
    assert_eq!(r.data(StatusCode::ACCEPTED), &json!({"status": "pending"}));
}

async fn sign_up(app: &TestApp, email: &str, password: &str) -> Resp {
    let body = json!({"email": email, "password": password});
    post(app, "/api/v1/auth/signup", &body).await
}

#[tokio::test]
async fn sign_up_is_off_by_default() {
    let app = TestApp::spawn().await;
    let r = sign_up(&app, "ada@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sign-up is off"))
    );
    assert_error(
        &app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn a_fresh_and_a_taken_address_get_the_same_answer_and_the_owner_a_notice() {
    let (app, sink) = mail_app(|_| {}).await;
    let fresh = sign_up(&app, "ada@example.com", PASSWORD).await;
    assert_pending(&fresh);
    let message = mail_to(&sink, "ada@example.com").await;
    let token = message.token().expect("a verification token");
    assert!(
        message
            .text()
            .contains(&format!("{PUBLIC_URL}/verify-email?token={token}")),
        "{}",
        message.data
    );
    assert!(
        message.data.contains("text/html"),
        "an HTML part: {}",
        message.data
    );
    // The same address again (another spelling, another password): the same bytes.
    let taken = sign_up(&app, "ADA@example.com", "another password entirely").await;
    assert_eq!(taken.status, fresh.status);
    assert_eq!(taken.raw, fresh.raw);
    // And the same headers, but for the ones that differ on every answer.
    let headers = |r: &crate::helpers::Resp| {
        let mut all: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date" | "traceparent"))
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        all.sort();
        all
    };
    assert_eq!(headers(&taken), headers(&fresh));
    let notice = mail_to(&sink, "ada@example.com").await;
    assert_eq!(
        notice.token(),
        None,
        "a notice carries no token: {}",
        notice.data
    );
    assert!(
        notice.text().contains("already has an account"),
        "{}",
        notice.data
    );
    // One account, unverified, with the first password.
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let me = app.me(Some(&tokens.access)).await;
    assert_eq!(me.data(StatusCode::OK)["email_verified"], json!(false));
    assert_eq!(me.data(StatusCode::OK)["role"], json!("user"));
    let entries = app
        .state
        .store()
        .audit_query(&AuditQuery {
            action: Some("auth.signup".to_owned()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(entries.len(), 2, "{entries:?}");
    let all = serde_json::to_string(&format!("{entries:?}")).expect("text");
    assert!(
        !all.contains("ada@example.com") && !all.contains(&token),
        "{all}"
    );
}

#[tokio::test]
async fn a_token_verifies_the_address_once() {
    let (app, sink) = mail_app(|_| {}).await;
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    let token = token_to(&sink, "ada@example.com").await;
    let r = post(&app, "/api/v1/auth/verify-email", &json!({"token": token})).await;
    let user = r.data(StatusCode::OK);
    assert_eq!(user["email"], json!("ada@example.com"));
    assert_eq!(user["email_verified"], json!(true));
    let again = post(&app, "/api/v1/auth/verify-email", &json!({"token": token})).await;
    assert_eq!(
        assert_error(&again, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["token"]
    );
}

#[tokio::test]
async fn sign_up_limited_to_domains() {
    let (app, _sink) = mail_app(|a| a.signup_domains = vec!["example.com".to_owned()]).await;
    let r = sign_up(&app, "eve@elsewhere.org", PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email"]
    );
    // A subdomain is another domain.
    let r = sign_up(&app, "eve@mail.example.com", PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email"]
    );
    assert_pending(&sign_up(&app, "ada@EXAMPLE.com", PASSWORD).await);
}

#[tokio::test]
async fn sign_up_refuses_hostile_and_weak_input() {
    let (app, sink) = mail_app(|_| {}).await;
    let cases = [
        (
            json!({"email": "ada@example.com", "password": "short"}),
            vec!["password"],
        ),
        (json!({"email": 5, "password": PASSWORD}), vec!["email"]),
        (
            json!({"email": "ada@example.com", "password": [PASSWORD]}),
            vec!["password"],
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "role": "admin"}),
            vec!["role"],
        ),
        (
            json!({"email": format!("{}@example.com", "a".repeat(100_000)), "password": PASSWORD}),
            vec!["email"],
        ),
        (
            json!({"email": "not an address", "password": PASSWORD}),
            vec!["email"],
        ),
        (json!({"password": PASSWORD}), vec!["email"]),
        (
            json!({"email": "ada@example.com", "password": "p".repeat(5000)}),
            vec!["password"],
        ),
    ];
    for (body, fields) in cases {
        let r = post(&app, "/api/v1/auth/signup", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            fields,
            "{body}"
        );
    }
    let r = post(&app, "/api/v1/auth/signup", &json!(["ada@example.com"])).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    no_mail_to(&sink, "ada@example.com").await;
    assert_error(
        &app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn sign_up_is_rate_limited_like_login() {
    let (app, _sink) = mail_app(|a| a.login_per_account_address = 2).await;
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    let r = sign_up(&app, "ada@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_verified_address_can_be_required_to_log_in() {
    let (app, sink) = mail_app(|a| a.require_verified_email = true).await;
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    let first = token_to(&sink, "ada@example.com").await;
    // A wrong password is the usual 401: the verification state is told only to the owner.
    assert_error(
        &app.login("ada@example.com", "a wrong password here").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    let r = app.login("ada@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(r.body.get("data").is_none(), "{}", r.body);
    // The refusal mailed a new token, which voids the first.
    let second = token_to(&sink, "ada@example.com").await;
    assert_ne!(first, second);
    let r = post(&app, "/api/v1/auth/verify-email", &json!({"token": first})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    post(&app, "/api/v1/auth/verify-email", &json!({"token": second}))
        .await
        .data(StatusCode::OK);
    app.login_ok("ada@example.com", PASSWORD).await;
    // The admin the harness made is unverified too.
    let r = app.login("admin@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn without_smtp_sign_up_works_and_mail_flows_answer_503() {
    let mut auth = test_auth_config();
    auth.signup = Signup::Open;
    let app = TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await;
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let calls: [(&str, Value, Option<&str>); 6] = [
        ("/api/v1/auth/verify-email", json!({"token": "x"}), None),
        (
            "/api/v1/auth/verify-email/resend",
            json!({}),
            Some(&tokens.access),
        ),
        (
            "/api/v1/auth/password-reset",
            json!({"email": "ada@example.com"}),
            None,
        ),
        (
            "/api/v1/auth/password-reset/confirm",
            json!({"token": "x", "password": PASSWORD}),
            None,
        ),
        (
            "/api/v1/auth/email-change",
            json!({"email": "b@example.com", "password": PASSWORD}),
            Some(&tokens.access),
        ),
        (
            "/api/v1/auth/email-change/confirm",
            json!({"token": "x"}),
            None,
        ),
    ];
    for (path, body, credential) in calls {
        let r = app
            .call_as(Method::POST, path, credential, Some(&body))
            .await;
        assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("PLINTH_SMTP_URL"), "{path}: {message}");
    }
}

#[tokio::test]
async fn resending_a_verification_needs_the_account_and_an_unverified_address() {
    let (app, sink) = mail_app(|_| {}).await;
    assert_pending(&sign_up(&app, "ada@example.com", PASSWORD).await);
    let first = token_to(&sink, "ada@example.com").await;
    let r = app
        .call_as(Method::POST, "/api/v1/auth/verify-email/resend", None, None)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = app
        .call_as(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some("Bearer-junk"),
            None,
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let r = app
        .call_as(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(&tokens.access),
            None,
        )
        .await;
    assert_pending(&r);
    let second = token_to(&sink, "ada@example.com").await;
    let r = post(&app, "/api/v1/auth/verify-email", &json!({"token": first})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    post(&app, "/api/v1/auth/verify-email", &json!({"token": second}))
        .await
        .data(StatusCode::OK);
    // The account changed (its access tokens with it), but the session goes on.
    let tokens = Tokens::from_resp(&app.refresh(&tokens.refresh).await);
    let r = app
        .call_as(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(&tokens.access),
            None,
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
}

#[tokio::test]
async fn resending_is_rate_limited_like_login() {
    let (app, sink) = mail_app(|a| a.login_per_account_address = 3).await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let resend = || {
        app.call_as(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(&tokens.access),
            None,
        )
    };
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(resend().await);
    }
    assert_pending(&answers[0]);
    let last = answers.last().expect("answers");
    assert_error(last, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    mail_to(&sink, "ada@example.com").await;
}

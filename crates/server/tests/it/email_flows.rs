//! Password reset and email change over a real SMTP server: tokens read from the messages
//! really sent, single use, expiry, a newer token voiding an older one, sessions ended, and
//! tokens of another purpose or with hostile shapes refused.

use crate::helpers::{NEW_PASSWORD, PASSWORD, TestApp, assert_error};
use crate::signup::{
    PUBLIC_URL, assert_pending, clocked_mail_app, mail_app, mail_to, no_mail_to, post, token_to,
};
use plinth_server::auth::ManualClock;
use plinth_store::AuditQuery;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

async fn ask_reset(app: &TestApp, email: &str) {
    assert_pending(&post(app, "/api/v1/auth/password-reset", &json!({"email": email})).await);
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> crate::helpers::Resp {
    let body = json!({"token": token, "password": password});
    post(app, "/api/v1/auth/password-reset/confirm", &body).await
}

#[tokio::test]
async fn a_reset_for_an_unknown_address_answers_the_same_and_mails_nothing() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let known = post(
        &app,
        "/api/v1/auth/password-reset",
        &json!({"email": "ada@example.com"}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/auth/password-reset",
        &json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.raw, unknown.raw);
    assert_pending(&unknown);
    mail_to(&sink, "ada@example.com").await;
    no_mail_to(&sink, "nobody@example.com").await;
}

#[tokio::test]
async fn a_reset_token_works_once_and_ends_every_session() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let old = app.login_ok("ada@example.com", PASSWORD).await;
    ask_reset(&app, "ada@example.com").await;
    let message = mail_to(&sink, "ada@example.com").await;
    let token = message.token().expect("a token line");
    assert!(
        message
            .text()
            .contains(&format!("{PUBLIC_URL}/reset-password?token={token}"))
    );
    // A weak new password is refused and leaves the token usable.
    let r = confirm_reset(&app, &token, "short").await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["password"]
    );
    let r = confirm_reset(&app, &token, NEW_PASSWORD).await;
    let user = r.data(StatusCode::OK);
    assert_eq!(user["email_verified"], json!(true));
    // Spent: a replay is refused.
    let r = confirm_reset(&app, &token, "yet another long passphrase").await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["token"]
    );
    // The session from before is over; the new password logs in, the old one not.
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
    assert_error(
        &app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    app.login_ok("ada@example.com", NEW_PASSWORD).await;
    let audited = app
        .state
        .store()
        .audit_query(&AuditQuery {
            action_prefix: Some("auth.password_reset".to_owned()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    let actions: Vec<_> = audited.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["auth.password_reset_requested", "auth.password_reset"]
    );
    assert!(!format!("{audited:?}").contains(&token));
}

#[tokio::test]
async fn a_reset_token_expires() {
    let clock = ManualClock::new();
    let (app, sink) = clocked_mail_app(&clock).await;
    app.user("ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    let token = token_to(&sink, "ada@example.com").await;
    clock.advance(Duration::from_secs(31 * 60));
    let r = confirm_reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["token"]
    );
    app.login_ok("ada@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_newer_reset_token_voids_the_older_one() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    let older = token_to(&sink, "ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    let newer = token_to(&sink, "ada@example.com").await;
    assert_ne!(older, newer);
    let r = confirm_reset(&app, &older, NEW_PASSWORD).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    confirm_reset(&app, &newer, NEW_PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn a_token_for_one_purpose_does_nothing_else() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    let reset = token_to(&sink, "ada@example.com").await;
    for path in [
        "/api/v1/auth/verify-email",
        "/api/v1/auth/email-change/confirm",
    ] {
        let r = post(&app, path, &json!({"token": reset})).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["token"],
            "{path}"
        );
    }
    // Still good for what it is for.
    confirm_reset(&app, &reset, NEW_PASSWORD)
        .await
        .data(StatusCode::OK);
}

#[tokio::test]
async fn confirmations_refuse_hostile_input() {
    let (app, _sink) = mail_app(|_| {}).await;
    let cases = [
        (
            "/api/v1/auth/verify-email",
            json!({"token": 42}),
            vec!["token"],
        ),
        (
            "/api/v1/auth/verify-email",
            json!({"token": "t".repeat(100_000)}),
            vec!["token"],
        ),
        (
            "/api/v1/auth/verify-email",
            json!({"token": "x", "user_id": "1"}),
            vec!["user_id"],
        ),
        ("/api/v1/auth/verify-email", json!({}), vec!["token"]),
        (
            "/api/v1/auth/email-change/confirm",
            json!({"token": ""}),
            vec!["token"],
        ),
        (
            "/api/v1/auth/password-reset/confirm",
            json!({"token": {"$ne": null}, "password": NEW_PASSWORD}),
            vec!["token"],
        ),
        (
            "/api/v1/auth/password-reset/confirm",
            json!({"token": "x"}),
            vec!["password"],
        ),
        (
            "/api/v1/auth/password-reset",
            json!({"email": ["ada@example.com"]}),
            vec!["email"],
        ),
        (
            "/api/v1/auth/password-reset",
            json!({"email": format!("{}@example.com", "a".repeat(10_000))}),
            vec!["email"],
        ),
    ];
    for (path, body, fields) in cases {
        let r = post(&app, path, &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            fields,
            "{path} {body}"
        );
    }
    let r = post(&app, "/api/v1/auth/password-reset/confirm", &json!("token")).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
}

#[tokio::test]
async fn password_reset_is_rate_limited_like_login() {
    let (app, _sink) = mail_app(|a| a.login_per_account_address = 2).await;
    ask_reset(&app, "ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    let r = post(
        &app,
        "/api/v1/auth/password-reset",
        &json!({"email": "ada@example.com"}),
    )
    .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

async fn ask_email_change(
    app: &TestApp,
    access: Option<&str>,
    email: &str,
    password: &str,
) -> crate::helpers::Resp {
    let body = json!({"email": email, "password": password});
    app.call_as(
        Method::POST,
        "/api/v1/auth/email-change",
        access,
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn an_email_change_is_confirmed_at_the_new_address_and_told_to_the_old() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let old = app.login_ok("ada@example.com", PASSWORD).await;
    assert_pending(
        &ask_email_change(&app, Some(&old.access), "ada@lovelace.example", PASSWORD).await,
    );
    let message = mail_to(&sink, "ada@lovelace.example").await;
    let token = message.token().expect("a token line");
    assert!(
        message
            .text()
            .contains(&format!("{PUBLIC_URL}/confirm-email-change?token={token}"))
    );
    let notice = mail_to(&sink, "ada@example.com").await;
    assert_eq!(notice.token(), None, "{}", notice.data);
    // Nothing changed before the confirmation.
    app.me(Some(&old.access)).await.data(StatusCode::OK);
    let r = post(
        &app,
        "/api/v1/auth/email-change/confirm",
        &json!({"token": token}),
    )
    .await;
    let user = r.data(StatusCode::OK);
    assert_eq!(user["email"], json!("ada@lovelace.example"));
    assert_eq!(user["email_verified"], json!(true));
    let r = post(
        &app,
        "/api/v1/auth/email-change/confirm",
        &json!({"token": token}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_error(
        &app.refresh(&old.refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &app.login("ada@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    app.login_ok("ada@lovelace.example", PASSWORD).await;
}

#[tokio::test]
async fn an_email_change_to_a_taken_address_answers_the_same_and_changes_nothing() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    app.user("grace@example.com").await;
    let ada = app.login_ok("ada@example.com", PASSWORD).await;
    let taken = ask_email_change(&app, Some(&ada.access), "grace@example.com", PASSWORD).await;
    let fresh = ask_email_change(&app, Some(&ada.access), "fresh@example.com", PASSWORD).await;
    assert_eq!(taken.raw, fresh.raw);
    assert_pending(&taken);
    let notice = mail_to(&sink, "grace@example.com").await;
    assert_eq!(
        notice.token(),
        None,
        "the owner gets a notice, not a token: {}",
        notice.data
    );
    mail_to(&sink, "fresh@example.com")
        .await
        .token()
        .expect("a token");
}

#[tokio::test]
async fn an_email_change_whose_address_got_an_account_meanwhile_is_a_clean_409() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let ada = app.login_ok("ada@example.com", PASSWORD).await;
    let r = ask_email_change(&app, Some(&ada.access), "new@example.com", PASSWORD).await;
    assert_pending(&r);
    let token = token_to(&sink, "new@example.com").await;
    // Someone signs the new address up before Ada confirms.
    let (grace, _) = app.user("NEW@example.com").await;
    let audit_len = || async {
        let all = app
            .state
            .store()
            .audit_list(0, 10_000)
            .await
            .expect("audit");
        all.len()
    };
    let audit_before = audit_len().await;
    let body = json!({"token": token});
    let confirm = || post(&app, "/api/v1/auth/email-change/confirm", &body);
    let r = confirm().await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    // Nothing written: Ada keeps her address and session, nothing audited.
    let me = app.me(Some(&ada.access)).await;
    assert_eq!(me.data(StatusCode::OK)["email"], json!("ada@example.com"));
    app.refresh(&ada.refresh).await.data(StatusCode::OK);
    assert_eq!(audit_len().await, audit_before);
    // The token was not spent either: once the address is free again it still works.
    let ctx = plinth_store::WriteCtx::new(plinth_core::Principal::local_admin(), "test");
    app.state
        .store()
        .delete_user(&ctx, grace.id)
        .await
        .expect("deleted");
    let r = confirm().await;
    assert_eq!(r.data(StatusCode::OK)["email"], json!("new@example.com"));
}

/// Whoever learnt Ada's password asks to move her account to their own address; Ada gets
/// the notice and resets her password. The pending change must die with the old password.
#[tokio::test]
async fn a_password_reset_voids_a_pending_email_change() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let thief = app.login_ok("ada@example.com", PASSWORD).await;
    let r = ask_email_change(&app, Some(&thief.access), "thief@example.com", PASSWORD).await;
    assert_pending(&r);
    let stolen = token_to(&sink, "thief@example.com").await;
    mail_to(&sink, "ada@example.com").await; // the notice
    ask_reset(&app, "ada@example.com").await;
    let reset = token_to(&sink, "ada@example.com").await;
    confirm_reset(&app, &reset, NEW_PASSWORD)
        .await
        .data(StatusCode::OK);
    let r = post(
        &app,
        "/api/v1/auth/email-change/confirm",
        &json!({"token": stolen}),
    )
    .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["token"]
    );
    app.login_ok("ada@example.com", NEW_PASSWORD).await;
}

#[tokio::test]
async fn an_email_change_needs_the_account_and_its_password() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    let ada = app.login_ok("ada@example.com", PASSWORD).await;
    let r = ask_email_change(&app, None, "new@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = ask_email_change(&app, Some("not-a-token"), "new@example.com", PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = ask_email_change(
        &app,
        Some(&ada.access),
        "new@example.com",
        "a wrong password here",
    )
    .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["password"]
    );
    let r = ask_email_change(&app, Some(&ada.access), "ADA@example.com", PASSWORD).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["email"]
    );
    let body = json!({"email": "new@example.com", "password": PASSWORD, "role": "admin"});
    let r = app
        .call_as(
            Method::POST,
            "/api/v1/auth/email-change",
            Some(&ada.access),
            Some(&body),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["role"]
    );
    no_mail_to(&sink, "new@example.com").await;
}

#[tokio::test]
async fn a_token_of_another_user_changes_only_its_own_account() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    app.user("grace@example.com").await;
    let grace = app.login_ok("grace@example.com", PASSWORD).await;
    ask_reset(&app, "ada@example.com").await;
    let adas = token_to(&sink, "ada@example.com").await;
    // Grace, signed in, spends Ada's token: it resets Ada's password, never Grace's, and
    // Grace's session goes on.
    let r = app
        .call_as(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Some(&grace.access),
            Some(&json!({"token": adas, "password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)["email"], json!("ada@example.com"));
    app.login_ok("grace@example.com", PASSWORD).await;
    app.me(Some(&grace.access)).await.data(StatusCode::OK);
}

/// Waits up to 10 s for the mailer's `outcome` count to reach `n`.
async fn mail_count(app: &TestApp, outcome: &'static str, n: u64) {
    let counters = app.state.mailer().counters();
    for _ in 0..200 {
        if counters.get(outcome) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{outcome}: {} messages, not {n}", counters.get(outcome));
}

#[tokio::test]
async fn a_relay_that_is_down_changes_no_answer_and_is_counted() {
    // A port nothing listens on: the sink is started and dropped.
    let (app, sink) = mail_app(|_| {}).await;
    let port = sink.port();
    drop(sink);
    drop(app);
    let (app, _live) = mail_app(|a| {
        a.mail = Some(
            plinth_server::mail::MailConfig::parse(
                &format!("smtp://127.0.0.1:{port}"),
                "a@example.com",
            )
            .expect("mail settings"),
        );
    })
    .await;
    app.user("ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    mail_count(&app, "failed", 1).await;
    assert_eq!(app.state.mailer().counters().get("sent"), 0);
    let metrics = app.call_as(Method::GET, "/metrics", None, None).await;
    let text = String::from_utf8_lossy(&metrics.raw);
    assert!(
        text.contains("plinth_mail_messages_total{outcome=\"failed\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn sent_messages_are_counted() {
    let (app, sink) = mail_app(|_| {}).await;
    app.user("ada@example.com").await;
    ask_reset(&app, "ada@example.com").await;
    mail_to(&sink, "ada@example.com").await;
    mail_count(&app, "sent", 1).await;
}

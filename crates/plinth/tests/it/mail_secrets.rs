//! The mail flows through the real binary and a real SMTP server: sign-up (fresh and
//! taken), verification, password reset and email change, with every token read from the
//! messages sent. No token, new password or signed-up address reaches the logs, at `info`
//! or at `trace`.

use crate::helpers::{Proc, Server, TestDir, Tokens, bearer_client, log_field};
use plinth_testkit::smtp::SmtpSink;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn token_to(sink: &SmtpSink, to: &str) -> String {
    let m = sink.next_to(to, WAIT).await.expect("a message");
    m.token()
        .unwrap_or_else(|| panic!("no token line: {}", m.data))
}

async fn flows(level: &str) {
    let sink = SmtpSink::start().await;
    let dir = TestDir::new();
    let smtp_url = sink.url();
    let env = [
        ("LOG_LEVEL", level),
        ("PLINTH_AUTH_SIGNUP", "open"),
        ("PLINTH_SMTP_URL", smtp_url.as_str()),
        ("PLINTH_SMTP_FROM", "Plinth <no-reply@plinth.test>"),
        ("PLINTH_PUBLIC_URL", "http://app.plinth.test"),
    ];
    let server = Server::start_with(&dir, &[], &env).await;
    let (guest, url) = (server.guest(), |p: &str| server.url(p));
    let post = |path: &str, body: serde_json::Value| guest.post(url(path)).json(&body);
    let (email, password) = ("carol@plinth.test", "carol-climbs-cliffs-42");
    let mut secrets = vec![password.to_owned()];

    let r = server
        .send(post(
            "/api/v1/auth/signup",
            json!({"email": email, "password": password}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let verify = token_to(&sink, email).await;
    let r = server
        .send(post(
            "/api/v1/auth/signup",
            json!({"email": email, "password": "another-passphrase-9"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    sink.next_to(email, WAIT)
        .await
        .expect("the notice to the owner");
    let r = server
        .send(post("/api/v1/auth/verify-email", json!({"token": verify})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    secrets.push(verify);

    let r = server
        .send(post("/api/v1/auth/password-reset", json!({"email": email})))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let reset = token_to(&sink, email).await;
    let new_password = "carol-crosses-canyons-7";
    let r = server
        .send(post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": reset, "password": new_password}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    secrets.extend([reset, new_password.to_owned()]);

    let tokens = Tokens::from_reply(&server.login(email, new_password).await);
    let new_email = "carol.c@plinth.test";
    let r = server
        .send(
            bearer_client(&tokens.access_token)
                .post(url("/api/v1/auth/email-change"))
                .json(&json!({"email": new_email, "password": new_password})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let change = token_to(&sink, new_email).await;
    let r = server
        .send(post(
            "/api/v1/auth/email-change/confirm",
            json!({"token": change}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["email"], json!(new_email));
    secrets.push(change);

    let proc: Proc = server.stop().await;
    let lines = proc.stdout_lines().into_iter().chain(proc.stderr_lines());
    for line in lines {
        for secret in secrets.iter().map(String::as_str).chain([email, new_email]) {
            assert!(!line.contains(secret), "{secret:?} is in the logs: {line}");
        }
    }
    for event in [
        "signup",
        "signup_taken",
        "email_verified",
        "password_reset",
        "email_changed",
    ] {
        assert!(
            proc.logs()
                .iter()
                .any(|l| log_field(l, "event") == Some(&json!(event))),
            "no {event} event at {level}\n{}",
            proc.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_tokens_never_reach_the_logs() {
    flows("info").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_tokens_never_reach_the_logs_at_trace() {
    flows("trace").await;
}

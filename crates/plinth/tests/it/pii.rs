//! PII never leaks: a whole workflow at `LOG_LEVEL=debug`, the PostgreSQL driver's debug
//! asked for too (Plinth holds it at info: it would log statement parameters) (logins good and bad, a refresh
//! and its replay, a user made, a model with pii fields written, filtered on and refused,
//! an API key made, used and revoked, a password change, a logout), after which no line the
//! process wrote and no error answer holds an email, a pii value, a password, a token or a
//! key. Both engines (`PLINTH_TEST_ENGINE`).

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Reply, Server, TestDir, Tokens, bearer_client};
use reqwest::StatusCode;
use serde_json::json;

const PATIENT: &str = r#"
[[models]]
name = "patient"

[[models.fields]]
name = "ssn"
type = "string"
pii = true
unique = true
max_length = 11

[[models.fields]]
name = "notes"
type = "text"
pii = true
"#;

/// A pii value, a second one, one too long for its field, and a note.
const SSN: &str = "123-45-6789";
const SSN_2: &str = "987-65-4321";
const SSN_LONG: &str = "555-55-55555-5";
const NOTE: &str = "allergic-to-penicillin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_and_secrets_never_reach_the_logs_or_error_answers() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let server =
        Server::start_with(&dir, &[], &[("LOG_LEVEL", "debug,tokio_postgres=debug")]).await;
    let (guest, url) = (server.guest(), |p: &str| server.url(p));
    // Every secret and pii value of the session, and every error answer.
    let mut secret: Vec<String> = vec![
        ADMIN_EMAIL.to_owned(),
        ADMIN_PASSWORD.to_owned(),
        SSN.to_owned(),
        SSN_2.to_owned(),
        SSN_LONG.to_owned(),
        NOTE.to_owned(),
    ];
    let mut errors: Vec<(String, Reply)> = Vec::new();
    let tokens = |t: &Tokens, secret: &mut Vec<String>| {
        secret.push(t.access_token.clone());
        secret.push(t.refresh_token.clone());
    };
    tokens(server.tokens(), &mut secret);

    // Admin login; a user made; the user's good and bad logins.
    let admin = Tokens::from_reply(&server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    tokens(&admin, &mut secret);
    let admin_client = bearer_client(&admin.access_token);
    let (ann_email, ann_password) = ("ann.pii@plinth.test", "ann-keeps-bees-0042");
    secret.extend([ann_email.to_owned(), ann_password.to_owned()]);
    let made = server
        .send(admin_client.post(url("/api/v1/users")).json(&json!({
            "email": ann_email, "password": ann_password
        })))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let taken = server
        .send(admin_client.post(url("/api/v1/users")).json(&json!({
            "email": ann_email.to_uppercase(), "password": ann_password
        })))
        .await;
    taken.assert_error(StatusCode::CONFLICT, "CONFLICT");
    errors.push(("taken email".to_owned(), taken));
    let bad_email = "not-an-email-but-private";
    secret.push(bad_email.to_owned());
    let invalid = server
        .send(admin_client.post(url("/api/v1/users")).json(&json!({
            "email": bad_email, "password": ann_password
        })))
        .await;
    invalid.assert_error(StatusCode::BAD_REQUEST, "INVALID_INPUT");
    errors.push(("invalid email".to_owned(), invalid));
    let ann = Tokens::from_reply(&server.login(ann_email, ann_password).await);
    tokens(&ann, &mut secret);
    let wrong = "a-wrong-guess-for-ann";
    secret.push(wrong.to_owned());
    let failed = server.login(ann_email, wrong).await;
    failed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    errors.push(("failed login".to_owned(), failed));
    let stranger = "stranger.pii@plinth.test";
    secret.push(stranger.to_owned());
    let unknown = server.login(stranger, wrong).await;
    unknown.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    errors.push(("unknown email".to_owned(), unknown));

    // A refresh, then its spent token again.
    let refresh = |token: &str| {
        guest
            .post(url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
    };
    let refreshed = Tokens::from_reply(&server.send(refresh(&ann.refresh_token)).await);
    tokens(&refreshed, &mut secret);
    let replayed = server.send(refresh(&ann.refresh_token)).await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    errors.push(("replayed refresh".to_owned(), replayed));
    // The reuse ended that session, its access tokens too: Ann signs in again.
    let refreshed = Tokens::from_reply(&server.login(ann_email, ann_password).await);
    tokens(&refreshed, &mut secret);

    // The pii model: create, update, an equality filter, a taken value, a too-long value.
    let created = server
        .send(
            admin_client
                .post(url("/api/v1/patient"))
                .json(&json!({"name": "p1", "ssn": SSN, "notes": NOTE})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();
    let updated = server
        .send(
            admin_client
                .patch(url(&format!("/api/v1/patient/{id}")))
                .json(&json!({"ssn": SSN_2})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let found = server
        .send(admin_client.get(url(&format!("/api/v1/patient?ssn={SSN_2}"))))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(found.body["data"].as_array().map(Vec::len), Some(1));
    let by_email = server
        .send(admin_client.get(url(&format!(
            "/api/v1/patient?notes[eq]={NOTE}&email={ann_email}"
        ))))
        .await;
    by_email.assert_error(StatusCode::BAD_REQUEST, "INVALID_INPUT");
    errors.push(("unknown filter with pii values".to_owned(), by_email));
    let dup = server
        .send(
            admin_client
                .post(url("/api/v1/patient"))
                .json(&json!({"name": "p2", "ssn": SSN_2})),
        )
        .await;
    dup.assert_error(StatusCode::CONFLICT, "CONFLICT");
    errors.push(("taken pii value".to_owned(), dup));
    let long = server
        .send(
            admin_client
                .post(url("/api/v1/patient"))
                .json(&json!({"name": "p3", "ssn": SSN_LONG})),
        )
        .await;
    long.assert_error(StatusCode::BAD_REQUEST, "INVALID_INPUT");
    errors.push(("too-long pii value".to_owned(), long));

    // An API key: made, used, revoked, refused.
    let key = server
        .send(
            bearer_client(&refreshed.access_token)
                .post(url("/api/v1/auth/api-keys"))
                .json(&json!({"name": "ci"})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let (key_id, key) = (
        key.body["data"]["id"].as_str().expect("id").to_owned(),
        key.body["data"]["key"].as_str().expect("key").to_owned(),
    );
    secret.push(key.clone());
    let used = server
        .send(bearer_client(&key).get(url("/api/v1/auth/me")))
        .await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.text);
    let revoked = server
        .send(
            bearer_client(&refreshed.access_token)
                .delete(url(&format!("/api/v1/auth/api-keys/{key_id}"))),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let refused = server
        .send(bearer_client(&key).get(url("/api/v1/auth/me")))
        .await;
    refused.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    errors.push(("revoked key".to_owned(), refused));

    // A password change (one refused first), then a logout.
    let new_password = "ann-moves-hives-7731";
    secret.push(new_password.to_owned());
    let me = bearer_client(&refreshed.access_token);
    let bad_change = server
        .send(me.patch(url("/api/v1/auth/me")).json(&json!({
            "current_password": wrong, "new_password": new_password
        })))
        .await;
    bad_change.assert_error(StatusCode::BAD_REQUEST, "INVALID_INPUT");
    errors.push(("wrong current password".to_owned(), bad_change));
    let changed = server
        .send(me.patch(url("/api/v1/auth/me")).json(&json!({
            "current_password": ann_password, "new_password": new_password
        })))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let last = Tokens::from_reply(&server.login(ann_email, new_password).await);
    tokens(&last, &mut secret);
    let out = server
        .send(
            guest
                .post(url("/api/v1/auth/logout"))
                .json(&json!({"refresh_token": last.refresh_token})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);

    let proc = server.stop().await;
    let lines: Vec<String> = proc
        .stdout_lines()
        .into_iter()
        .chain(proc.stderr_lines())
        .collect();
    // The capture saw the session: its access lines and security events are there.
    for wanted in [
        "plinth::access",
        "login_failed",
        "refresh_token_reuse",
        "api_key_revoked",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(wanted)),
            "no {wanted} in the logs\n{}",
            proc.describe()
        );
    }
    for value in &secret {
        for line in &lines {
            assert!(
                !line.contains(value.as_str()),
                "{value} is in the logs: {line}"
            );
        }
        for (what, r) in &errors {
            assert!(
                !r.text.contains(value.as_str()),
                "{value} is in the {what} answer: {}",
                r.text
            );
        }
    }
    for line in &lines {
        assert!(!line.contains("$argon2"), "a hash in the logs: {line}");
    }
}

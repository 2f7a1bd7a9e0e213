//! Secret hygiene of a whole session: passwords, tokens, API keys and hashes never reach
//! the logs, nor any answer but the one that hands them out.

use crate::accounts::{USER_FIELDS, keys_of, line_with};
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Proc, Reply, Server, TestDir, Tokens, bearer_client, log_field,
};
use reqwest::StatusCode;
use serde_json::json;

/// Every secret of a session and what each answer may show.
#[derive(Debug, Default)]
struct Ledger {
    /// (label, value) of every secret seen.
    secrets: Vec<(String, String)>,
    /// (label, body, the secrets this answer is allowed to carry).
    replies: Vec<(String, String, Vec<String>)>,
}

impl Ledger {
    fn secret(&mut self, label: &str, value: &str) {
        assert!(value.len() >= 12, "{label} is not a secret: {value:?}");
        self.secrets.push((label.to_owned(), value.to_owned()));
    }

    fn tokens(&mut self, label: &str, tokens: &Tokens) {
        self.secret(&format!("{label} access token"), &tokens.access_token);
        self.secret(&format!("{label} refresh token"), &tokens.refresh_token);
    }

    /// Records an answer that may carry only `allowed`.
    fn reply(&mut self, label: &str, r: &Reply, allowed: &[&str]) {
        self.replies.push((
            label.to_owned(),
            r.text.clone(),
            allowed.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }

    /// No answer carries a secret it may not, nor a password hash.
    fn check_replies(&self) {
        for (label, body, allowed) in &self.replies {
            assert!(!body.contains("$argon2"), "{label} shows a hash: {body}");
            assert!(
                !body.contains("password_hash"),
                "{label} shows a hash field: {body}"
            );
            for (what, secret) in &self.secrets {
                assert!(
                    allowed.contains(secret) || !body.contains(secret.as_str()),
                    "{label} shows the {what}: {body}"
                );
            }
        }
    }

    /// No line the process wrote carries a secret, a hash or any of `also`.
    fn check_output(&self, proc: &Proc, also: &[(&str, &str)]) {
        let lines = proc.stdout_lines().into_iter().chain(proc.stderr_lines());
        for line in lines {
            assert!(!line.contains("$argon2"), "a hash in the logs: {line}");
            let named = self
                .secrets
                .iter()
                .map(|(l, s)| (l.as_str(), s.as_str()))
                .chain(also.iter().copied());
            for (what, secret) in named {
                assert!(!line.contains(secret), "the {what} is in the logs: {line}");
            }
        }
    }
}

/// A whole session: login, refresh (and a replayed refresh token), a user made by the
/// admin, an API key made and used, a password change, a failed login and a logout.
/// Afterwards no log line holds a password, a token, a key or a hash, and no answer holds
/// one except where the contract returns it.
async fn session(level: &str) {
    let dir = TestDir::new();
    // An alert webhook whose URL holds a token, with a signing secret: neither is shown.
    let (hook_url, hook_secret) = ("http://127.0.0.1:9/hooks/t0ken-in-url", "webhook-s3cret");
    let env = [
        ("LOG_LEVEL", level),
        ("PLINTH_ALERTS_WEBHOOK_URL", hook_url),
        ("PLINTH_ALERTS_WEBHOOK_SECRET", hook_secret),
    ];
    let server = Server::start_with(&dir, &[], &env).await;
    let (guest, url) = (server.guest(), |p: &str| server.url(p));
    let mut ledger = Ledger::default();
    ledger.secret("admin password", ADMIN_PASSWORD);
    ledger.secret("alert webhook URL's token", "t0ken-in-url");
    ledger.secret("alert webhook secret", hook_secret);
    ledger.tokens("harness", server.tokens());

    let login = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = Tokens::from_reply(&login);
    ledger.tokens("first", &first);
    ledger.reply(
        "login",
        &login,
        &[&first.access_token, &first.refresh_token],
    );

    let refresh = |token: &str| {
        guest
            .post(url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
    };
    let refreshed = server.send(refresh(&first.refresh_token)).await;
    let second = Tokens::from_reply(&refreshed);
    ledger.tokens("refreshed", &second);
    ledger.reply(
        "refresh",
        &refreshed,
        &[&second.access_token, &second.refresh_token],
    );
    assert_ne!(second.refresh_token, first.refresh_token, "refresh rotates");
    // The spent token again: refused, and its family (the new token too) revoked.
    let replayed = server.send(refresh(&first.refresh_token)).await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("replayed refresh", &replayed, &[]);
    let revoked = server.send(refresh(&second.refresh_token)).await;
    revoked.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh of a revoked family", &revoked, &[]);

    // The reuse ended that session, its access tokens too: sign in again.
    let relogin = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let again = Tokens::from_reply(&relogin);
    ledger.tokens("after the reuse", &again);
    ledger.reply(
        "login after the reuse",
        &relogin,
        &[&again.access_token, &again.refresh_token],
    );
    let admin = bearer_client(&again.access_token);
    let bob_password = "bob-builds-bridges-42";
    ledger.secret("bob's password", bob_password);
    let bob = server
        .send(admin.post(url("/api/v1/users")).json(&json!({
            "email": "bob@plinth.test", "password": bob_password, "role": "user"
        })))
        .await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    assert_eq!(keys_of(&bob.body["data"]), USER_FIELDS, "{}", bob.text);
    ledger.reply("user create", &bob, &[]);
    let bob_id = bob.body["data"]["id"].as_str().expect("id").to_owned();

    let made = server
        .send(
            admin
                .post(url("/api/v1/auth/api-keys"))
                .json(&json!({"name": "ci"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let key = made.body["data"]["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    let prefix = made.body["data"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_owned();
    assert!(key.starts_with(&prefix), "{key} / {prefix}");
    assert!(key.len() > prefix.len() + 16, "{key}");
    ledger.secret("API key", &key);
    ledger.reply("API key create", &made, &[&key]);
    let key_id = made.body["data"]["id"].as_str().expect("id").to_owned();
    let listed = server.send(admin.get(url("/api/v1/auth/api-keys"))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(listed.text.contains(&prefix), "{}", listed.text);
    ledger.reply("API key list", &listed, &[]);
    let one = server
        .send(admin.get(url(&format!("/api/v1/auth/api-keys/{key_id}"))))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    ledger.reply("API key read", &one, &[]);

    // The key at work, both ways it may be sent.
    let by_key = server
        .send(
            bearer_client(&key)
                .post(url("/api/v1/resource"))
                .json(&json!({"name": "made-by-key"})),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::CREATED, "{}", by_key.text);
    ledger.reply("create with the key", &by_key, &[]);
    let record = by_key.body["data"]["id"].as_str().expect("id").to_owned();
    let read = server
        .send(
            guest
                .get(url(&format!("/api/v1/resource/{record}")))
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    ledger.reply("read with X-API-Key", &read, &[]);

    // Stream tickets, from the key and from an access token, travel in URLs: never logged.
    let streaming = Tokens::from_reply(&server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    ledger.tokens("streaming", &streaming);
    for (label, credential) in [("key", &key), ("token", &streaming.access_token)] {
        let made = server
            .send(bearer_client(credential).post(url("/api/v1/events/ticket")))
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
        let ticket = made.body["data"]["ticket"]
            .as_str()
            .expect("a ticket")
            .to_owned();
        ledger.secret(&format!("{label}'s stream ticket"), &ticket);
        ledger.reply("ticket", &made, &[&ticket]);
        for path in [
            format!("/api/v1/events?models=resource&ticket={ticket}"),
            format!("/api/v1/resource/events?ticket={ticket}&after=0"),
        ] {
            // The stream opens; its first event (a replayed change, or `ready`) is read,
            // then it is dropped.
            let mut res = guest.get(url(&path)).send().await.expect("a stream");
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let first = tokio::time::timeout(std::time::Duration::from_secs(15), res.chunk())
                .await
                .expect("the stream's first event")
                .expect("read")
                .expect("a chunk");
            let first = String::from_utf8_lossy(&first);
            assert!(first.contains("\nevent: "), "{path}: {first}");
        }
        let r = server
            .send(guest.get(url(&format!("/api/v1/resource?ticket={ticket}"))))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "INVALID_INPUT");
        ledger.reply("a list with a ticket", &r, &[]);
        let as_bearer = server
            .send(bearer_client(&ticket).get(url("/api/v1/auth/me")))
            .await;
        as_bearer.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        ledger.reply("a ticket as a Bearer credential", &as_bearer, &[]);
    }

    // A password change ends the sessions made with the old one.
    let third = Tokens::from_reply(&server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    ledger.tokens("third", &third);
    let new_password = "a-brand-new-admin-passphrase";
    ledger.secret("new admin password", new_password);
    let changed = server
        .send(admin.patch(url("/api/v1/auth/me")).json(&json!({
            "current_password": ADMIN_PASSWORD, "new_password": new_password
        })))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(
        keys_of(&changed.body["data"]),
        USER_FIELDS,
        "{}",
        changed.text
    );
    ledger.reply("password change", &changed, &[]);
    let stale = server.send(refresh(&third.refresh_token)).await;
    stale.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh after a password change", &stale, &[]);
    let old = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    old.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("login with the old password", &old, &[]);
    let wrong_password = "a-guess-that-is-wrong";
    ledger.secret("wrong password", wrong_password);
    let wrong = server.login(ADMIN_EMAIL, wrong_password).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("failed login", &wrong, &[]);
    let login = server.login(ADMIN_EMAIL, new_password).await;
    let fourth = Tokens::from_reply(&login);
    ledger.tokens("fourth", &fourth);
    ledger.reply(
        "login with the new password",
        &login,
        &[&fourth.access_token, &fourth.refresh_token],
    );

    let admin = bearer_client(&fourth.access_token);
    for path in [
        "/api/v1/auth/me".to_owned(),
        "/api/v1/users".to_owned(),
        format!("/api/v1/users/{bob_id}"),
    ] {
        let r = server.send(admin.get(url(&path))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        ledger.reply(&path, &r, &[]);
    }

    // The key is revoked before the logout, which ends this session's access token too.
    let revoke = server
        .send(admin.delete(url(&format!("/api/v1/auth/api-keys/{key_id}"))))
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text);
    let logout = server
        .send(
            guest
                .post(url("/api/v1/auth/logout"))
                .json(&json!({"refresh_token": fourth.refresh_token})),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    let after = server.send(refresh(&fourth.refresh_token)).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh after logout", &after, &[]);
    let refused_key = server
        .send(bearer_client(&key).get(url("/api/v1/auth/me")))
        .await;
    refused_key.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("revoked key", &refused_key, &[]);

    let proc = server.stop().await;
    ledger.check_replies();
    let signing_key = std::fs::read_to_string(dir.data_dir().join("jwt.key"))
        .expect("the development signing key");
    ledger.check_output(
        &proc,
        &[
            ("signing key", signing_key.trim()),
            ("admin email", ADMIN_EMAIL),
            ("bob's email", "bob@plinth.test"),
        ],
    );
    // The capture saw the session: the security events are there, naming the key by prefix.
    let made = line_with(&proc, "API key created");
    assert_eq!(log_field(&made, "key"), Some(&json!(prefix)), "{made}");
    for event in [
        "login",
        "login_failed",
        "refresh_token_reuse",
        "user_created",
        "password_changed",
        "api_key_revoked",
    ] {
        assert!(
            proc.logs()
                .iter()
                .any(|l| log_field(l, "event") == Some(&json!(event))),
            "no {event} event at LOG_LEVEL={level}\n{}",
            proc.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_or_other_answers() {
    session("info").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_at_trace() {
    session("trace").await;
}

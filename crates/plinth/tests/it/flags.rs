//! Feature flags across a restart of the real binary: the same database gives every
//! account the same answers afterwards (the rollout's hash has no seed), and they are the
//! answers `plinth_core::flags` computes for those accounts.

use crate::helpers::{Server, TestDir, bearer_client};
use plinth_core::flags::{FlagKey, bucket};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "a flag tester's long password";

/// Each account's answer for `key` from the server, by logging in as it.
async fn answers(server: &Server, emails: &[String], key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for email in emails {
        let r = server.login(email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let token = r.body["data"]["access_token"].as_str().expect("a token");
        let req = bearer_client(token).get(server.url("/api/v1/flags/evaluate"));
        let r = server.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        out.push(r.body["data"][key].clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gives_the_same_answers() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let mut emails = Vec::new();
    let mut ids = Vec::new();
    for i in 0..6 {
        let email = format!("u{i}@example.com");
        let r = server
            .post(
                "/api/v1/users",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["data"]["id"].as_str().expect("an id").to_owned());
        emails.push(email);
    }
    let r = server
        .post(
            "/api/v1/flags",
            &json!({"key": "half", "enabled": true, "rollout": 50}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = FlagKey::parse("half").expect("a key");
    let expected: Vec<Value> = ids
        .iter()
        // On: `true`; off: left out of the answer.
        .map(|id| {
            if bucket(&key, id) < 5_000 {
                json!(true)
            } else {
                Value::Null
            }
        })
        .collect();
    let before = answers(&server, &emails, "half").await;
    assert_eq!(before, expected);
    server.stop().await;

    let server = Server::start(&dir).await;
    assert_eq!(answers(&server, &emails, "half").await, before);
    let r = server.get("/api/v1/flags/half").await;
    assert_eq!(r.body["data"]["version"], 1, "{}", r.text);
    server.stop().await;
}

//! The audit trail as the server writes it: each record write over HTTP appends one entry
//! naming the caller (an access token's user, or an API key and its owner), the request id
//! and the client's address; so does each auth and account event, with its target account
//! or key, and never a secret or an email; a throttled client is audited once per window.
//! How clients read it: `audit_api.rs`.

use crate::helpers::{
    NEW_PASSWORD, PASSWORD, Resp, TestApp, WRONG_PASSWORD, assert_error, id_of, test_auth_config,
};
use plinth_server::auth::ManualClock;
use plinth_store::{AuditEntry, AuditVerdict};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_write_over_http_is_audited_with_its_caller_request_and_address() {
    let app = TestApp::spawn().await;
    let key = app
        .create_key(&app.admin_token, &json!({"name": "ci"}))
        .await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let created = app
        .send(
            app.request(Method::POST, "/api/v1/resource")
                .json(&json!({"name": "a"})),
        )
        .await;
    let id = id_of(created.data(StatusCode::CREATED));
    let deleted = app
        .send(app.request_as(
            Method::DELETE,
            &format!("/api/v1/resource/{id}"),
            Some(&key),
        ))
        .await;
    deleted.data(StatusCode::OK);

    let store = app.state.store();
    let everything = store.audit_list(0, 100).await.expect("list the audit");
    let entries: Vec<_> = everything
        .iter()
        .filter(|e| e.action.starts_with("record."))
        .collect();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor_kind.as_str(),
                e.actor_id.map(|u| u.to_string()),
                e.actor_label.as_str(),
                e.client_addr.as_deref(),
                e.record_id.map(|r| r.to_string()),
            )
        })
        .collect();
    let admin = Some(app.admin_id.clone());
    let (addr, rec) = (Some("127.0.0.1"), Some(id.clone()));
    assert_eq!(
        summary,
        [
            (
                "record.create",
                "user",
                admin.clone(),
                "admin",
                addr,
                rec.clone()
            ),
            ("record.delete", "api_key", admin, "admin", addr, rec),
        ]
    );
    assert_eq!(entries[0].request_id, created.request_id());
    assert_eq!(entries[1].request_id, deleted.request_id());
    assert_eq!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: everything.len() as u64
        }
    );
}

async fn entries(app: &TestApp) -> Vec<AuditEntry> {
    app.state
        .store()
        .audit_list(0, 1000)
        .await
        .expect("list the audit")
}

/// The entries after the first `skip`, as `(action, actor kind, actor id, target)`.
async fn events_after(
    app: &TestApp,
    skip: usize,
) -> Vec<(String, String, Option<String>, Option<String>)> {
    entries(app)
        .await
        .iter()
        .skip(skip)
        .map(|e| {
            (
                e.action.clone(),
                e.actor_kind.clone(),
                e.actor_id.map(|u| u.to_string()),
                e.record_id.map(|r| r.to_string()),
            )
        })
        .collect()
}

fn ev(
    action: &str,
    kind: &str,
    actor: Option<&str>,
    target: Option<&str>,
) -> (String, String, Option<String>, Option<String>) {
    (
        action.to_owned(),
        kind.to_owned(),
        actor.map(str::to_owned),
        target.map(str::to_owned),
    )
}

fn tokens(r: &Resp) -> (String, String) {
    let d = r.data(StatusCode::OK);
    (
        d["access_token"].as_str().expect("access").to_owned(),
        d["refresh_token"].as_str().expect("refresh").to_owned(),
    )
}

#[tokio::test]
async fn auth_and_account_events_name_their_actor_target_and_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_id.clone();
    // Bob's own token from outside the sessions below (whose reuse ends the first login's
    // access token too).
    let (bob, bob_token) = app.user("bob@example.com").await;
    let bob_id = bob.id.to_string();
    let start = entries(&app).await.len();
    let (a, b) = (Some(admin.as_str()), Some(bob_id.as_str()));

    // Logins: one good, one wrong password, one unknown email.
    let ok = app.login("bob@example.com", PASSWORD).await;
    let (_, first_refresh) = tokens(&ok);
    let wrong = app.login("bob@example.com", WRONG_PASSWORD).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let nobody = app.login("nobody@example.com", WRONG_PASSWORD).await;
    assert_error(&nobody, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // A refresh (not audited), the spent token again (reuse), a new login and its logout.
    let (_, _second) = tokens(&app.refresh(&first_refresh).await);
    let reused = app.refresh(&first_refresh).await;
    assert_error(&reused, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let (_, third) = tokens(&app.login("bob@example.com", PASSWORD).await);
    let out = app.logout(&third).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // A key made and revoked by Bob; his own password change.
    let key = app.create_key(&bob_token, &json!({"name": "ci"})).await;
    let key_id = key.data(StatusCode::CREATED)["id"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&bob_token),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let changed = app
        .call_as(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(&bob_token),
            Some(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    changed.data(StatusCode::OK);
    // The admin makes Carol, changes her role and email, and deletes her.
    let made = app
        .send(
            app.request(Method::POST, "/api/v1/users")
                .json(&json!({"email": "carol@example.com", "password": PASSWORD})),
        )
        .await;
    let carol = made.data(StatusCode::CREATED)["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let c = Some(carol.as_str());
    let path = format!("/api/v1/users/{carol}");
    let promoted = app
        .send(
            app.request(Method::PATCH, &path)
                .json(&json!({"role": "admin"})),
        )
        .await;
    promoted.data(StatusCode::OK);
    let moved = app
        .send(
            app.request(Method::PATCH, &path)
                .json(&json!({"email": "carol.b@example.com"})),
        )
        .await;
    moved.data(StatusCode::OK);
    let gone = app.send(app.request(Method::DELETE, &path)).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);

    let k = Some(key_id.as_str());
    assert_eq!(
        events_after(&app, start).await,
        [
            ev("auth.login", "user", b, b),
            ev("auth.login_failed", "guest", None, b),
            ev("auth.login_failed", "guest", None, None),
            ev("auth.refresh_reuse", "guest", None, b),
            ev("auth.login", "user", b, b),
            ev("auth.logout", "user", b, b),
            ev("api_key.create", "user", b, k),
            ev("api_key.revoke", "user", b, k),
            ev("account.password_change", "user", b, b),
            ev("account.create", "user", a, c),
            ev("account.role_change", "user", a, c),
            ev("account.email_change", "user", a, c),
            ev("account.delete", "user", a, c),
        ]
    );
    let all = entries(&app).await;
    let mine = &all[start..];
    // Each entry carries its request's id and the client's address.
    assert_eq!(mine[0].request_id, ok.request_id());
    assert_eq!(mine[1].request_id, wrong.request_id());
    assert_eq!(mine[3].request_id, reused.request_id());
    assert_eq!(mine[5].request_id, out.request_id());
    assert_eq!(mine[12].request_id, gone.request_id());
    assert!(
        mine.iter()
            .all(|e| e.client_addr.as_deref() == Some("127.0.0.1"))
    );
    assert_eq!(mine[0].model.as_deref(), Some("_users"));
    assert_eq!(mine[6].model.as_deref(), Some("_api_keys"));
    // No password, token, key digest or email is kept.
    let text = format!("{all:?}");
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        "$argon2",
        first_refresh.as_str(),
        third.as_str(),
        bob_token.as_str(),
        "bob@",
        "nobody@",
        "carol@",
        "carol.b@",
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit trail");
    }
    assert_eq!(
        app.state.store().audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: all.len() as u64
        }
    );
}

#[tokio::test]
async fn refused_account_changes_are_not_audited() {
    let app = TestApp::spawn().await;
    let (bob, bob_token) = app.user("bob@example.com").await;
    let start = entries(&app).await.len();
    let path = format!("/api/v1/users/{}", bob.id);
    // Not an admin; no credential; a taken email; a stale version; the last admin demoted.
    let body = json!({"email": "eve@example.com", "password": PASSWORD});
    let as_bob = app
        .call_as(Method::POST, "/api/v1/users", Some(&bob_token), Some(&body))
        .await;
    assert_error(&as_bob, StatusCode::FORBIDDEN, "FORBIDDEN");
    let anon = app
        .call_as(Method::POST, "/api/v1/users", None, Some(&body))
        .await;
    assert_error(&anon, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let taken = json!({"email": "BOB@example.com", "password": PASSWORD});
    let taken = app
        .send(app.request(Method::POST, "/api/v1/users").json(&taken))
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "CONFLICT");
    let stale = app
        .send(
            app.request(Method::PATCH, &path)
                .header("if-match", "\"9\"")
                .json(&json!({"role": "admin"})),
        )
        .await;
    assert_error(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    let last = app
        .send(
            app.request(Method::PATCH, &format!("/api/v1/users/{}", app.admin_id))
                .json(&json!({"role": "user"})),
        )
        .await;
    assert_error(&last, StatusCode::CONFLICT, "CONFLICT");
    // Another user's key; a logout with a token that is not one.
    let key = app
        .create_key(&app.admin_token, &json!({"name": "k"}))
        .await;
    let key_id = key.data(StatusCode::CREATED)["id"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let after_key = entries(&app).await.len();
    let theirs = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&bob_token),
            None,
        )
        .await;
    assert_error(&theirs, StatusCode::NOT_FOUND, "NOT_FOUND");
    let bogus = app.logout("plr_not-a-token").await;
    assert_error(&bogus, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(after_key, start + 1, "only the key's creation");
    assert_eq!(
        entries(&app).await.len(),
        after_key,
        "a refusal was audited"
    );
}

#[tokio::test]
async fn a_throttled_client_is_audited_once_per_window() {
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    auth.login_per_account_address = 2;
    auth.login_window = Duration::from_secs(60);
    let app = TestApp::spawn_clocked(auth, &clock).await;
    let (bob, _) = app.user("bob@example.com").await;
    let start = entries(&app).await.len();
    let attempt = |email: &'static str| {
        let app = &app;
        async move { app.login(email, WRONG_PASSWORD).await }
    };
    for round in 0..2 {
        for i in 0..6 {
            let r = attempt("bob@example.com").await;
            let expected = if i < 2 {
                (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
            } else {
                (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
            };
            assert_error(&r, expected.0, expected.1);
        }
        // An unknown email is throttled alike, and names nobody.
        for _ in 0..4 {
            attempt("nobody@example.com").await;
        }
        let got = entries(&app).await;
        let throttled: Vec<&AuditEntry> = got[start..]
            .iter()
            .filter(|e| e.action == "auth.throttled")
            .collect();
        assert_eq!(throttled.len(), 2 * (round + 1), "once per window and key");
        let last_two = &throttled[throttled.len() - 2..];
        assert_eq!(last_two[0].record_id.map(|r| *r.as_uuid()), Some(bob.id));
        assert_eq!(last_two[1].record_id, None);
        for t in last_two {
            assert_eq!(t.actor_kind, "guest");
            assert_eq!(t.changes, json!({"limit": "account_address"}));
            assert_eq!(t.client_addr.as_deref(), Some("127.0.0.1"));
        }
        let failed = got[start..]
            .iter()
            .filter(|e| e.action == "auth.login_failed")
            .count();
        assert_eq!(failed, 4 * (round + 1), "only attempts that were checked");
        clock.advance(Duration::from_secs(61));
    }
    let text = format!("{:?}", entries(&app).await);
    assert!(!text.contains("nobody@"), "the email tried is not kept");
}

//! Mass assignment: fields the server owns (`id`, `owner_id`, `version`, timestamps,
//! `status=deleted`) and account fields a caller may not give itself (`role`, the hash)
//! are refused with 400 by every write, and nothing is written.

use crate::helpers::{TestApp, assert_error, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Bodies that try to set a server-owned value, with the field each must be refused on.
fn server_owned(victim: &str) -> Vec<(Value, &'static str)> {
    vec![
        (json!({"name": "x", "owner_id": victim}), "owner_id"),
        (json!({"name": "x", "owner_id": null}), "owner_id"),
        (json!({"name": "x", "version": 99}), "version"),
        (json!({"name": "x", "id": crate::helpers::MISSING_ID}), "id"),
        (
            json!({"name": "x", "created_at": "2000-01-01T00:00:00Z"}),
            "created_at",
        ),
        (
            json!({"name": "x", "updated_at": "2000-01-01T00:00:00Z"}),
            "updated_at",
        ),
        (json!({"name": "x", "status": "deleted"}), "status"),
    ]
}

#[tokio::test]
async fn creates_cannot_set_server_owned_fields() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user("a@example.com").await;
    for (body, field) in server_owned(&app.admin_id) {
        let r = app
            .call_as(Method::POST, "/api/v1/resource", Some(&token), Some(&body))
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{body}"
        );
        // Admins are held to the same rule.
        let r = app.create_resp("resource", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field]
        );
    }
    assert_eq!(
        app.count_all("resource").await,
        0,
        "a refused create wrote a record"
    );
}

#[tokio::test]
async fn updates_cannot_set_server_owned_fields() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("a@example.com").await;
    let record = app
        .create_as("resource", &token, &json!({"name": "mine"}))
        .await;
    assert_eq!(record["owner_id"], json!(user.id.to_string()));
    let path = format!("/api/v1/resource/{}", id_of(&record));
    for method in [Method::PUT, Method::PATCH] {
        for (body, field) in server_owned(&app.admin_id) {
            let r = app
                .call_as(method.clone(), &path, Some(&token), Some(&body))
                .await;
            let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
            assert_eq!(fields, [field], "{method} {body}");
        }
    }
    assert_eq!(
        app.get_ok("resource", &id_of(&record)).await,
        record,
        "a refused write wrote"
    );
    // Handing the record to someone else is no more possible for its owner than for B.
    let give = app
        .call_as(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"owner_id": app.admin_id})),
        )
        .await;
    assert_error(&give, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(
        app.get_ok("resource", &id_of(&record)).await["owner_id"],
        json!(user.id.to_string())
    );
}

#[tokio::test]
async fn a_user_cannot_raise_their_own_role_anywhere() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("a@example.com").await;
    let me = format!("/api/v1/users/{}", user.id);
    let attempts: [(Method, &str, Value, StatusCode); 4] = [
        (
            Method::PATCH,
            "/api/v1/auth/me",
            json!({"role": "admin"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/v1/auth/me",
            json!({"current_password": crate::helpers::PASSWORD, "new_password": crate::helpers::NEW_PASSWORD, "role": "admin"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            &me,
            json!({"role": "admin"}),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            "/api/v1/users",
            json!({"email": "me2@example.com", "password": crate::helpers::NEW_PASSWORD, "role": "admin"}),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (method, path, body, status) in attempts {
        let r = app
            .call_as(method.clone(), path, Some(&token), Some(&body))
            .await;
        let code = if status == StatusCode::FORBIDDEN {
            "FORBIDDEN"
        } else {
            "INVALID_INPUT"
        };
        let fields = assert_error(&r, status, code);
        if status == StatusCode::BAD_REQUEST {
            assert!(
                fields.contains(&"role".to_owned()),
                "{method} {path}: {fields:?}"
            );
        }
    }
    let now = app.me(Some(&token)).await;
    assert_eq!(now.data(StatusCode::OK)["role"], json!("user"));
    assert_eq!(
        now.body["data"]["version"],
        json!(1),
        "the account was written"
    );
    app.login_ok("a@example.com", crate::helpers::PASSWORD)
        .await;
    let users = app
        .call_as(
            Method::GET,
            "/api/v1/users?limit=200",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(
        users.data(StatusCode::OK).as_array().map(Vec::len),
        Some(2),
        "no account was made"
    );
}

#[tokio::test]
async fn account_bodies_cannot_carry_a_hash_or_server_fields() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user("a@example.com").await;
    let path = format!("/api/v1/users/{}", user.id);
    let bodies = [
        json!({"password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"}),
        json!({"id": crate::helpers::MISSING_ID}),
        json!({"version": 7}),
        json!({"created_at": "2000-01-01T00:00:00Z"}),
    ];
    for body in &bodies {
        let r = app.send(app.request(Method::PATCH, &path).json(body)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        let mut create = body.clone();
        create["email"] = json!("new@example.com");
        create["password"] = json!(crate::helpers::NEW_PASSWORD);
        let r = app
            .send(app.request(Method::POST, "/api/v1/users").json(&create))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let r = app.send(app.request(Method::GET, &path)).await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(1));
    app.login_ok("a@example.com", crate::helpers::PASSWORD)
        .await;
    let nobody = app
        .login("new@example.com", crate::helpers::NEW_PASSWORD)
        .await;
    assert_error(&nobody, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

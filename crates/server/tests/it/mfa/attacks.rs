//! The refusals around the second factor: no credential, a bad one, an API key, hostile
//! bodies; admins required to use TOTP; the OpenAPI document of both sign-in answers.

use super::{Mfa, access_of, refused};
use crate::helpers::{PASSWORD, TestApp, assert_error, detail_fields, make_user};
use plinth_core::{Principal, Role};
use plinth_store::{NewApiKey, WriteCtx};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// An API key for `user_id` with `role`, made in the store.
async fn api_key(app: &TestApp, user_id: uuid::Uuid, role: Role) -> String {
    let key = format!("plk_0badc0de_{}", "k".repeat(43));
    let new = NewApiKey {
        user_id,
        name: "test".to_owned(),
        prefix: "plk_0badc0de".to_owned(),
        key_hash: base16ct::lower::encode_string(&Sha256::digest(key.as_bytes())),
        role,
        expires_at: None,
    };
    let ctx = WriteCtx::new(Principal::local_admin(), "test");
    app.state
        .store()
        .create_api_key(&ctx, new)
        .await
        .expect("key");
    key
}

#[tokio::test]
async fn strangers_api_keys_and_hostile_bodies_are_refused() {
    let m = Mfa::spawn(|_| {}).await;
    let (user, token) = m.app.user("fay@example.com").await;
    let key = api_key(&m.app, user.id, Role::User).await;
    let routes = [
        (Method::POST, "/api/v1/auth/mfa/totp", None),
        (
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            Some(json!({"code": "123456"})),
        ),
        (
            Method::DELETE,
            "/api/v1/auth/mfa/totp",
            Some(json!({"password": PASSWORD, "code": "123456"})),
        ),
        (
            Method::POST,
            "/api/v1/auth/mfa/recovery-codes",
            Some(json!({"password": PASSWORD, "code": "123456"})),
        ),
    ];
    for (method, path, body) in &routes {
        let r = m.call(method.clone(), path, None, body.clone()).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        let r = m
            .call(method.clone(), path, Some("not-a-token"), body.clone())
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        let r = m.call(method.clone(), path, Some(&key), body.clone()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    refused(&m.call(Method::GET, "/api/v1/auth/mfa", None, None).await);
    // Nothing was enrolled by any of it.
    assert_eq!(m.status(&token).await["totp_enabled"], json!(false));

    m.enrol(&token).await;
    let huge = "9".repeat(10_000);
    for body in [
        json!([]),
        json!("code"),
        json!({}),
        json!({"code": 123456}),
        json!({"code": "123456", "extra": 1}),
        json!({"code": huge}),
        json!({"code": "١٢٣٤٥٦"}),
    ] {
        let r = m
            .call(
                Method::POST,
                "/api/v1/auth/mfa/totp/confirm",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    for body in [
        json!({}),
        json!({"mfa_token": 1, "code": "123456"}),
        json!({"mfa_token": "plm_x", "code": "123456", "role": "admin"}),
    ] {
        let r = m
            .call(
                Method::POST,
                "/api/v1/auth/login/mfa",
                None,
                Some(body.clone()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert!(!detail_fields(&r.body).is_empty(), "{}", r.body);
    }
    let r = m
        .call(
            Method::POST,
            "/api/v1/auth/login/mfa",
            None,
            Some(json!({"mfa_token": format!("plm_{huge}"), "code": huge})),
        )
        .await;
    refused(&r);
}

#[tokio::test]
async fn admins_required_to_use_totp_act_as_users_until_they_enrol() {
    let m = Mfa::spawn(|c| c.require_mfa_for_admins = true).await;
    let (root, _) = make_user(&m.app.state, "root@example.com", Role::Admin).await;
    let key = api_key(&m.app, root.id, Role::Admin).await;
    let access = access_of(&m.app.login("root@example.com", PASSWORD).await);
    // Signed in, but every admin-only route refuses it…
    let r = m
        .call(Method::GET, "/api/v1/users", Some(&access), None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(m.status(&access).await["required"], json!(true));
    // …while an admin API key keeps its role.
    let r = m.call(Method::GET, "/api/v1/users", Some(&key), None).await;
    r.data(StatusCode::OK);
    // The session may enrol; signed in again with the code, the admin is an admin.
    let (secret, _) = m.turn_on(&access).await;
    let t = m.first_step("root@example.com").await;
    let admin = access_of(&m.second_step(&t, &m.next_code(&secret)).await);
    m.call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await
        .data(StatusCode::OK);
    // Turned off again, the admin acts as a user at once.
    let body = json!({ "password": PASSWORD, "code": m.next_code(&secret) });
    let r = m
        .call(
            Method::DELETE,
            "/api/v1/auth/mfa/totp",
            Some(&admin),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = m
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn without_the_setting_an_admin_without_totp_is_an_admin() {
    let m = Mfa::spawn(|_| {}).await;
    make_user(&m.app.state, "root@example.com", Role::Admin).await;
    let access = access_of(&m.app.login("root@example.com", PASSWORD).await);
    m.call(Method::GET, "/api/v1/users", Some(&access), None)
        .await
        .data(StatusCode::OK);
    assert_eq!(m.status(&access).await["required"], json!(false));
}

#[tokio::test]
async fn the_document_describes_both_answers_of_a_sign_in() {
    let m = Mfa::spawn(|_| {}).await;
    let r = m
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let doc = &r.body;
    let login = &doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["200"];
    let text = login.to_string();
    assert!(text.contains("SignIn"), "{text}");
    let one_of = doc["components"]["schemas"]["SignIn"]["oneOf"].to_string();
    assert!(
        one_of.contains("TokenPair") && one_of.contains("MfaChallenge"),
        "{one_of}"
    );
    for path in [
        "/api/v1/auth/login/mfa",
        "/api/v1/auth/mfa",
        "/api/v1/auth/mfa/totp",
        "/api/v1/auth/mfa/totp/confirm",
        "/api/v1/auth/mfa/recovery-codes",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

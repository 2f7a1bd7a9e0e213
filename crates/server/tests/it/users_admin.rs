//! `/api/v1/users[/{id}]`: admins only; accounts created, changed and deleted; the last
//! admin kept; emails unique whatever their case; never a hash in an answer.

use crate::helpers::{NEW_PASSWORD, PASSWORD, Resp, TestApp, assert_error, make_user};
use plinth_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Resp {
    app.call_as(method, path, Some(&app.admin_token), body)
        .await
}

fn assert_user_shape(user: &Value) {
    let mut keys: Vec<&str> = user
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
        ],
        "{user}"
    );
}

#[tokio::test]
async fn users_endpoints_are_admin_only() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("a@example.com").await;
    let one = format!("/api/v1/users/{}", user.id);
    let admin_path = format!("/api/v1/users/{}", app.admin_id);
    let calls: [(Method, &str, Option<Value>); 7] = [
        (Method::GET, "/api/v1/users", None),
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "x@example.com", "password": NEW_PASSWORD})),
        ),
        (Method::GET, &one, None),
        (Method::PATCH, &one, Some(json!({"role": "admin"}))),
        (
            Method::PATCH,
            &admin_path,
            Some(json!({"password": NEW_PASSWORD})),
        ),
        (Method::DELETE, &admin_path, None),
        (Method::DELETE, &one, None),
    ];
    for (method, path, body) in &calls {
        let r = app
            .call_as(method.clone(), path, Some(&token), body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "user {method} {path}: {}",
            r.body
        );
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = app.call_as(method.clone(), path, None, body.as_ref()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "guest {method} {path}: {}",
            r.body
        );
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let list = admin(&app, Method::GET, "/api/v1/users", None).await;
    let users = list
        .data(StatusCode::OK)
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(users.len(), 2, "nothing created or deleted");
    for u in &users {
        assert_user_shape(u);
    }
    let me = admin(&app, Method::GET, &one, None).await;
    assert_eq!(me.data(StatusCode::OK)["role"], json!("user"));
    assert_eq!(me.body["data"]["version"], json!(1));
    app.login_ok("admin@example.com", PASSWORD).await;
}

#[tokio::test]
async fn admins_create_change_and_delete_accounts() {
    let app = TestApp::spawn().await;
    let r = admin(
        &app,
        Method::POST,
        "/api/v1/users",
        Some(&json!({"email": "Ada@Example.com", "password": NEW_PASSWORD})),
    )
    .await;
    let created = r.data(StatusCode::CREATED).clone();
    assert_user_shape(&created);
    assert_eq!(created["role"], json!("user"));
    assert_eq!(created["email"], json!("Ada@Example.com"));
    let id = created["id"].as_str().expect("an id");
    let path = format!("/api/v1/users/{id}");
    assert_eq!(r.header("location"), Some(path.as_str()));
    assert_eq!(r.header("etag"), Some("\"1\""));
    let session = app.login_ok("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(
        app.me(Some(&session.access)).await.data(StatusCode::OK)["id"],
        json!(id)
    );
    let read = admin(&app, Method::GET, &path, None).await;
    assert_eq!(read.data(StatusCode::OK), &created);
    // A new password set by an admin ends the user's sessions.
    let change = admin(
        &app,
        Method::PATCH,
        &path,
        Some(&json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(change.data(StatusCode::OK)["version"], json!(2));
    let old = app.refresh(&session.refresh).await;
    assert_error(&old, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    app.login_ok("ada@example.com", PASSWORD).await;
    let bad: [(Value, &str); 4] = [
        (json!({"role": "guest"}), "role"),
        (json!({"email": "not an email"}), "email"),
        (json!({"password": "short"}), "password"),
        (json!({"nickname": "x"}), "nickname"),
    ];
    for (body, field) in bad {
        let r = admin(&app, Method::PATCH, &path, Some(&body)).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{body}"
        );
    }
    let stale = app
        .send(
            app.request(Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"role": "admin"})),
        )
        .await;
    assert_error(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    let after = admin(&app, Method::GET, &path, None).await;
    assert_eq!(
        after.data(StatusCode::OK)["version"],
        json!(2),
        "a refused change wrote"
    );
    assert_eq!(after.body["data"]["role"], json!("user"));
    let del = admin(&app, Method::DELETE, &path, None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let gone = admin(&app, Method::GET, &path, None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "NOT_FOUND");
    let again = admin(&app, Method::DELETE, &path, None).await;
    assert_error(&again, StatusCode::NOT_FOUND, "NOT_FOUND");
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_error(&login, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn new_accounts_follow_the_password_policy() {
    let app = TestApp::spawn().await;
    let cases: [(Value, &[&str]); 6] = [
        (
            json!({"email": "a@example.com", "password": "short"}),
            &["password"],
        ),
        (
            json!({"email": "a@example.com", "password": "password1234"}),
            &["password"],
        ),
        (
            json!({"email": "longusername@example.com", "password": "LongUserName"}),
            &["password"],
        ),
        (
            json!({"email": "nope", "password": NEW_PASSWORD}),
            &["email"],
        ),
        (json!({"password": NEW_PASSWORD}), &["email"]),
        (json!({"email": "a@example.com"}), &["password"]),
    ];
    for (body, fields) in cases {
        let r = admin(&app, Method::POST, "/api/v1/users", Some(&body)).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            fields,
            "{body}"
        );
    }
    let list = admin(&app, Method::GET, "/api/v1/users", None).await;
    assert_eq!(list.data(StatusCode::OK).as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_or_demoted() {
    let app = TestApp::spawn().await;
    let me = format!("/api/v1/users/{}", app.admin_id);
    let demote = admin(&app, Method::PATCH, &me, Some(&json!({"role": "user"}))).await;
    assert_error(&demote, StatusCode::CONFLICT, "CONFLICT");
    let delete = admin(&app, Method::DELETE, &me, None).await;
    assert_error(&delete, StatusCode::CONFLICT, "CONFLICT");
    let still = admin(&app, Method::GET, &me, None).await;
    assert_eq!(still.data(StatusCode::OK)["role"], json!("admin"));
    assert_eq!(still.body["data"]["version"], json!(1));
    // With a second admin, one may go; then the other is the last again.
    let (second, second_token) = make_user(&app.state, "root@example.com", Role::Admin).await;
    let first_demoted = admin(&app, Method::PATCH, &me, Some(&json!({"role": "user"}))).await;
    assert_eq!(first_demoted.data(StatusCode::OK)["role"], json!("user"));
    let second_path = format!("/api/v1/users/{}", second.id);
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "user"}))),
        (Method::DELETE, None),
    ] {
        let r = app
            .call_as(method, &second_path, Some(&second_token), body.as_ref())
            .await;
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    }
    let r = app
        .call_as(Method::GET, &second_path, Some(&second_token), None)
        .await;
    assert_eq!(r.data(StatusCode::OK)["role"], json!("admin"));
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let app = TestApp::spawn().await;
    let (other, _) = app.user("ada@example.com").await;
    for email in [
        "ADMIN@EXAMPLE.COM",
        "admin@example.com",
        " Admin@Example.com ",
    ] {
        let body = json!({"email": email, "password": NEW_PASSWORD});
        let r = admin(&app, Method::POST, "/api/v1/users", Some(&body)).await;
        assert_eq!(
            assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
            ["email"],
            "{email}"
        );
    }
    let path = format!("/api/v1/users/{}", other.id);
    let r = admin(
        &app,
        Method::PATCH,
        &path,
        Some(&json!({"email": "Admin@Example.COM"})),
    )
    .await;
    assert_eq!(
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT"),
        ["email"]
    );
    let list = admin(&app, Method::GET, "/api/v1/users", None).await;
    assert_eq!(list.data(StatusCode::OK).as_array().map(Vec::len), Some(2));
    let read = admin(&app, Method::GET, &path, None).await;
    assert_eq!(read.data(StatusCode::OK)["email"], json!("ada@example.com"));
    // The admin still logs in with their password, the new one was never stored.
    app.login_ok("admin@example.com", PASSWORD).await;
    let r = app.login("admin@example.com", NEW_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn user_lists_page_and_never_show_a_hash() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        app.user(&format!("u{i}@example.com")).await;
    }
    let first = admin(&app, Method::GET, "/api/v1/users?limit=2", None).await;
    assert_eq!(first.data(StatusCode::OK).as_array().map(Vec::len), Some(2));
    let cursor = first.body["page"]["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = admin(
        &app,
        Method::GET,
        &format!("/api/v1/users?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(
        second.data(StatusCode::OK).as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(second.body["page"]["next_cursor"], json!(null));
    for r in [&first, &second] {
        let text = String::from_utf8_lossy(&r.raw).to_lowercase();
        assert!(
            !text.contains("hash") && !text.contains("password"),
            "{text}"
        );
    }
    let bad = admin(&app, Method::GET, "/api/v1/users?role=admin", None).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_INPUT");
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::spawn().await;
    let (second, _) = make_user(&app.state, "root@example.com", Role::Admin).await;
    let first = app.admin_id.parse().expect("a user id");
    let paths = [
        format!("/api/v1/users/{}", app.admin_id),
        format!("/api/v1/users/{}", second.id),
    ];
    let demote = json!({"role": "user"});
    for round in 0..50 {
        // Fresh tokens each round: a role change may end the tokens issued before it.
        let [t1, t2] = [token_of(&app, first).await, token_of(&app, second.id).await];
        let (a, b) = tokio::join!(
            app.call_as(Method::PATCH, &paths[1], Some(&t1), Some(&demote)),
            app.call_as(Method::PATCH, &paths[0], Some(&t2), Some(&demote)),
        );
        let admins = app
            .state
            .store()
            .count_admins()
            .await
            .expect("count admins");
        assert_eq!(
            admins, 1,
            "round {round}: {} / {} and {} / {}",
            a.status, a.body, b.status, b.body
        );
        let demoted = if a.status == StatusCode::OK {
            &paths[1]
        } else {
            &paths[0]
        };
        let survivor = if a.status == StatusCode::OK { t1 } else { t2 };
        let back = app
            .call_as(
                Method::PATCH,
                demoted,
                Some(&survivor),
                Some(&json!({"role": "admin"})),
            )
            .await;
        back.data(StatusCode::OK);
    }
}

/// A fresh access token for a stored user, as it is now.
async fn token_of(app: &TestApp, id: uuid::Uuid) -> String {
    let user = app
        .state
        .store()
        .get_user(id)
        .await
        .expect("read")
        .expect("the user");
    app.state.auth().issue_access(&user).expect("a token").0
}

#[tokio::test]
async fn two_admins_deleting_each_other_at_once_leave_one_admin() {
    let app = TestApp::spawn().await;
    let mut survivor = (app.admin_id.clone(), app.admin_token.clone());
    for round in 0..50 {
        let (other, other_token) =
            make_user(&app.state, &format!("root{round}@example.com"), Role::Admin).await;
        let (other_path, survivor_path) = (
            format!("/api/v1/users/{}", other.id),
            format!("/api/v1/users/{}", survivor.0),
        );
        let (a, b) = tokio::join!(
            app.call_as(Method::DELETE, &other_path, Some(&survivor.1), None),
            app.call_as(Method::DELETE, &survivor_path, Some(&other_token), None),
        );
        let admins = app
            .state
            .store()
            .count_admins()
            .await
            .expect("count admins");
        assert_eq!(
            admins, 1,
            "round {round}: {} / {} and {} / {}",
            a.status, a.body, b.status, b.body
        );
        if b.status == StatusCode::NO_CONTENT {
            survivor = (other.id.to_string(), other_token);
        }
    }
}

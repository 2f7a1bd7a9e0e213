//! `/api/v1/auth/api-keys`: keys shown once, used by `Bearer` and `X-API-Key`, never above
//! their user's role, revoked and expired at once, and private to their user.

use crate::helpers::{Resp, TestApp, assert_error, make_user, test_auth_config};
use plinth_core::{Role, Timestamp};
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const KEYS: &str = "/api/v1/auth/api-keys";

/// Creates a key as `credential`; must succeed. Returns `(id, key)`.
async fn new_key(app: &TestApp, credential: &str, body: &Value) -> (String, String) {
    let r = app.create_key(credential, body).await;
    let data = r.data(StatusCode::CREATED);
    let key = data["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    let id = data["id"].as_str().expect("an id").to_owned();
    (id, key)
}

/// A request authenticated by `X-API-Key`.
async fn with_header_key(app: &TestApp, method: Method, path: &str, key: &str) -> Resp {
    app.send(app.request_as(method, path, None).header("x-api-key", key))
        .await
}

fn list_ids(r: &Resp) -> Vec<String> {
    r.data(StatusCode::OK)
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| k["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn assert_no_key(r: &Resp, key: &str) {
    let text = String::from_utf8_lossy(&r.raw);
    let secret = key.splitn(3, '_').nth(2).expect("the random part");
    assert!(
        !text.contains(key) && !text.contains(secret),
        "the key was shown again: {text}"
    );
    assert!(!text.contains("key_hash"), "{text}");
}

#[tokio::test]
async fn a_key_is_shown_once_and_never_listed() {
    let app = TestApp::spawn().await;
    let r = app
        .create_key(&app.admin_token, &json!({"name": "ci"}))
        .await;
    let data = r.data(StatusCode::CREATED).clone();
    let key = data["key"].as_str().expect("a key");
    let prefix = data["prefix"].as_str().expect("a prefix");
    assert!(key.starts_with("plk_") && key.starts_with(prefix), "{data}");
    assert!(
        key.len() > prefix.len() + 30,
        "a key with real entropy: {key}"
    );
    assert_eq!(data["name"], json!("ci"));
    assert_eq!(data["role"], json!("admin"));
    assert_eq!(data["user_id"], json!(app.admin_id));
    assert_eq!(data["revoked_at"], json!(null));
    let id = data["id"].as_str().expect("an id");
    let list = app.get_path(KEYS).await;
    assert_eq!(list_ids(&list), [id]);
    assert_no_key(&list, key);
    assert!(list.body["data"][0].get("key").is_none());
    assert_eq!(list.body["data"][0]["prefix"], json!(prefix));
    let one = app.get_path(&format!("{KEYS}/{id}")).await;
    assert_eq!(one.data(StatusCode::OK)["prefix"], json!(prefix));
    assert_no_key(&one, key);
    let all = app.get_path(&format!("{KEYS}?all=true")).await;
    assert_no_key(&all, key);
}

#[tokio::test]
async fn a_users_key_acts_as_that_user_by_either_header() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("ada@example.com").await;
    let (id, key) = new_key(&app, &token, &json!({"name": "laptop"})).await;
    let me = app.me(Some(&key)).await;
    assert_eq!(me.data(StatusCode::OK)["id"], json!(user.id.to_string()));
    let me = with_header_key(&app, Method::GET, "/api/v1/auth/me", &key).await;
    assert_eq!(me.data(StatusCode::OK)["role"], json!("user"));
    let created = app
        .create_as("resource", &key, &json!({"name": "by key"}))
        .await;
    assert_eq!(created["owner_id"], json!(user.id.to_string()));
    let users = with_header_key(&app, Method::GET, "/api/v1/users", &key).await;
    assert_error(&users, StatusCode::FORBIDDEN, "FORBIDDEN");
    let admins = app.create_ok("resource", &json!({"name": "admin's"})).await;
    let path = format!("/api/v1/resource/{}", admins["id"].as_str().expect("id"));
    let write = app
        .call_as(
            Method::PATCH,
            &path,
            Some(&key),
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_error(&write, StatusCode::FORBIDDEN, "FORBIDDEN");
    let one = app
        .call_as(Method::GET, &format!("{KEYS}/{id}"), Some(&token), None)
        .await;
    assert!(
        one.data(StatusCode::OK)["last_used_at"].is_string(),
        "last use recorded: {}",
        one.body
    );
}

#[tokio::test]
async fn a_key_never_has_more_power_than_its_creator() {
    let app = TestApp::spawn().await;
    let (other, token) = app.user("ada@example.com").await;
    let admin_key = app
        .create_key(&token, &json!({"name": "x", "role": "admin"}))
        .await;
    assert_error(&admin_key, StatusCode::FORBIDDEN, "FORBIDDEN");
    let for_other = app
        .create_key(&token, &json!({"name": "x", "user_id": app.admin_id}))
        .await;
    assert_error(&for_other, StatusCode::FORBIDDEN, "FORBIDDEN");
    for body in [
        json!({"name": "x", "role": "guest"}),
        json!({"name": "x", "role": "root"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({}),
        json!({"name": "x", "owner": "me"}),
        json!({"name": "x", "expires_at": "tomorrow"}),
    ] {
        let r = app.create_key(&token, &body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let mine = app.call_as(Method::GET, KEYS, Some(&token), None).await;
    assert!(list_ids(&mine).is_empty(), "a refused key was stored");
    // An admin may make a user's key for them, but never an admin key for a user.
    let too_high = app
        .create_key(
            &app.admin_token,
            &json!({"name": "x", "user_id": other.id.to_string(), "role": "admin"}),
        )
        .await;
    assert_error(&too_high, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (_, key) = new_key(
        &app,
        &app.admin_token,
        &json!({"name": "for ada", "user_id": other.id.to_string()}),
    )
    .await;
    assert_eq!(
        app.me(Some(&key)).await.data(StatusCode::OK)["role"],
        json!("user")
    );
    // An admin's own key with role user acts as a user.
    let (_, weak) = new_key(
        &app,
        &app.admin_token,
        &json!({"name": "ro", "role": "user"}),
    )
    .await;
    let users = app
        .call_as(Method::GET, "/api/v1/users", Some(&weak), None)
        .await;
    assert_error(&users, StatusCode::FORBIDDEN, "FORBIDDEN");
    // …and cannot mint itself a stronger key, nor reach other users' keys.
    for body in [
        json!({"name": "up", "role": "admin"}),
        json!({"name": "up", "user_id": other.id.to_string()}),
    ] {
        let r = app.create_key(&weak, &body).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let all = app
        .call_as(Method::GET, &format!("{KEYS}?all=true"), Some(&weak), None)
        .await;
    assert_error(&all, StatusCode::FORBIDDEN, "FORBIDDEN");
    let guest = app
        .call_as(Method::POST, KEYS, None, Some(&json!({"name": "x"})))
        .await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_revoked_key_is_401_on_the_very_next_request() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user("ada@example.com").await;
    let (id, key) = new_key(&app, &token, &json!({"name": "k"})).await;
    app.me(Some(&key)).await.data(StatusCode::OK);
    let r = app
        .call_as(Method::DELETE, &format!("{KEYS}/{id}"), Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let bearer = app
        .call_as(Method::GET, "/api/v1/resource", Some(&key), None)
        .await;
    assert_error(&bearer, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let header = with_header_key(&app, Method::GET, "/api/v1/resource", &key).await;
    assert_error(&header, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let one = app
        .call_as(Method::GET, &format!("{KEYS}/{id}"), Some(&token), None)
        .await;
    assert!(
        one.data(StatusCode::OK)["revoked_at"].is_string(),
        "{}",
        one.body
    );
    // A revoked key cannot revoke or list anything either.
    let itself = app
        .call_as(Method::DELETE, &format!("{KEYS}/{id}"), Some(&key), None)
        .await;
    assert_error(&itself, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(test_auth_config(), &clock).await;
    let (_, token) = app.user("ada@example.com").await;
    let past = Timestamp::from_system(SystemTime::now() - Duration::from_secs(60)).to_string();
    let r = app
        .create_key(&token, &json!({"name": "old", "expires_at": past}))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["expires_at"]
    );
    let soon = clock.now() + Duration::from_millis(1500);
    let body = json!({"name": "short", "expires_at": Timestamp::from_system(soon).to_string()});
    let (_, key) = new_key(&app, &token, &body).await;
    app.me(Some(&key)).await.data(StatusCode::OK);
    clock.advance(Duration::from_millis(1499));
    app.me(Some(&key)).await.data(StatusCode::OK);
    clock.advance(Duration::from_millis(1));
    let late = app
        .call_as(Method::GET, "/api/v1/resource", Some(&key), None)
        .await;
    assert_error(&late, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn users_see_and_revoke_only_their_own_keys() {
    let app = TestApp::spawn().await;
    let (_, a) = app.user("a@example.com").await;
    let (b_user, b) = app.user("b@example.com").await;
    let (a_id, _) = new_key(&app, &a, &json!({"name": "a"})).await;
    let (b_id, b_key) = new_key(&app, &b, &json!({"name": "b"})).await;
    let mine = app.call_as(Method::GET, KEYS, Some(&a), None).await;
    assert_eq!(list_ids(&mine), std::slice::from_ref(&a_id));
    let theirs = app
        .call_as(Method::GET, &format!("{KEYS}/{b_id}"), Some(&a), None)
        .await;
    assert_error(&theirs, StatusCode::NOT_FOUND, "NOT_FOUND");
    let revoke = app
        .call_as(Method::DELETE, &format!("{KEYS}/{b_id}"), Some(&a), None)
        .await;
    assert_error(&revoke, StatusCode::NOT_FOUND, "NOT_FOUND");
    app.me(Some(&b_key)).await.data(StatusCode::OK);
    for query in ["?all=true".to_owned(), format!("?user_id={}", b_user.id)] {
        let r = app
            .call_as(Method::GET, &format!("{KEYS}{query}"), Some(&a), None)
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    // The admin sees everyone's and may revoke any.
    let all = app.get_path(&format!("{KEYS}?all=true")).await;
    let mut ids = list_ids(&all);
    ids.sort();
    let mut expected = vec![a_id, b_id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let only_b = app.get_path(&format!("{KEYS}?user_id={}", b_user.id)).await;
    assert_eq!(list_ids(&only_b), std::slice::from_ref(&b_id));
    let r = app
        .send(app.request(Method::DELETE, &format!("{KEYS}/{b_id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let dead = app.me(Some(&b_key)).await;
    assert_error(&dead, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn keys_follow_their_user() {
    let app = TestApp::spawn().await;
    let (second, token) = make_user(&app.state, "root@example.com", Role::Admin).await;
    let (_, key) = new_key(&app, &token, &json!({"name": "ops"})).await;
    app.call_as(Method::GET, "/api/v1/users", Some(&key), None)
        .await
        .data(StatusCode::OK);
    let path = format!("/api/v1/users/{}", second.id);
    let demote = app
        .send(
            app.request(Method::PATCH, &path)
                .json(&json!({"role": "user"})),
        )
        .await;
    demote.data(StatusCode::OK);
    let users = app
        .call_as(Method::GET, "/api/v1/users", Some(&key), None)
        .await;
    assert_error(&users, StatusCode::FORBIDDEN, "FORBIDDEN");
    let gone = app.send(app.request(Method::DELETE, &path)).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let dead = app
        .call_as(Method::GET, "/api/v1/resource", Some(&key), None)
        .await;
    assert_error(&dead, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_api_key_cannot_manage_api_keys() {
    let app = TestApp::spawn().await;
    let (id, key) = new_key(&app, &app.admin_token, &json!({"name": "machine"})).await;

    // Neither header lets a key mint a key (which would outlive a stolen one), list, read or
    // revoke keys; the refusal comes before the body is read, and nothing is created.
    for by_header in [false, true] {
        let send = |method: Method, path: String, body: Option<Value>| {
            let mut req = if by_header {
                app.request_as(method, &path, None)
                    .header("x-api-key", key.as_str())
            } else {
                app.request_as(method, &path, Some(key.as_str()))
            };
            if let Some(b) = body {
                req = req.json(&b);
            }
            app.send(req)
        };
        let r = send(
            Method::POST,
            KEYS.to_owned(),
            Some(json!({"name": "minted"})),
        )
        .await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = send(Method::POST, KEYS.to_owned(), Some(json!({"bogus": true}))).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = send(Method::GET, KEYS.to_owned(), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = send(Method::GET, format!("{KEYS}/{id}"), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
        let r = send(Method::DELETE, format!("{KEYS}/{id}"), None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    }

    // The key still works for records, and the admin's login still manages keys: exactly
    // the one key exists, unrevoked.
    let r = app
        .send(app.request_as(Method::GET, "/api/v1/resource", Some(key.as_str())))
        .await;
    r.data(StatusCode::OK);
    let r = app
        .call_as(Method::GET, KEYS, Some(&app.admin_token), None)
        .await;
    assert_eq!(list_ids(&r), vec![id.clone()]);
    let r = with_header_key(&app, Method::GET, "/api/v1/auth/me", &key).await;
    r.data(StatusCode::OK);
}

#[tokio::test]
async fn a_maximum_key_lifetime_is_the_default_and_the_limit() {
    let mut auth = test_auth_config();
    auth.api_key_max_ttl = Some(Duration::from_secs(24 * 3600));
    let app = TestApp::spawn_full(Vec::new(), plinth_server::ServerConfig::default(), auth).await;
    let day = 24 * 3600 * 1_000_000_i64;
    let now = Timestamp::from_system(SystemTime::now()).as_micros();
    let expiry = |r: &Resp| {
        let text = r.data(StatusCode::CREATED)["expires_at"]
            .as_str()
            .expect("an expiry")
            .to_owned();
        Timestamp::parse(&text).expect("RFC 3339").as_micros()
    };

    // No expiry asked for: the key gets the longest allowed.
    let r = app
        .create_key(&app.admin_token, &json!({"name": "default"}))
        .await;
    let got = expiry(&r);
    assert!(
        got > now + day - 60_000_000 && got <= now + day + 60_000_000,
        "{got}"
    );

    // A shorter one is kept as asked.
    let soon = Timestamp::from_micros(now + day / 2).expect("a time");
    let r = app
        .create_key(
            &app.admin_token,
            &json!({"name": "short", "expires_at": soon.to_string()}),
        )
        .await;
    assert_eq!(expiry(&r), soon.as_micros());

    // A longer one is refused, naming the field, and no key is made.
    let late = Timestamp::from_micros(now + 2 * day).expect("a time");
    let r = app
        .create_key(
            &app.admin_token,
            &json!({"name": "long", "expires_at": late.to_string()}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(r.body["error"]["details"][0]["field"], json!("expires_at"));
    let r = app
        .call_as(Method::GET, KEYS, Some(&app.admin_token), None)
        .await;
    assert_eq!(list_ids(&r).len(), 2);
}

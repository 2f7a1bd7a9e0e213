//! `/api/v1/auth/sessions` and `/api/v1/users/{id}/sessions`: a user's sessions listed with
//! where and with what they were last used; ending one, or all, at once (its refresh AND
//! access tokens); never another user's; hostile user agents stored cleaned; and the cost of
//! checking a session on each request (a cache hit).

use crate::helpers::raw::RawConn;
use crate::helpers::{MISSING_ID, PASSWORD, Resp, TestApp, Tokens, assert_error, test_auth_config};
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SESSIONS: &str = "/api/v1/auth/sessions";

/// A login sending `agent` as its `User-Agent`.
async fn login_as(app: &TestApp, email: &str, agent: &str) -> Tokens {
    let req = app
        .request_as(Method::POST, "/api/v1/auth/login", None)
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": PASSWORD}));
    Tokens::from_resp(&app.send(req).await)
}

/// A refresh sending `agent`.
async fn refresh_as(app: &TestApp, refresh: &str, agent: &str) -> Tokens {
    let req = app
        .request_as(Method::POST, "/api/v1/auth/refresh", None)
        .header("user-agent", agent)
        .json(&json!({ "refresh_token": refresh }));
    Tokens::from_resp(&app.send(req).await)
}

async fn list(app: &TestApp, credential: Option<&str>) -> Resp {
    app.call_as(Method::GET, SESSIONS, credential, None).await
}

/// The sessions listed for `credential`, which must succeed.
async fn listed(app: &TestApp, credential: &str) -> Vec<Value> {
    let r = list(app, Some(credential)).await;
    r.data(StatusCode::OK)
        .as_array()
        .expect("a list of sessions")
        .clone()
}

async fn end(app: &TestApp, credential: Option<&str>, id: &str) -> Resp {
    app.call_as(
        Method::DELETE,
        &format!("{SESSIONS}/{id}"),
        credential,
        None,
    )
    .await
}

async fn end_all(app: &TestApp, credential: Option<&str>, query: &str) -> Resp {
    app.call_as(
        Method::DELETE,
        &format!("{SESSIONS}{query}"),
        credential,
        None,
    )
    .await
}

fn id(session: &Value) -> String {
    session["id"].as_str().expect("a session id").to_owned()
}

/// The audit entries of `action`, as (actor id, target, changes).
async fn audited(app: &TestApp, action: &str) -> Vec<(Option<String>, Option<String>, Value)> {
    app.state
        .store()
        .audit_list(0, 10_000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| {
            (
                e.actor_id.map(|u| u.to_string()),
                e.record_id.map(|r| r.to_string()),
                e.changes,
            )
        })
        .collect()
}

#[tokio::test]
async fn two_logins_list_two_sessions_with_their_details_and_the_current_one() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com").await;
    let phone = login_as(&app, "ada@example.com", "Phone/1.0").await;
    let laptop = login_as(&app, "ada@example.com", "Laptop/2.0 (X11)").await;
    app.user("bob@example.com").await;
    login_as(&app, "bob@example.com", "Bob/1").await;

    let seen = listed(&app, &phone.access).await;
    assert_eq!(seen.len(), 2, "only Ada's: {seen:?}");
    // Newest first; the phone's token asked.
    assert_eq!(seen[0]["user_agent"], json!("Laptop/2.0 (X11)"));
    assert_eq!(seen[1]["user_agent"], json!("Phone/1.0"));
    assert_eq!(
        seen.iter()
            .map(|s| s["current"].clone())
            .collect::<Vec<_>>(),
        [json!(false), json!(true)]
    );
    for s in &seen {
        assert_eq!(s["client_addr"], json!("127.0.0.1"));
        let keys: Vec<&String> = s.as_object().expect("an object").keys().collect();
        assert_eq!(
            keys,
            [
                "client_addr",
                "created_at",
                "current",
                "id",
                "last_used_at",
                "user_agent"
            ],
            "nothing more (no token, no digest)"
        );
    }
    let from_laptop = listed(&app, &laptop.access).await;
    assert_eq!(from_laptop[0]["current"], json!(true));
    assert_eq!(from_laptop[1]["current"], json!(false));

    // A refresh keeps the session (and its start) and shows its last use.
    let phone_id = id(&seen[1]);
    let refreshed = refresh_as(&app, &phone.refresh, "Phone/1.1").await;
    let after = listed(&app, &refreshed.access).await;
    assert_eq!(after.len(), 2, "a refresh is no new session");
    let s = after.iter().find(|s| id(s) == phone_id).expect("the phone");
    assert_eq!(s["created_at"], seen[1]["created_at"]);
    assert_ne!(s["last_used_at"], seen[1]["last_used_at"]);
    assert_eq!(s["user_agent"], json!("Phone/1.1"));
    assert_eq!(
        s["current"],
        json!(true),
        "the refreshed token is of the same session"
    );
    // A token made outside any session (here by the test harness) marks none current.
    let (_, token) =
        crate::helpers::make_user(&app.state, "cy@example.com", plinth_core::Role::User).await;
    assert!(listed(&app, &token).await.is_empty());
    // An admin sees Ada's sessions too.
    let by_admin = app
        .call_as(
            Method::GET,
            &format!("/api/v1/users/{}/sessions", ada.id),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(
        by_admin.data(StatusCode::OK).as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn ending_a_session_ends_its_refresh_and_access_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com").await;
    let phone = login_as(&app, "ada@example.com", "Phone").await;
    let laptop = login_as(&app, "ada@example.com", "Laptop").await;
    // Both work, and the laptop's token is cached as valid.
    for t in [&phone, &laptop] {
        app.me(Some(&t.access)).await.data(StatusCode::OK);
    }
    let sessions = listed(&app, &phone.access).await;
    let laptop_id = id(&sessions[0]);
    let r = end(&app, Some(&phone.access), &laptop_id).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // The laptop's access token is refused from the very next request, and its refresh
    // token is revoked (not a reuse: it was never spent).
    assert_error(
        &app.me(Some(&laptop.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &list(&app, Some(&laptop.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &app.refresh(&laptop.refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert!(audited(&app, "auth.refresh_reuse").await.is_empty());
    // The phone goes on.
    app.me(Some(&phone.access)).await.data(StatusCode::OK);
    let left = listed(&app, &phone.access).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], json!(true));
    let phone = Tokens::from_resp(&app.refresh(&phone.refresh).await);
    app.me(Some(&phone.access)).await.data(StatusCode::OK);
    // Ended once: a second time is a 404.
    assert_error(
        &end(&app, Some(&phone.access), &laptop_id).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let ada_id = ada.id.to_string();
    assert_eq!(
        audited(&app, "auth.session_revoked").await,
        [(
            Some(ada_id.clone()),
            Some(ada_id),
            json!({ "session": laptop_id })
        )]
    );
    // Ending one's own current session is a logout that also ends the token that asked.
    let own = id(&listed(&app, &phone.access).await[0]);
    assert_eq!(
        end(&app, Some(&phone.access), &own).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.me(Some(&phone.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_session_or_all_but_the_current_one() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com").await;
    let a = login_as(&app, "ada@example.com", "A").await;
    let b = login_as(&app, "ada@example.com", "B").await;
    let c = login_as(&app, "ada@example.com", "C").await;
    app.user("bob@example.com").await;
    let bob = login_as(&app, "bob@example.com", "Bob").await;
    for q in [
        "?except=other",
        "?except=current&except=current",
        "?all=true",
    ] {
        assert_error(
            &end_all(&app, Some(&a.access), q).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        );
    }
    assert_eq!(
        listed(&app, &a.access).await.len(),
        3,
        "a refused call ends nothing"
    );

    let r = end_all(&app, Some(&a.access), "?except=current").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    for t in [&b, &c] {
        assert_error(
            &app.me(Some(&t.access)).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        assert_error(
            &app.refresh(&t.refresh).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    assert_eq!(listed(&app, &a.access).await.len(), 1);

    assert_eq!(
        end_all(&app, Some(&a.access), "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.me(Some(&a.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &app.refresh(&a.refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // Bob's session goes on.
    app.me(Some(&bob.access)).await.data(StatusCode::OK);
    assert_eq!(listed(&app, &bob.access).await.len(), 1);
    let counts: Vec<Value> = audited(&app, "auth.sessions_revoked")
        .await
        .into_iter()
        .map(|(_, target, changes)| {
            assert_eq!(target, Some(ada.id.to_string()));
            changes["count"].clone()
        })
        .collect();
    assert_eq!(counts, [json!(2), json!(1)]);

    // An admin ends every session of an account; a user may not, nor name an unknown one.
    let again = login_as(&app, "ada@example.com", "A").await;
    let path = format!("/api/v1/users/{}/sessions", ada.id);
    let r = app
        .call_as(Method::DELETE, &path, Some(&bob.access), None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    app.me(Some(&again.access)).await.data(StatusCode::OK);
    for missing in [MISSING_ID, "not-a-uuid"] {
        let r = app
            .call_as(
                Method::DELETE,
                &format!("/api/v1/users/{missing}/sessions"),
                Some(&app.admin_token),
                None,
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let r = app
        .call_as(Method::DELETE, &path, Some(&app.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_error(
        &app.me(Some(&again.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn another_users_session_is_not_found_and_nothing_is_revoked() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    app.user("bob@example.com").await;
    let ada = login_as(&app, "ada@example.com", "Ada").await;
    let bob = login_as(&app, "bob@example.com", "Bob").await;
    let adas = id(&listed(&app, &ada.access).await[0]);
    let theirs = end(&app, Some(&bob.access), &adas).await;
    assert_error(&theirs, StatusCode::NOT_FOUND, "NOT_FOUND");
    // Unknown and malformed ids get the very same answer.
    for other in [MISSING_ID, "not-a-uuid", "%00", &"9".repeat(5000)] {
        let r = end(&app, Some(&bob.access), other).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(r.body["error"]["message"], theirs.body["error"]["message"]);
    }
    // Ada's session is whole: listed, refreshable, its access token valid.
    assert_eq!(listed(&app, &ada.access).await.len(), 1);
    app.me(Some(&ada.access)).await.data(StatusCode::OK);
    Tokens::from_resp(&app.refresh(&ada.refresh).await);
    assert!(audited(&app, "auth.session_revoked").await.is_empty());
}

#[tokio::test]
async fn no_credential_an_api_key_and_ended_or_forged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let ada = login_as(&app, "ada@example.com", "Ada").await;
    let sid = id(&listed(&app, &ada.access).await[0]);
    // No credential.
    assert_error(
        &list(&app, None).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &end(&app, None, &sid).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &end_all(&app, None, "").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // An API key is no session: it neither lists nor ends any.
    let key = app.create_key(&ada.access, &json!({"name": "ci"})).await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    assert_error(
        &list(&app, Some(&key)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_error(
        &end(&app, Some(&key), &sid).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_error(
        &end_all(&app, Some(&key), "").await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    app.me(Some(&ada.access)).await.data(StatusCode::OK);
    // A forged token, a refresh token as a Bearer credential.
    let mut forged = ada.access.clone();
    forged.pop();
    forged.push(if ada.access.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), ada.refresh.as_str()] {
        assert_error(
            &list(&app, Some(bad)).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        assert_error(
            &end_all(&app, Some(bad), "").await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    // A logged-out session's (stolen) access token is refused at once, here too.
    assert_eq!(
        app.logout(&ada.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &list(&app, Some(&ada.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &end(&app, Some(&ada.access), &sid).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // The key goes on: keys are not sessions.
    app.me(Some(&key)).await.data(StatusCode::OK);
}

#[tokio::test]
async fn hostile_user_agents_are_stored_bounded_and_printable() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let huge = format!("Huge/1 {}", "x".repeat(20_000));
    let big = login_as(&app, "ada@example.com", &huge).await;
    let seen = listed(&app, &big.access).await;
    let agent = seen[0]["user_agent"].as_str().expect("kept");
    assert_eq!(agent.chars().count(), 256);
    assert!(agent.starts_with("Huge/1 xxx"));
    // Bytes that are no UTF-8, a tab, a right-to-left override, and no agent at all, sent
    // as they are.
    let body = format!(r#"{{"email":"ada@example.com","password":"{PASSWORD}"}}"#);
    let mut head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: plinth.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: ",
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(b"Evil\t\xff\xfe/1 \xe2\x80\xaegnp.exe");
    head.extend_from_slice(b"\r\n\r\n");
    head.extend_from_slice(body.as_bytes());
    let mut conn = RawConn::open(app.addr).await;
    assert!(conn.send(&head).await);
    let r = conn.response().await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let evil = r.json()["data"]["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let quiet = app
        .send(
            app.request_as(Method::POST, "/api/v1/auth/login", None)
                .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    Tokens::from_resp(&quiet);
    let seen = listed(&app, &evil).await;
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0]["user_agent"], Value::Null, "none sent");
    assert_eq!(
        seen[1]["user_agent"],
        json!("Evil\u{FFFD}\u{FFFD}/1 gnp.exe")
    );
    assert_eq!(seen[1]["current"], json!(true));
}

#[tokio::test]
async fn a_sessions_access_token_is_checked_from_the_credential_cache() {
    // A clock that stands still: the cache entry never ages, so every store call counted
    // below is one the requests made.
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(test_auth_config(), &clock).await;
    app.user("ada@example.com").await;
    let ada = login_as(&app, "ada@example.com", "Ada").await;
    app.me(Some(&ada.access)).await.data(StatusCode::OK);
    let before = store_calls(&app).await;
    for _ in 0..20 {
        app.me(Some(&ada.access)).await.data(StatusCode::OK);
    }
    let after = store_calls(&app).await;
    // `/me` itself reads the account once per request; checking the token and its session
    // read nothing more.
    assert_eq!(after.0 - before.0, 0.0, "no session check per request");
    assert_eq!(after.1 - before.1, 20.0, "only /me's own account read");
    // Ending the session clears the cache: the next request checks again, and is refused.
    let sid = id(&listed(&app, &ada.access).await[0]);
    assert_eq!(
        end(&app, Some(&ada.access), &sid).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.me(Some(&ada.access)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

/// How many times the store was asked whether a session is live, and for an account by id.
async fn store_calls(app: &TestApp) -> (f64, f64) {
    let r = app
        .send(app.request_as(Method::GET, "/metrics", None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.raw).into_owned();
    let count = |op: &str| -> f64 {
        let label = format!("store_operation_duration_seconds_count{{operation=\"{op}\"}} ");
        text.lines()
            .find_map(|l| {
                l.split_once(&label)
                    .map(|(_, v)| v.trim().parse().unwrap_or(0.0))
            })
            .unwrap_or(0.0)
    };
    (count("refresh_family_live"), count("get_user"))
}

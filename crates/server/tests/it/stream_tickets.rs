//! Stream tickets and the credentials of open streams: `POST /api/v1/events/ticket`, a
//! ticket never standing in for a Bearer credential nor a token for a ticket, and
//! `Auth::revalidate` answering `Revoked` or `Expired` once the credential a stream was
//! opened with is logged out, revoked, changed, deleted or past its expiry, with the
//! `credential_changes` watch moving first.

use crate::auth_tokens::{claims_of, forge, hs256, hs256_header};
use crate::helpers::{
    PASSWORD, Resp, TEST_KEY, TestApp, Tokens, assert_error, make_user, test_auth_config,
};
use plinth_core::Role;
use plinth_server::auth::{AuthError, ManualClock, Standing, StreamAuth};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::watch;

const TICKET_PATH: &str = "/api/v1/events/ticket";

impl TestApp {
    /// `POST /api/v1/events/ticket` as `credential` (or a guest).
    async fn ticket_as(&self, credential: Option<&str>) -> Resp {
        self.call_as(Method::POST, TICKET_PATH, credential, None)
            .await
    }

    /// A ticket that must be issued.
    async fn ticket_ok(&self, credential: &str) -> String {
        let r = self.ticket_as(Some(credential)).await;
        let data = r.data(StatusCode::CREATED);
        assert_eq!(data["expires_in"], json!(60), "{data}");
        data["ticket"].as_str().expect("a ticket").to_owned()
    }

    /// Opens a stream's credential as the stream endpoints do.
    async fn open(
        &self,
        credential: Option<&str>,
        ticket: Option<&str>,
    ) -> Result<StreamAuth, AuthError> {
        self.state
            .auth()
            .open_stream(self.state.store().as_ref(), credential, ticket)
            .await
    }

    /// Checks an open stream's credential again.
    async fn standing(&self, stream: &StreamAuth) -> Standing {
        self.state
            .auth()
            .revalidate(self.state.store().as_ref(), stream)
            .await
            .expect("the store answers")
    }

    /// An API key of the admin's, made over HTTP: (id, key).
    async fn admin_key(&self) -> (String, String) {
        let r = self
            .create_key(&self.admin_token, &json!({"name": "feed"}))
            .await;
        let data = r.data(StatusCode::CREATED);
        (
            data["id"].as_str().expect("id").to_owned(),
            data["key"].as_str().expect("key").to_owned(),
        )
    }
}

/// Waits (a bounded time) for the watch to move past what it was last seen at.
async fn moved(changes: &mut watch::Receiver<u64>, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), changes.changed())
        .await
        .unwrap_or_else(|_| panic!("the credential watch did not move after {what}"))
        .expect("the watch is open");
}

/// Nothing moved the watch yet.
fn still(changes: &watch::Receiver<u64>, what: &str) {
    assert!(
        !changes.has_changed().expect("open"),
        "the watch moved before {what}"
    );
}

#[tokio::test]
async fn tickets_are_issued_for_users_and_api_keys_and_refused_to_guests() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.ticket_ok(&tokens.access).await;
    let stream = app.open(None, Some(&ticket)).await.expect("a valid ticket");
    assert_eq!(stream.principal().user_id(), Some(ada.id));
    assert_eq!(stream.principal().role(), Role::User);
    assert_eq!(stream.api_key(), None);
    // The ticket is reusable within its minute: EventSource reconnects with it.
    app.open(None, Some(&ticket)).await.expect("used again");
    // It names the session of the token it came from, and nothing secret.
    let claims = claims_of(&ticket);
    assert_eq!(claims["aud"], json!("plinth:stream-ticket"), "{claims}");
    assert_eq!(claims["cred"]["kind"], json!("access"), "{claims}");
    assert_eq!(claims["cred"]["sid"], claims_of(&tokens.access)["sid"]);
    assert!(claims["cred"]["sid"].is_string(), "{claims}");

    let (key_id, key) = app.admin_key().await;
    let ticket = app.ticket_ok(&key).await;
    let stream = app.open(None, Some(&ticket)).await.expect("a key's ticket");
    assert_eq!(stream.principal().role(), Role::Admin);
    assert_eq!(stream.api_key().map(|k| k.to_string()), Some(key_id));
    assert!(!ticket.contains(&key), "a ticket never holds the key");

    let r = app.ticket_as(None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = app.ticket_as(Some("plk_nonsense_key")).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // No cache may keep a ticket.
    let r = app.ticket_as(Some(&tokens.access)).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // A guest opens a stream without one.
    let guest = app.open(None, None).await.expect("a guest");
    assert_eq!(guest.principal().role(), Role::Guest);
    assert_eq!(app.standing(&guest).await, Standing::Valid);
    assert_eq!(app.state.auth().remaining(&guest), None);
}

#[tokio::test]
async fn a_ticket_is_no_bearer_credential_and_a_token_no_ticket() {
    let app = TestApp::spawn().await;
    let ticket = app.ticket_ok(&app.admin_token).await;
    for (what, r) in [
        ("me", app.me(Some(&ticket)).await),
        (
            "a list",
            app.call_as(Method::GET, "/api/v1/resource", Some(&ticket), None)
                .await,
        ),
        ("another ticket", app.ticket_as(Some(&ticket)).await),
    ] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    assert!(matches!(
        app.open(Some(&ticket), None).await,
        Err(AuthError::Refused)
    ));
    // An access token (or an API key) offered as a ticket is refused.
    assert!(matches!(
        app.open(None, Some(&app.admin_token)).await,
        Err(AuthError::Refused)
    ));
    let (_, key) = app.admin_key().await;
    assert!(app.open(None, Some(&key)).await.is_err());
    // Both at once: refused, whichever would pass alone.
    assert!(
        app.open(Some(&app.admin_token), Some(&ticket))
            .await
            .is_err()
    );
    // A ticket's claims signed with the access-token key are not a ticket: tickets have a
    // key of their own.
    let forged = forge(&hs256_header(), &claims_of(&ticket), hs256(TEST_KEY));
    assert!(app.open(None, Some(&forged)).await.is_err());
    // Nor is a ticket with a tampered payload (another user), signature kept.
    let mut parts: Vec<String> = ticket.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&ticket);
    claims["sub"] = json!(uuid::Uuid::now_v7().to_string());
    parts[1] = forge(&hs256_header(), &claims, |_| Vec::new())
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    assert!(app.open(None, Some(&parts.join("."))).await.is_err());
    for garbage in ["", "x", "a.b.c", &"A".repeat(5000)] {
        assert!(app.open(None, Some(garbage)).await.is_err(), "{garbage:?}");
    }
}

#[tokio::test]
async fn an_expired_ticket_is_refused_and_a_stream_expires_with_its_token() {
    let clock = ManualClock::new();
    let mut auth = test_auth_config();
    auth.access_ttl = Duration::from_secs(600);
    let app = TestApp::spawn_clocked(auth, &clock).await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.ticket_ok(&tokens.access).await;
    let stream = app.open(None, Some(&ticket)).await.expect("fresh");
    let bearer = app.open(Some(&tokens.access), None).await.expect("fresh");
    // Tokens carry whole seconds: the expiry is within a second of 10 minutes from now.
    let left = |stream| app.state.auth().remaining(stream).expect("an expiry");
    assert!(
        (599..=600).contains(&left(&stream).as_secs()),
        "{:?}",
        left(&stream)
    );
    // Past its minute (and the 5 s leeway) the ticket opens nothing...
    clock.advance(Duration::from_secs(66));
    assert!(matches!(
        app.open(None, Some(&ticket)).await,
        Err(AuthError::Refused)
    ));
    // ...but the stream it opened follows its access token, not the ticket.
    assert_eq!(app.standing(&stream).await, Standing::Valid);
    assert!(
        (533..=534).contains(&left(&stream).as_secs()),
        "{:?}",
        left(&stream)
    );
    clock.advance(Duration::from_secs(600 - 66));
    assert_eq!(app.state.auth().remaining(&stream), Some(Duration::ZERO));
    assert_eq!(app.standing(&stream).await, Standing::Expired);
    assert_eq!(app.standing(&bearer).await, Standing::Expired);
}

#[tokio::test]
async fn an_api_key_stream_expires_with_its_key() {
    let clock = ManualClock::new();
    let app = TestApp::spawn_clocked(test_auth_config(), &clock).await;
    let expires = plinth_core::Timestamp::from_system(clock.now() + Duration::from_secs(3600));
    let r = app
        .create_key(
            &app.admin_token,
            &json!({"name": "short", "expires_at": expires.to_string()}),
        )
        .await;
    let key = r.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let direct = app.open(Some(&key), None).await.expect("a key");
    let ticket = app.ticket_ok(&key).await;
    let ticketed = app.open(None, Some(&ticket)).await.expect("its ticket");
    for stream in [&direct, &ticketed] {
        assert_eq!(stream.expires_at(), Some(expires));
        assert_eq!(app.standing(stream).await, Standing::Valid);
    }
    clock.advance(Duration::from_secs(3600));
    for stream in [&direct, &ticketed] {
        assert_eq!(app.standing(stream).await, Standing::Expired);
    }
}

#[tokio::test]
async fn logout_ends_the_tickets_of_its_session_and_moves_the_watch() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let other = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.ticket_ok(&tokens.access).await;
    let stream = app.open(None, Some(&ticket)).await.expect("open");
    let bearer = app.open(Some(&tokens.access), None).await.expect("open");
    let elsewhere = app
        .open(None, Some(&app.ticket_ok(&other.access).await))
        .await
        .expect("open");
    // A refreshed token stays in its session: its tickets end with it too.
    let refreshed = Tokens::from_resp(&app.refresh(&tokens.refresh).await);
    let after_refresh = app
        .open(None, Some(&app.ticket_ok(&refreshed.access).await))
        .await
        .expect("open");
    let mut changes = app.state.auth().credential_changes();
    still(&changes, "the logout");
    assert_eq!(app.standing(&stream).await, Standing::Valid);

    assert_eq!(
        app.logout(&refreshed.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    moved(&mut changes, "a logout").await;
    assert_eq!(app.standing(&stream).await, Standing::Revoked);
    assert_eq!(app.standing(&after_refresh).await, Standing::Revoked);
    // A stolen ticket is worth nothing after the logout, and the session's tokens make no
    // more.
    assert!(matches!(
        app.open(None, Some(&ticket)).await,
        Err(AuthError::Refused)
    ));
    let r = app.ticket_as(Some(&refreshed.access)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // The session's access tokens end with it, and so does a stream opened with one as a
    // Bearer credential; the user's other session goes on.
    assert_eq!(app.standing(&elsewhere).await, Standing::Valid);
    assert_eq!(app.standing(&bearer).await, Standing::Revoked);
    let r = app.me(Some(&tokens.access)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(app.me(Some(&other.access)).await.status, StatusCode::OK);

    // Presenting a spent refresh token revokes its family: that session's tickets end too.
    let third = app.login_ok("ada@example.com", PASSWORD).await;
    let reused = app
        .open(None, Some(&app.ticket_ok(&third.access).await))
        .await
        .expect("open");
    let _ = Tokens::from_resp(&app.refresh(&third.refresh).await);
    let r = app.refresh(&third.refresh).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    moved(&mut changes, "a refresh-token reuse").await;
    assert_eq!(app.standing(&reused).await, Standing::Revoked);
    assert_eq!(app.standing(&elsewhere).await, Standing::Valid);
}

#[tokio::test]
async fn revoking_an_api_key_ends_its_streams_and_moves_the_watch() {
    let app = TestApp::spawn().await;
    let (id, key) = app.admin_key().await;
    let direct = app.open(Some(&key), None).await.expect("open");
    let ticket = app.ticket_ok(&key).await;
    let ticketed = app.open(None, Some(&ticket)).await.expect("open");
    let admin = app.open(Some(&app.admin_token), None).await.expect("open");
    let mut changes = app.state.auth().credential_changes();
    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    moved(&mut changes, "a key revocation").await;
    assert_eq!(app.standing(&direct).await, Standing::Revoked);
    assert_eq!(app.standing(&ticketed).await, Standing::Revoked);
    assert_eq!(app.standing(&admin).await, Standing::Valid);
    assert!(app.open(None, Some(&ticket)).await.is_err());
}

#[tokio::test]
async fn a_role_change_or_a_deleted_account_ends_its_streams() {
    let app = TestApp::spawn().await;
    let (boss, _) = make_user(&app.state, "boss@example.com", Role::Admin).await;
    let (bob, _) = app.user("bob@example.com").await;
    let boss_tokens = app.login_ok("boss@example.com", PASSWORD).await;
    let bob_tokens = app.login_ok("bob@example.com", PASSWORD).await;
    let mut streams = Vec::new();
    for access in [&boss_tokens.access, &bob_tokens.access] {
        let ticket = app.ticket_ok(access).await;
        streams.push(app.open(None, Some(&ticket)).await.expect("open"));
        streams.push(app.open(Some(access), None).await.expect("open"));
    }
    // The boss's API key, demoted with its owner.
    let r = app
        .create_key(&boss_tokens.access, &json!({"name": "boss feed"}))
        .await;
    let key = r.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let key_stream = app.open(Some(&key), None).await.expect("open");
    assert_eq!(key_stream.principal().role(), Role::Admin);
    let mut changes = app.state.auth().credential_changes();

    // Demoted from admin to user: every stream of the boss ends (none goes on without
    // the admin-only fields it was opened for).
    let r = app
        .call_as(
            Method::PATCH,
            &format!("/api/v1/users/{}", boss.id),
            Some(&app.admin_token),
            Some(&json!({"role": "user"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    moved(&mut changes, "a role change").await;
    assert_eq!(app.standing(&streams[0]).await, Standing::Revoked);
    assert_eq!(app.standing(&streams[1]).await, Standing::Revoked);
    assert_eq!(app.standing(&key_stream).await, Standing::Revoked);
    assert_eq!(app.standing(&streams[2]).await, Standing::Valid);
    assert_eq!(app.standing(&streams[3]).await, Standing::Valid);

    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/users/{}", bob.id),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    moved(&mut changes, "a deletion").await;
    assert_eq!(app.standing(&streams[2]).await, Standing::Revoked);
    assert_eq!(app.standing(&streams[3]).await, Standing::Revoked);
}

#[tokio::test]
async fn another_instances_logout_reaches_this_ones_streams() {
    // Instances share a database only on PostgreSQL.
    let Some(server) = crate::helpers::postgres_server("another_instances_logout") else {
        return;
    };
    let db = crate::helpers::TestDb::postgres(&server).await;
    let app = TestApp::spawn_on(
        db,
        Vec::new(),
        plinth_server::ServerConfig::default(),
        test_auth_config(),
    )
    .await;
    let peer = app.spawn_peer().await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.ticket_ok(&tokens.access).await;
    // Made on one instance, opened on the other: they share the signing key.
    let stream = peer.open(None, Some(&ticket)).await.expect("open");
    let (id, key) = app.admin_key().await;
    let key_stream = peer.open(Some(&key), None).await.expect("open");
    assert_eq!(peer.standing(&stream).await, Standing::Valid);
    let mut changes = peer.state.auth().credential_changes();
    assert_eq!(
        app.logout(&tokens.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    moved(&mut changes, "another instance's logout").await;
    assert_eq!(peer.standing(&stream).await, Standing::Revoked);
    assert_eq!(peer.standing(&key_stream).await, Standing::Valid);
    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    moved(&mut changes, "another instance's key revocation").await;
    assert_eq!(peer.standing(&key_stream).await, Standing::Revoked);
}

/// The ticket endpoint is in the OpenAPI document with its named schema.
#[tokio::test]
async fn the_ticket_endpoint_is_documented() {
    let app = TestApp::spawn().await;
    let r = app.get_path("/api/v1/openapi.json").await;
    let doc: &Value = &r.body;
    let op = &doc["paths"][TICKET_PATH]["post"];
    assert!(op.is_object(), "no POST {TICKET_PATH} in the document");
    let schema = op["responses"]["201"]["content"]["application/json"]["schema"].to_string();
    assert!(schema.contains("StreamTicket"), "{schema}");
    assert!(
        doc["components"]["schemas"]["StreamTicket"].is_object(),
        "the schema is named"
    );
}

#[tokio::test]
async fn a_watched_stream_ends_on_revocation_even_one_made_before_the_watch_began() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let watch = |stream: StreamAuth| {
        let store = std::sync::Arc::clone(app.state.store());
        tokio::spawn(app.state.auth().watch_stream(store, stream))
    };
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let stream = app
        .open(None, Some(&app.ticket_ok(&tokens.access).await))
        .await
        .expect("open");
    let guest = watch(app.open(None, None).await.expect("a guest"));
    let bearer = watch(app.open(Some(&tokens.access), None).await.expect("open"));
    let watched = watch(stream.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!watched.is_finished(), "nothing changed yet");
    assert_eq!(
        app.logout(&tokens.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), watched)
        .await
        .expect("the watch ends after the logout")
        .expect("no panic");
    assert_eq!(ended, Standing::Revoked);
    // Opened before the logout, watched only after it: the change is not missed.
    let late = tokio::time::timeout(Duration::from_secs(10), watch(stream))
        .await
        .expect("the watch ends at once")
        .expect("no panic");
    assert_eq!(late, Standing::Revoked);
    // A Bearer token's stream ends with the token's session too; a guest's goes on.
    let bearer = tokio::time::timeout(Duration::from_secs(10), bearer)
        .await
        .expect("the Bearer stream's watch ends too")
        .expect("no panic");
    assert_eq!(bearer, Standing::Revoked);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!guest.is_finished());
    guest.abort();
}

#[tokio::test]
async fn a_watched_stream_ends_when_its_token_expires() {
    let mut auth = test_auth_config();
    // Two seconds: claims hold whole seconds, so the token has at least one left.
    auth.access_ttl = Duration::from_secs(2);
    let app = TestApp::spawn_full(Vec::new(), plinth_server::ServerConfig::default(), auth).await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let stream = app
        .open(None, Some(&app.ticket_ok(&tokens.access).await))
        .await
        .expect("open");
    let store = std::sync::Arc::clone(app.state.store());
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        app.state.auth().watch_stream(store, stream),
    )
    .await
    .expect("the watch ends at the token's expiry");
    assert_eq!(ended, Standing::Expired);
}

//! The change feed under attack, over real HTTP on the engine of the run: guests and other
//! users after records they may not read, stolen tickets, credentials revoked, demoted,
//! deleted or expired while a stream is open, hostile queries and too many connections.

use crate::helpers::sse::{Event, Sse, WAIT};
use crate::helpers::{
    PASSWORD, Resp, TestApp, Tokens, assert_error, decls, id_of, make_user, test_auth_config,
};
use plinth_core::Role;
use plinth_server::{RealtimeConfig, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// `diary`: users read only their own entries, guests nothing; `book`: the default policy,
/// with an admin-only field.
fn models() -> Vec<plinth_core::ModelDecl> {
    decls(json!([
        {"name": "diary", "user_read": "own", "guest_read": false,
         "fields": [{"name": "mood", "type": "string"}]},
        {"name": "book", "fields": [
            {"name": "pages", "type": "integer"},
            {"name": "cost", "type": "integer", "admin_only": true}
        ]}
    ]))
}

async fn spawn(realtime: RealtimeConfig) -> TestApp {
    let config = ServerConfig {
        realtime,
        ..ServerConfig::default()
    };
    TestApp::spawn_full(models(), config, test_auth_config()).await
}

impl TestApp {
    /// A ticket made from `credential`.
    async fn stream_ticket(&self, credential: &str) -> String {
        let r = self
            .call_as(
                Method::POST,
                "/api/v1/events/ticket",
                Some(credential),
                None,
            )
            .await;
        r.data(StatusCode::CREATED)["ticket"]
            .as_str()
            .expect("a ticket")
            .to_owned()
    }

    /// A stream opened as `credential` (or with `?ticket=` in `path`), once live.
    async fn live(&self, path: &str, credential: Option<&str>) -> Sse {
        let mut sse = self.subscribe_as(path, credential, None).await;
        sse.until_ready().await;
        sse
    }

    /// A stream request that must be refused; its answer.
    async fn refused_stream(&self, path: &str, credential: Option<&str>) -> Resp {
        self.call_as(Method::GET, path, credential, None).await
    }
}

/// The stream's next event is `end` for `reason`, and then it closes.
async fn ends_with(sse: &mut Sse, reason: &str) {
    let event = sse.next().await;
    assert_eq!(event.event, "end", "{event:?}");
    assert_eq!(event.data, json!({ "reason": reason }));
    assert_eq!(sse.next_within(WAIT).await, None, "closed after `end`");
}

/// The next change event of a stream.
async fn change(sse: &mut Sse) -> Event {
    sse.changes(1).await.remove(0)
}

async fn metrics(app: &TestApp) -> String {
    let r = app
        .send(app.request_as(Method::GET, "/metrics", None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.raw).expect("text")
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test]
async fn no_credential_gets_nothing_of_an_own_model_and_no_user_anothers_records() {
    let app = spawn(RealtimeConfig::default()).await;
    // A guest: refused like the list (the model keeps guests out), on both endpoints.
    let list = app.refused_stream("/api/v1/diary", None).await;
    assert_error(&list, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    for path in ["/api/v1/diary/events", "/api/v1/events?models=book,diary"] {
        let r = app.refused_stream(path, None).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        assert_eq!(
            r.body["error"]["message"], list.body["error"]["message"],
            "{path}"
        );
    }
    let (_, ada) = app.user("ada@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let mut own = app.live("/api/v1/diary/events", Some(&ada)).await;
    let mut both = app
        .live("/api/v1/events?models=diary,book", Some(&ada))
        .await;
    let bobs = app
        .create_as("diary", &bob, &json!({"name": "bob's", "mood": "sly"}))
        .await;
    // A stream narrowed to bob's record by id, and to his field value, gets nothing either.
    let mut by_id = app
        .live(
            &format!("/api/v1/diary/events?id={}", id_of(&bobs)),
            Some(&ada),
        )
        .await;
    let mut by_mood = app.live("/api/v1/diary/events?mood=sly", Some(&ada)).await;
    let r = app
        .call_as(
            Method::PATCH,
            &format!("/api/v1/diary/{}", id_of(&bobs)),
            Some(&bob),
            Some(&json!({"mood": "sly"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let adas = app
        .create_as("diary", &ada, &json!({"name": "ada's", "mood": "sly"}))
        .await;
    // The first event each stream gets is ada's own: bob's create and update never came.
    for sse in [&mut own, &mut both, &mut by_mood] {
        let event = change(sse).await;
        assert_eq!(event.event, "created");
        assert_eq!(event.data["record"]["id"], adas["id"], "{event:?}");
    }
    // A book: admin-only fields never reach a user.
    let book = app
        .create_as(
            "book",
            &app.admin_token,
            &json!({"name": "b", "pages": 1, "cost": 9}),
        )
        .await;
    let event = change(&mut both).await;
    assert_eq!(event.data["record"]["id"], book["id"]);
    assert!(event.data["record"].get("cost").is_none(), "{event:?}");
    assert!(!String::from_utf8_lossy(&both.raw).contains("bob's"));
    // The stream by bob's id stays silent through all of it (a heartbeat at most).
    let quiet = tokio::time::timeout(Duration::from_millis(300), by_id.next()).await;
    assert!(quiet.is_err(), "a stream of bob's record sent {quiet:?}");
}

#[tokio::test]
async fn a_stolen_ticket_stops_working_at_logout_and_its_stream_ends() {
    let app = spawn(RealtimeConfig::default()).await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.stream_ticket(&tokens.access).await;
    let path = format!("/api/v1/book/events?ticket={ticket}");
    let mut sse = app.live(&path, None).await;
    let mut other = app
        .live(&format!("/api/v1/events?models=book&ticket={ticket}"), None)
        .await;
    let book = app
        .create_as("book", &app.admin_token, &json!({"name": "b", "cost": 3}))
        .await;
    for sse in [&mut sse, &mut other] {
        let event = change(sse).await;
        assert_eq!(event.data["record"]["id"], book["id"]);
        assert!(
            event.data["record"].get("cost").is_none(),
            "a user's ticket"
        );
    }
    // A ticket is for the stream endpoints only: elsewhere it is no credential.
    let r = app
        .refused_stream(&format!("/api/v1/book?ticket={ticket}"), None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let r = app
        .refused_stream("/api/v1/book/events", Some(&ticket))
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // A ticket and a header at once are refused.
    let r = app.refused_stream(&path, Some(&tokens.access)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    assert_eq!(
        app.logout(&tokens.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    ends_with(&mut sse, "credential_revoked").await;
    ends_with(&mut other, "credential_revoked").await;
    let r = app.refused_stream(&path, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let text = metrics(&app).await;
    assert_eq!(
        metric(
            &text,
            "plinth_realtime_subscribers_cut_total{reason=\"credential_revoked\"}"
        ),
        2.0
    );
    assert_eq!(metric(&text, "plinth_realtime_subscriptions"), 0.0);
}

#[tokio::test]
async fn revoked_keys_demoted_admins_and_deleted_users_lose_their_streams() {
    let app = spawn(RealtimeConfig::default()).await;
    let r = app
        .create_key(&app.admin_token, &json!({"name": "feed"}))
        .await;
    let data = r.data(StatusCode::CREATED);
    let (key_id, key) = (id_of(data), data["key"].as_str().expect("key").to_owned());
    let mut by_key = app.live("/api/v1/book/events", Some(&key)).await;
    let key_ticket = app.stream_ticket(&key).await;
    let mut by_key_ticket = app
        .live(&format!("/api/v1/book/events?ticket={key_ticket}"), None)
        .await;
    let (boss, _) = make_user(&app.state, "boss@example.com", Role::Admin).await;
    let boss_tokens = app.login_ok("boss@example.com", PASSWORD).await;
    let mut boss_sse = app
        .live("/api/v1/book/events", Some(&boss_tokens.access))
        .await;
    let (bob, _) = app.user("bob@example.com").await;
    let bob_tokens: Tokens = app.login_ok("bob@example.com", PASSWORD).await;
    let bob_ticket = app.stream_ticket(&bob_tokens.access).await;
    let mut bob_sse = app
        .live(&format!("/api/v1/book/events?ticket={bob_ticket}"), None)
        .await;
    let mut admin_sse = app
        .live("/api/v1/book/events", Some(&app.admin_token))
        .await;

    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ends_with(&mut by_key, "credential_revoked").await;
    ends_with(&mut by_key_ticket, "credential_revoked").await;

    // Demoted: the stream ends rather than go on without the admin-only fields.
    let r = app
        .call_as(
            Method::PATCH,
            &format!("/api/v1/users/{}", boss.id),
            Some(&app.admin_token),
            Some(&json!({"role": "user"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    ends_with(&mut boss_sse, "credential_revoked").await;

    let r = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/users/{}", bob.id),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ends_with(&mut bob_sse, "credential_revoked").await;

    // Nobody else's stream ended: the admin's still gets changes.
    let book = app
        .create_as("book", &app.admin_token, &json!({"name": "b", "cost": 1}))
        .await;
    let event = change(&mut admin_sse).await;
    assert_eq!(event.data["record"]["id"], book["id"]);
    assert_eq!(event.data["record"]["cost"], json!(1));
}

#[tokio::test]
async fn a_stream_ends_when_its_access_token_expires() {
    let mut auth = test_auth_config();
    // Two seconds: claims hold whole seconds, so the token has at least one left.
    auth.access_ttl = Duration::from_secs(2);
    let app = TestApp::spawn_full(models(), ServerConfig::default(), auth).await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let ticket = app.stream_ticket(&tokens.access).await;
    let mut sse = app
        .live(&format!("/api/v1/book/events?ticket={ticket}"), None)
        .await;
    ends_with(&mut sse, "credential_expired").await;
    let text = metrics(&app).await;
    assert_eq!(
        metric(
            &text,
            "plinth_realtime_subscribers_cut_total{reason=\"credential_expired\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn hostile_positions_ids_models_and_queries_are_refused() {
    let app = spawn(RealtimeConfig::default()).await;
    let last_event_id = |value: &'static str| {
        app.request(Method::GET, "/api/v1/book/events")
            .header("last-event-id", value)
    };
    for value in [
        "garbage",
        "-1",
        "99999999999999999999999",
        "1e3",
        " ",
        "0x10",
    ] {
        let r = app.send(last_event_id(value)).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, ["Last-Event-ID"], "{value:?}");
    }
    // The largest position there is: newer than anything held, so a reset, then live.
    let mut sse = app
        .subscribe_as(
            "/api/v1/book/events",
            Some(&app.admin_token),
            Some(i64::MAX),
        )
        .await;
    let (before, position) = sse.until_ready().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].event, "reset");
    assert_eq!(before[0].data["reason"], json!("unknown"));
    assert_eq!(before[0].data["position"], json!(position));
    for (path, field) in [
        ("/api/v1/book/events?after=-5", "after"),
        ("/api/v1/book/events?after=99999999999999999999", "after"),
        ("/api/v1/book/events?ticket=a&ticket=b", "ticket"),
        ("/api/v1/events?models=book,", "models"),
        ("/api/v1/events?models=", "models"),
        ("/api/v1/events?models=book&models=book", "models"),
    ] {
        let r = app.get_path(path).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert!(fields.contains(&field.to_owned()), "{path}: {:?}", r.body);
    }
    let ids: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let r = app
        .get_path(&format!("/api/v1/book/events?id={}", ids.join(",")))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["id"]
    );
    let models: Vec<&str> = ["book"; 33].to_vec();
    let many: Vec<String> = (0..33).map(|i| format!("m{i}")).collect();
    for list in [many.join(","), format!("{},x", many.join(","))] {
        let r = app.get_path(&format!("/api/v1/events?models={list}")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    // The same model named 33 times is one model: one stream, each change once.
    let (mut dup, _) = app
        .subscribe(&format!("/api/v1/events?models={}", models.join(",")))
        .await;
    let book = app
        .create_as("book", &app.admin_token, &json!({"name": "once"}))
        .await;
    let event = change(&mut dup).await;
    assert_eq!(event.data["record"]["id"], book["id"]);
    let again = app
        .create_as("book", &app.admin_token, &json!({"name": "twice"}))
        .await;
    assert_eq!(change(&mut dup).await.data["record"]["id"], again["id"]);
    // A 10 kB query string of junk, and a 10 kB filter value, are refused.
    let junk = format!("/api/v1/book/events?{}", "x=1&".repeat(2_500));
    let r = app.get_path(&junk).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let long = format!("/api/v1/book/events?pages={}", "9".repeat(10_000));
    let r = app.get_path(&long).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["pages"]
    );
}

#[tokio::test]
async fn streams_past_the_limits_are_refused_and_places_free_on_disconnect() {
    let app = spawn(RealtimeConfig {
        max_per_principal: 2,
        max_total: 4,
        ..RealtimeConfig::default()
    })
    .await;
    app.user("ada@example.com").await;
    let tokens = app.login_ok("ada@example.com", PASSWORD).await;
    let key = app
        .create_key(&tokens.access, &json!({"name": "ada's"}))
        .await
        .data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    // One user: a token and a key of hers share her limit.
    let first = app.live("/api/v1/book/events", Some(&tokens.access)).await;
    let second = app.live("/api/v1/events?models=book", Some(&key)).await;
    let ticket = app.stream_ticket(&tokens.access).await;
    let r = app
        .refused_stream(&format!("/api/v1/book/events?ticket={ticket}"), None)
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    // Guests count by address: two, then refused.
    let g1 = app.live("/api/v1/book/events", None).await;
    let g2 = app.live("/api/v1/book/events", None).await;
    let r = app.refused_stream("/api/v1/book/events", None).await;
    // The total (4) is reached first: 503 for anyone, the admin too.
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    let r = app
        .refused_stream("/api/v1/book/events", Some(&app.admin_token))
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(open_streams(&app).await, 4.0);
    // A client that goes away frees its place: ada's third stream now opens.
    drop(first);
    settles_at(&app, 3.0).await;
    let third = app
        .live(&format!("/api/v1/book/events?ticket={ticket}"), None)
        .await;
    let r = app
        .refused_stream(&format!("/api/v1/book/events?ticket={ticket}"), None)
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    drop((g1, g2));
    settles_at(&app, 2.0).await;
    let _g3 = app.live("/api/v1/book/events", None).await;
    let _g4 = app.live("/api/v1/book/events", None).await;
    drop((second, third));
    settles_at(&app, 2.0).await;
    // The guests' address is at its limit, the total is not.
    let r = app.refused_stream("/api/v1/book/events", None).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let _admin = app
        .live("/api/v1/book/events", Some(&app.admin_token))
        .await;
}

/// `plinth_realtime_subscriptions` now.
async fn open_streams(app: &TestApp) -> f64 {
    metric(&metrics(app).await, "plinth_realtime_subscriptions")
}

/// Waits until `n` streams are open: a closed connection is noticed by the server a
/// moment after the client lets go, not at once.
async fn settles_at(app: &TestApp, n: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while open_streams(app).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {} streams open, not {n}, after disconnects",
            open_streams(app).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

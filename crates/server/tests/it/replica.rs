//! A read replica (`DATABASE_READ_URL`): gets and lists are served by a streaming replica,
//! writes go to the primary, and a principal that has just written reads from the primary
//! for the read-your-own-writes window. Authentication lookups and the reads a write makes
//! first always use the primary.
//!
//! The test runs a primary and a `pg_basebackup` replica of its own and pauses WAL replay
//! on the replica, so "on the replica or not" is a fact the test controls rather than a
//! race. It needs the PostgreSQL binaries (not `PLINTH_TEST_POSTGRES`) and is skipped, with
//! the reason printed, without them; under `CI=true` or `PLINTH_REQUIRE_POSTGRES=1` it fails
//! instead.

use crate::helpers::cluster::{PgCluster, blocking, pg_binaries};
use crate::helpers::{Resp, TestApp, assert_error, id_of, make_user};
use plinth_core::{RecordId, Role};
use plinth_store::ReadFrom;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The read-your-own-writes window the server runs with: long enough for a handful of
/// requests, short enough to wait out.
const WINDOW: Duration = Duration::from_secs(3);
/// How long a record may take to show on the replica once replay resumes.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(5);
/// The database, created on the primary before the replica is cloned from it.
const DATABASE: &str = "plinth";

/// `GET /api/v1/resource/{id}` as `credential` (or a guest).
async fn get_as(app: &TestApp, credential: Option<&str>, id: &str) -> Resp {
    app.call_as(
        Method::GET,
        &format!("/api/v1/resource/{id}"),
        credential,
        None,
    )
    .await
}

/// The ids `GET /api/v1/resource` returns to `credential` (or a guest), sorted; must succeed.
async fn listed(app: &TestApp, credential: Option<&str>) -> Vec<String> {
    let r = app
        .call_as(Method::GET, "/api/v1/resource?limit=200", credential, None)
        .await;
    let mut ids: Vec<String> = r
        .data(StatusCode::OK)
        .as_array()
        .expect("a list")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(r.body["page"]["next_cursor"], Value::Null, "{}", r.body);
    ids.sort();
    ids
}

/// Whether the record is on the primary and on the replica, asked of the store directly.
async fn stored(app: &TestApp, id: &str) -> (bool, bool) {
    let model = app.state.model("resource").expect("the resource model");
    let id = RecordId::parse(id).expect("a record id");
    let mut found = [false; 2];
    for (slot, from) in found.iter_mut().zip([ReadFrom::Primary, ReadFrom::Replica]) {
        *slot = app
            .state
            .store()
            .get_from(model, id, from)
            .await
            .expect("read the record")
            .is_some();
    }
    (found[0], found[1])
}

/// Set (to anything but empty or `0`) where PostgreSQL tests must run, not skip.
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_to_the_replica_except_a_writers_own_within_the_window() {
    let test = "reads_go_to_the_replica_except_a_writers_own_within_the_window";
    let Some(bin) = pg_binaries(test) else {
        assert!(
            !plinth_testkit::postgres_required(),
            "{test} cannot run (see above), and {} or CI forbids skipping it",
            plinth_testkit::REQUIRE_ENV
        );
        return;
    };
    // Declared before the app, so the app (and its database) goes first when the test ends,
    // and both clusters are stopped and removed even when an assertion fails (the replica
    // before the primary).
    let primary = blocking(|| PgCluster::primary(&bin));
    blocking(|| primary.psql("postgres", &format!("CREATE DATABASE {DATABASE}")));
    let replica = blocking(|| PgCluster::replica_of(&primary));
    let app = TestApp::spawn_with_replica(&primary, &replica, DATABASE, WINDOW).await;
    let (_, a) = app.user("a@example.com").await;
    let (_, b) = app.user("b@example.com").await;
    blocking(|| replica.wait_for_replay_of(&primary));
    assert!(listed(&app, Some(&b)).await.is_empty());

    // (1) With replay paused, a new record is on the primary only. Its writer reads it at
    // once (from the primary); everyone else reads from the replica and does not see it.
    blocking(|| replica.pause_replay());
    let record = app
        .create_as("resource", &a, &json!({"name": "fresh"}))
        .await;
    let written = Instant::now();
    let id = id_of(&record);
    let own = get_as(&app, Some(&a), &id).await;
    assert_eq!(own.data(StatusCode::OK), &record);
    assert_eq!(listed(&app, Some(&a)).await, [id.as_str()]);
    assert!(
        written.elapsed() < WINDOW,
        "the writer's reads took {:?}, past the window; the check above proved nothing",
        written.elapsed()
    );
    assert_eq!(stored(&app, &id).await, (true, false));
    for (who, credential) in [
        ("user b", Some(b.as_str())),
        ("admin", Some(app.admin_token.as_str())),
        ("guest", None),
    ] {
        let r = get_as(&app, credential, &id).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}: {}", r.body);
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(listed(&app, credential).await.is_empty(), "{who}");
    }

    // (2) Once the window has passed, the writer reads from the replica too.
    tokio::time::sleep((written + WINDOW + Duration::from_millis(250)) - Instant::now()).await;
    let r = get_as(&app, Some(&a), &id).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert!(listed(&app, Some(&a)).await.is_empty());

    // (3) Replay resumes: the record reaches the replica and every reader.
    blocking(|| replica.resume_replay());
    let resumed = Instant::now();
    loop {
        let r = get_as(&app, Some(&b), &id).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.data(StatusCode::OK), &record);
            break;
        }
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(
            resumed.elapsed() < CATCH_UP_WITHIN,
            "user b still gets 404 {:?} after replay resumed",
            resumed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored(&app, &id).await, (true, true));
    assert_eq!(listed(&app, Some(&b)).await, [id.as_str()]);
    assert_eq!(listed(&app, None).await, [id.as_str()]);
    assert_eq!(
        get_as(&app, Some(&a), &id).await.data(StatusCode::OK),
        &record
    );

    // (4) Replay paused again. Writes still succeed (they go to the primary), and so do
    // authentication lookups of what exists only there.
    blocking(|| replica.pause_replay());
    // A user created now is only on the primary; its token and its API key still work.
    let (_, c) = make_user(&app.state, "c@example.com", Role::User).await;
    assert_eq!(listed(&app, Some(&c)).await, [id.as_str()]);
    let key = app.create_key(&c, &json!({"name": "replica"})).await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("the key")
        .to_owned();
    assert_eq!(listed(&app, Some(&key)).await, [id.as_str()]);

    // User b writes and reads its own write at once, lists included (from the primary).
    let second = app
        .create_as("resource", &b, &json!({"name": "second"}))
        .await;
    let b_wrote = Instant::now();
    let second_id = id_of(&second);
    let r = get_as(&app, Some(&b), &second_id).await;
    assert_eq!(r.data(StatusCode::OK), &second);
    assert_eq!(
        listed(&app, Some(&b)).await,
        sorted(vec![id.clone(), second_id.clone()])
    );
    assert!(
        b_wrote.elapsed() < WINDOW,
        "user b's reads took {:?}, past the window",
        b_wrote.elapsed()
    );
    assert_eq!(stored(&app, &second_id).await, (true, false));
    // User a, whose last write is older than the window, reads from the replica.
    let r = get_as(&app, Some(&a), &second_id).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(listed(&app, Some(&a)).await, [id.as_str()]);
    // The admin has not written, yet may update the new record: a write reads the current
    // row from the primary. Then it reads its own update.
    let r = get_as(&app, Some(&app.admin_token), &second_id).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = app
        .patch(
            "resource",
            &second_id,
            &json!({"name": "second, edited"}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], json!(2));
    let edited = app.get_ok("resource", &second_id).await;
    assert_eq!(edited, body["data"]);
    assert_eq!(edited["name"], json!("second, edited"));

    // Replay resumes: everyone sees both records, the edit included.
    blocking(|| replica.resume_replay());
    blocking(|| replica.wait_for_replay_of(&primary));
    assert_eq!(stored(&app, &second_id).await, (true, true));
    let r = get_as(&app, Some(&a), &second_id).await;
    assert_eq!(r.data(StatusCode::OK), &edited);
    assert_eq!(
        listed(&app, Some(&a)).await,
        sorted(vec![id.clone(), second_id.clone()])
    );
    assert_eq!(listed(&app, None).await, sorted(vec![id, second_id]));
}

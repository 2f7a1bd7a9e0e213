//! `plinth.replica_reads`, the flag in front of read-replica reads: absent, a caller's gets
//! go to the replica (as without flags); off, to the primary; rolled out, to the replica
//! only for the callers it is on for. Changed at run time, no restart.
//!
//! Runs a primary and a paused replica of its own (see `replica.rs`): a record on the
//! primary only is found (200) exactly when a read goes to the primary. Skipped, with the
//! reason printed, without the PostgreSQL binaries.

use crate::helpers::cluster::{PgCluster, blocking, pg_binaries};
use crate::helpers::{TestApp, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

const DATABASE: &str = "plinth";

/// The status of `GET /api/v1/resource/{id}` as `credential`.
async fn status(app: &TestApp, credential: &str, id: &str) -> StatusCode {
    app.call_as(
        Method::GET,
        &format!("/api/v1/resource/{id}"),
        Some(credential),
        None,
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replica_reads_flag_steers_reads_without_a_restart() {
    let test = "the_replica_reads_flag_steers_reads_without_a_restart";
    let Some(bin) = pg_binaries(test) else {
        assert!(
            !plinth_testkit::postgres_required(),
            "{test} cannot run (see above), and {} or CI forbids skipping it",
            plinth_testkit::REQUIRE_ENV
        );
        return;
    };
    let primary = blocking(|| PgCluster::primary(&bin));
    blocking(|| primary.psql("postgres", &format!("CREATE DATABASE {DATABASE}")));
    let replica = blocking(|| PgCluster::replica_of(&primary));
    // No read-your-own-writes window: only the flag sends a read to the primary.
    let app = TestApp::spawn_with_replica(&primary, &replica, DATABASE, Duration::ZERO).await;
    let (ann, ann_token) = app.user("ann@example.com").await;
    let (_, bob_token) = app.user("bob@example.com").await;
    blocking(|| replica.wait_for_replay_of(&primary));
    blocking(|| replica.pause_replay());
    let id = id_of(
        &app.create_as("resource", &app.admin_token, &json!({"name": "fresh"}))
            .await,
    );

    // No flag: replica reads, the record is not there yet.
    assert_eq!(status(&app, &ann_token, &id).await, StatusCode::NOT_FOUND);
    // Off: every read goes to the primary.
    app.flag_ok(&json!({"key": "plinth.replica_reads", "enabled": false}))
        .await;
    assert_eq!(status(&app, &ann_token, &id).await, StatusCode::OK);
    assert_eq!(status(&app, &bob_token, &id).await, StatusCode::OK);
    // Rolled out to ann only: she reads from the replica, bob from the primary.
    app.patch_flag_ok(
        "plinth.replica_reads",
        &json!({"enabled": true, "rollout": 0, "allow": [format!("user:{}", ann.id)]}),
    )
    .await;
    assert_eq!(status(&app, &ann_token, &id).await, StatusCode::NOT_FOUND);
    assert_eq!(status(&app, &bob_token, &id).await, StatusCode::OK);
    // Everyone: replica reads again.
    app.patch_flag_ok("plinth.replica_reads", &json!({"rollout": 100}))
        .await;
    assert_eq!(status(&app, &bob_token, &id).await, StatusCode::NOT_FOUND);
    // Off again, then loading the flags fails (the table is away, and a notice asks for a
    // load): the switch stays off.
    app.patch_flag_ok("plinth.replica_reads", &json!({"enabled": false}))
        .await;
    assert_eq!(status(&app, &bob_token, &id).await, StatusCode::OK);
    blocking(|| {
        primary.psql(
            DATABASE,
            "ALTER TABLE _plinth_flags RENAME TO _plinth_flags_away; \
             SELECT pg_notify('plinth_invalidate', 'flags')",
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&app, &bob_token, &id).await,
        StatusCode::OK,
        "still off"
    );
    blocking(|| {
        primary.psql(
            DATABASE,
            "ALTER TABLE _plinth_flags_away RENAME TO _plinth_flags",
        )
    });
    // Deleted while off: as without flags (the replica).
    let r = app
        .flags_as(
            Method::DELETE,
            "/plinth.replica_reads",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(status(&app, &bob_token, &id).await, StatusCode::NOT_FOUND);
    blocking(|| replica.resume_replay());
}

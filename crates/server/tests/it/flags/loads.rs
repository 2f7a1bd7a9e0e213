//! How often an instance loads its flags, counted by `/metrics`
//! (`store_operation_duration_seconds_count{operation="list_flags"}`): a PATCH that changes
//! nothing loads nothing; evaluations that find nothing held share one load.

use crate::helpers::{TestApp, TestDb, test_auth_config};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How many times this instance has loaded the flags.
async fn loads(app: &TestApp) -> f64 {
    let r = app
        .send(app.request_as(Method::GET, "/metrics", None))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&r.raw)
    );
    let text = String::from_utf8(r.raw).expect("UTF-8");
    text.lines()
        .filter(|l| {
            l.starts_with("store_operation_duration_seconds_count{")
                && l.contains("operation=\"list_flags\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The load count once it stops moving (on PostgreSQL a change's notice reaches this
/// instance too, and has it load the flags again shortly after).
async fn settled(app: &TestApp) -> f64 {
    let mut last = loads(app).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = loads(app).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn a_patch_that_changes_nothing_loads_nothing() {
    let app = TestApp::spawn().await;
    app.flag_ok(&json!({"key": "beta", "enabled": true, "rollout": 50}))
        .await;
    let before = settled(&app).await;
    let same = app.patch_flag_ok("beta", &json!({"rollout": 50})).await;
    assert_eq!(same["version"], 1);
    assert_eq!(
        settled(&app).await,
        before,
        "no load after a change to nothing"
    );
    app.patch_flag_ok("beta", &json!({"rollout": 60})).await;
    assert!(loads(&app).await > before, "a load after a change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_that_find_nothing_held_share_one_load() {
    // The first load (at start) fails: the table is away.
    let db = TestDb::new().await;
    db.sql("ALTER TABLE _plinth_flags RENAME TO _plinth_flags_away")
        .await;
    let app = TestApp::spawn_on(db, Vec::new(), ServerConfig::default(), test_auth_config()).await;
    let (_, token) = app.user("ann@example.com").await;
    app.database()
        .sql("ALTER TABLE _plinth_flags_away RENAME TO _plinth_flags")
        .await;
    let before = loads(&app).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let req = app.request_as(Method::GET, "/api/v1/flags/evaluate", Some(&token));
        calls.spawn(async move {
            let r = req.send().await.expect("an answer");
            (r.status(), r.json::<Value>().await.expect("JSON"))
        });
    }
    while let Some(answer) = calls.join_next().await {
        let (status, body) = answer.expect("the call");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], json!({}));
    }
    let took = loads(&app).await - before;
    // One for the evaluations; at most one more by the reloader retrying meanwhile.
    assert!(took <= 2.0, "{took} loads for 20 evaluations at once");
}

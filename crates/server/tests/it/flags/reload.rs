//! What an instance holds when loading the flags fails, and how a change it was never told
//! of reaches it: a failed load keeps the flags last loaded (a kill switch stays off) and is
//! retried; every `flags.reload_seconds` the flags are loaded again, so a change made in the
//! database without a notice (a LISTEN connection lost quietly, a hand-made fix) is seen.

use crate::helpers::TestApp;
use plinth_server::ServerConfig;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The reload interval of these tests.
const RELOAD: Duration = Duration::from_secs(1);

/// Polls the evaluation as `credential` until it is `want`; fails after `within`.
async fn seen(app: &TestApp, credential: &str, want: &Value, within: Duration) -> Duration {
    let since = Instant::now();
    loop {
        let got = app.evaluate(Some(credential)).await;
        if &got == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "still {got} instead of {want} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_keeps_the_flags_and_a_change_without_notice_is_seen_after_the_reload() {
    let config = ServerConfig {
        flags_reload: RELOAD,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let (_, token) = app.user("ann@example.com").await;
    app.flag_ok(&json!({"key": "beta", "enabled": true, "rollout": 100}))
        .await;
    app.flag_ok(&json!({"key": "gamma", "enabled": true, "rollout": 100}))
        .await;
    let both = json!({"beta": true, "gamma": true});
    assert_eq!(app.evaluate(Some(&token)).await, both);

    // Every load fails from here: the table is gone under the running server. The reloads
    // (each second, then retried) fail, and the flags held stay as they were.
    app.database()
        .sql("ALTER TABLE _plinth_flags RENAME TO _plinth_flags_away")
        .await;
    tokio::time::sleep(RELOAD * 3).await;
    for _ in 0..5 {
        assert_eq!(app.evaluate(Some(&token)).await, both, "the flags held");
    }

    // Back, and changed in the database directly (no notice, no request here): the next
    // reload sees it.
    app.database()
        .sql(
            "ALTER TABLE _plinth_flags_away RENAME TO _plinth_flags; \
             UPDATE _plinth_flags SET enabled = 0, version = version + 1 WHERE key = 'beta'",
        )
        .await;
    let took = seen(&app, &token, &json!({"gamma": true}), RELOAD * 5).await;
    eprintln!("a change made without a notice was seen after {took:?}");
}

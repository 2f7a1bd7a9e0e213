//! `GET /api/v1/metrics/series`: the console's request rate, error rate and p99 charts.
//! Requests are counted in the interval they were answered in, 5xx answers (made with the
//! test-only `X-Plinth-Fault` switch) as errors too; an interval without answers has no
//! p99. Served whenever metrics are on, alerts or not; a 404 when they are off; and the
//! endpoint's attacks.

use crate::helpers::{TestApp, assert_error};
use plinth_core::Timestamp;
use plinth_server::alerts::AlertConfig;
use plinth_server::{MetricsAccess, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const SERIES: &str = "/api/v1/metrics/series";

/// The series' points, after checking the shape: 60 points 10 s apart, oldest first, the
/// last one holding now.
async fn points(app: &TestApp) -> Vec<Value> {
    let sent = Timestamp::from_system(SystemTime::now()).as_micros();
    let r = app.get_path(SERIES).await;
    let got = Timestamp::from_system(SystemTime::now()).as_micros();
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let data = r.data(StatusCode::OK);
    assert_eq!(data["interval_seconds"], json!(10), "{data}");
    let points = data["points"].as_array().expect("points").clone();
    assert_eq!(points.len(), 60);
    let at = |p: &Value| {
        Timestamp::parse(p["at"].as_str().expect("an `at`"))
            .expect("RFC 3339")
            .as_micros()
    };
    for pair in points.windows(2) {
        assert_eq!(at(&pair[1]) - at(&pair[0]), 10_000_000, "{pair:?}");
    }
    // The last interval is the one the answer was made in.
    let last = at(&points[59]);
    assert!(last <= got && last + 10_000_000 > sent, "{}", points[59]);
    points
}

fn total(points: &[Value], key: &str) -> u64 {
    points
        .iter()
        .map(|p| p[key].as_u64().expect("a count"))
        .sum()
}

#[tokio::test]
async fn answers_are_counted_per_interval_with_their_errors_and_p99() {
    let app = TestApp::spawn().await;
    let before = points(&app).await;
    // Nothing was asked before: every interval is empty.
    assert_eq!(
        (total(&before, "requests"), total(&before, "errors")),
        (0, 0)
    );
    assert!(before.iter().all(|p| p["p99_ms"].is_null()), "{before:?}");

    for _ in 0..7 {
        app.get_path("/api/v1/resource").await.data(StatusCode::OK);
    }
    for _ in 0..3 {
        let r = app
            .send(
                app.request(Method::GET, "/api/v1/resource")
                    .header("x-plinth-fault", "error"),
            )
            .await;
        assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL");
    }
    let not_found = app.get_path("/api/v1/nothing-here").await;
    assert_error(&not_found, StatusCode::NOT_FOUND, "NOT_FOUND");

    let after = points(&app).await;
    // The first series call, 7 lists, 3 faults and a 404; only the faults are errors.
    assert_eq!(total(&after, "requests"), 1 + 7 + 3 + 1);
    assert_eq!(total(&after, "errors"), 3);
    for p in &after {
        let requests = p["requests"].as_u64().expect("a count");
        if requests == 0 {
            assert_eq!(p["p99_ms"], json!(null), "{p}");
            assert_eq!(p["errors"], json!(0), "{p}");
        } else {
            let p99 = p["p99_ms"]
                .as_f64()
                .expect("a p99 where there were answers");
            assert!(p99 > 0.0 && p99 <= 60_000.0, "{p}");
        }
    }
    // The requests just made are in the last interval (or the one before, had it just ended).
    assert!(total(&after[58..], "requests") > 0, "{after:?}");
}

#[tokio::test]
async fn the_series_is_served_with_alerts_off_and_not_with_metrics_off() {
    let no_alerts = ServerConfig {
        alerts: AlertConfig {
            interval: Duration::ZERO,
            ..AlertConfig::default()
        },
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), no_alerts).await;
    app.get_path("/healthz").await;
    assert_eq!(total(&points(&app).await, "requests"), 1);

    let no_metrics = ServerConfig {
        metrics: MetricsAccess {
            enabled: false,
            token: None,
        },
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), no_metrics).await;
    for credential in [Some(app.admin_token.as_str()), None] {
        let r = app.call_as(Method::GET, SERIES, credential, None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn only_admins_read_the_series_and_nothing_else_is_taken() {
    let app = TestApp::spawn().await;
    app.assert_admin_only(SERIES).await;
}

//! Slow pattern queries must not stall the server: filter values and `like` patterns are
//! bounded (400 naming the filter), a list over its time budget answers 503 and frees its
//! connection, a list whose client hung up is stopped, and gets and plain lists are served
//! while pattern lists hold connections. On both engines.
//!
//! The slow lists here match a long pattern (`*aaa…ab*`, which both engines try at every
//! position of every value) against many moderately long values: one query takes many
//! seconds, while each single value's comparison (the step neither engine interrupts)
//! stays well under a second. The tests raise the pattern bound to make such a query, and
//! never wait for one to finish: where a fix is missing they would wait for many seconds.

use crate::helpers::{TestApp, TestDb, assert_error, decls, id_of, postgres_server};
use plinth_core::QueryLimits;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

/// Values the slow lists scan: enough that one such list takes well over ten seconds on
/// either engine, each short enough to be compared in a fraction of a second.
const SLOW_ROWS: usize = 80;
const SLOW_VALUE_CHARS: usize = 40_000;
/// The length of the slow pattern.
const SLOW_PATTERN_CHARS: usize = 3000;

/// Limits that admit the slow pattern.
const WIDE: QueryLimits = QueryLimits {
    value_max_chars: 4096,
    pattern_max_chars: 4096,
    filter_max_chars: QueryLimits::DEFAULT_FILTER_MAX_CHARS,
};

fn doc_model() -> Vec<plinth_core::ModelDecl> {
    decls(json!([{ "name": "doc", "fields": [{ "name": "body", "type": "text" }] }]))
}

/// A server on `connections` read connections with the given list budget, holding the
/// values the slow pattern is matched against; returns it with one record's id.
async fn slow_app(connections: usize, budget: Duration) -> (TestApp, String) {
    slow_app_on(TestDb::with_reads(connections, budget).await).await
}

/// As [`slow_app`], over `db`.
async fn slow_app_on(db: TestDb) -> (TestApp, String) {
    let app = TestApp::spawn_limited(db, doc_model(), WIDE).await;
    let body = json!({ "name": "doc", "body": "a".repeat(SLOW_VALUE_CHARS) });
    let mut id = String::new();
    for _ in 0..SLOW_ROWS {
        id = id_of(&app.create_ok("doc", &body).await);
    }
    (app, id)
}

/// The query string of a list that matches nothing, slowly.
fn slow_list_path() -> String {
    let pattern = format!("*{}b*", "a".repeat(SLOW_PATTERN_CHARS - 3));
    let qs = serde_urlencoded::to_string([("body[like]", pattern)]).expect("encode");
    format!("/api/v1/doc?{qs}")
}

/// Starts a slow list as a guest whose client gives up after `patience` (closing its
/// connection); the task ends when the client has given up.
fn start_slow_list(app: &TestApp, patience: Duration) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience)
        .build()
        .expect("client");
    let url = app.url(&slow_list_path());
    tokio::spawn(async move {
        let answer = client.get(url).send().await;
        assert!(
            answer.as_ref().is_err_and(reqwest::Error::is_timeout),
            "the slow list answered within {patience:?}: {answer:?}"
        );
    })
}

/// Runs `request` and checks it answered with `status` within `within`.
async fn answers_within(
    app: &TestApp,
    what: &str,
    within: Duration,
    request: reqwest::RequestBuilder,
    status: StatusCode,
) -> crate::helpers::Resp {
    let r = tokio::time::timeout(within, app.send(request))
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {within:?}"));
    assert_eq!(r.status, status, "{what}: {}", r.body);
    r
}

#[tokio::test]
async fn long_filter_values_and_patterns_are_400_naming_the_filter() {
    let app = TestApp::spawn().await;
    app.create_ok("resource", &json!({"name": "one"})).await;
    let long_pattern = "*a".repeat(30_000);
    let long_value = "a".repeat(2049);
    let many = format!("x,{long_value}");
    for (key, value, reason) in [
        (
            "name[like]",
            long_pattern.as_str(),
            "a like pattern is at most 128 characters",
        ),
        (
            "name",
            long_value.as_str(),
            "a filter value is at most 2048 characters",
        ),
        (
            "name[gte]",
            long_value.as_str(),
            "a filter value is at most 2048 characters",
        ),
        (
            "name[in]",
            many.as_str(),
            "each value is at most 2048 characters",
        ),
    ] {
        let r = app.list_resp("resource", &[(key, value)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [key],
            "{key}"
        );
        assert_eq!(r.body["error"]["details"][0]["reason"], json!(reason));
    }
    // At the bounds, the same filters run.
    for (key, value) in [("name[like]", "*".repeat(128)), ("name", "a".repeat(2048))] {
        let r = app.list_resp("resource", &[(key, &value)]).await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.body);
    }
    assert_eq!(
        app.list_all("resource", &[("name[like]", "*")]).await.len(),
        1
    );
}

#[tokio::test]
async fn nul_in_a_like_pattern_is_refused_on_both_engines() {
    let app = TestApp::spawn().await;
    for name in ["one", "two"] {
        app.create_ok("resource", &json!({"name": name})).await;
    }
    // SQLite would end the pattern at the NUL and match every record.
    for pattern in ["*\u{0}*", "z\u{0}", "one\u{0}"] {
        let r = app.list_resp("resource", &[("name[like]", pattern)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["name[like]"],
            "{pattern:?}"
        );
        assert!(
            r.body["error"]["details"][0]["reason"]
                .as_str()
                .is_some_and(|m| m.contains("NUL")),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn a_list_over_its_budget_answers_503_and_frees_its_connection() {
    let (app, id) = slow_app(2, Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = answers_within(
        &app,
        "a list over its budget",
        Duration::from_secs(10),
        app.request_as(Method::GET, &slow_list_path(), None),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("took longer than 300 ms") && message.contains("narrow the filter"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the answer came only after {:?}",
        started.elapsed()
    );
    // Its statement stopped: a plain list (which needs the one list slot of two
    // connections) and a get are served at once, and PostgreSQL runs nothing for it.
    let plain = app.request_as(Method::GET, "/api/v1/doc?limit=1", None);
    answers_within(
        &app,
        "a plain list",
        Duration::from_secs(2),
        plain,
        StatusCode::OK,
    )
    .await;
    app.get_ok("doc", &id).await;
    assert_statement_stopped(&app).await;
}

/// On PostgreSQL, waits (a few seconds at most) until the server runs no pattern list for
/// the test's database: the statement was cancelled, not just abandoned by the client.
async fn assert_statement_stopped(app: &TestApp) {
    let Some(db) = app.database().postgres_database() else {
        return;
    };
    let client = db.connect().await;
    let started = Instant::now();
    loop {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state = 'active' AND query LIKE '%ILIKE%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("read pg_stat_activity")
            .get(0);
        if running == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "an abandoned list still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_list_whose_client_hung_up_is_stopped() {
    // One pattern list at a time, a budget far beyond the test: only the hang-up can stop
    // the first list before the second needs its slot.
    let (app, _) = slow_app(2, Duration::from_secs(120)).await;
    start_slow_list(&app, Duration::from_millis(500))
        .await
        .expect("the client gave up");
    let quick = app.request_as(Method::GET, "/api/v1/doc?name[like]=do*&limit=1", None);
    answers_within(
        &app,
        "a pattern list after the slow one's client hung up",
        Duration::from_secs(5),
        quick,
        StatusCode::OK,
    )
    .await;
    assert_statement_stopped(&app).await;
}

#[tokio::test]
async fn gets_and_plain_lists_are_served_while_pattern_lists_run() {
    let (app, id) = slow_app(4, Duration::from_secs(120)).await;
    let slow: Vec<_> = (0..6)
        .map(|_| start_slow_list(&app, Duration::from_secs(60)))
        .collect();
    // Let them take what they can.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let within = Duration::from_secs(1);
    for _ in 0..3 {
        let get = app.request_as(Method::GET, &format!("/api/v1/doc/{id}"), None);
        answers_within(&app, "a get by id", within, get, StatusCode::OK).await;
        let plain = app.request_as(Method::GET, "/api/v1/doc?limit=1", None);
        answers_within(&app, "a plain list", within, plain, StatusCode::OK).await;
    }
    for task in slow {
        task.abort();
    }
}

#[tokio::test]
async fn a_statement_postgresql_cancels_answers_503() {
    let test = "slow_queries::a_statement_postgresql_cancels_answers_503";
    let Some(server) = postgres_server(test) else {
        return;
    };
    // The connections' own statement_timeout ends the list before its budget does: the
    // query_canceled error (SQLSTATE 57014) is a 503, never a 500.
    let db = TestDb::postgres_with(&server, |o| {
        o.statement_timeout = Duration::from_millis(300);
        o.query_timeout = Duration::from_secs(120);
    })
    .await;
    let (app, id) = slow_app_on(db).await;
    let r = answers_within(
        &app,
        "a list PostgreSQL cancels",
        Duration::from_secs(10),
        app.request_as(Method::GET, &slow_list_path(), None),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    app.get_ok("doc", &id).await;
}

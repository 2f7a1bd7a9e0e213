//! Database faults under a running Plinth: PostgreSQL stops, restarts, or stops answering
//! (connections stay open, nothing comes back, as in a network partition). Requests fail fast
//! with `503 UNAVAILABLE` and `Retry-After`, `/readyz` goes 503, and service resumes by
//! itself when the database is back, without restarting Plinth.
//!
//! Each test starts a PostgreSQL cluster of its own (a [`PgCluster`] primary: `initdb` in a
//! temporary directory, a free port, its own socket directory) and stops it; the machine's
//! shared server is never touched. PostgreSQL only: skipped, with the reason printed, when
//! `PLINTH_TEST_POSTGRES` is unset.

use crate::helpers::cluster::{PgCluster, blocking, expect_pg_binaries};
use crate::helpers::{
    Resp, TestApp, TestDb, assert_error, id_of, postgres_server, test_auth_config,
};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a request may take while the database is down: "fail fast".
const FAST: Duration = Duration::from_secs(3);
/// How long service may take to resume once the database is back.
const RESUME_WITHIN: Duration = Duration::from_secs(5);
/// The store's connect timeout in these tests.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The store's statement timeout in these tests.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request may take while the database accepts connections but never answers:
/// the store's own timeouts, plus a margin.
const HUNG_FAST: Duration = Duration::from_secs(5);
/// How long the hung-database test waits for any answer before it calls a request stuck.
const STUCK: Duration = Duration::from_secs(10);

/// A Plinth instance over a fresh database on `cluster`, with short connect and statement
/// timeouts so an unreachable database is noticed fast.
async fn app_on(cluster: &PgCluster) -> TestApp {
    let db = TestDb::postgres_with(&cluster.url(), |o| {
        o.connect_timeout = CONNECT_TIMEOUT;
        o.statement_timeout = STATEMENT_TIMEOUT;
        o.pool_size = 4;
    })
    .await;
    TestApp::spawn_on(db, Vec::new(), ServerConfig::default(), test_auth_config()).await
}

/// Checks a "database unavailable" answer: 503, the `UNAVAILABLE` envelope, and a
/// `Retry-After` of at least one second.
fn assert_unavailable(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        r.body
    );
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    let retry = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 503 without Retry-After: {:?}", r.headers));
    let secs: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After is not whole seconds: {retry:?}"));
    assert!(secs >= 1, "{what}: Retry-After {secs}");
}

/// One of each kind of request (reads and writes of records, authenticated and as a guest,
/// and `/readyz`), with how long each took to answer.
async fn requests(app: &TestApp, id: &str) -> Vec<(&'static str, Resp, Duration)> {
    let record = format!("/api/v1/resource/{id}");
    let calls: Vec<(&'static str, reqwest::RequestBuilder)> = vec![
        ("list", app.request(Method::GET, "/api/v1/resource")),
        ("get", app.request(Method::GET, &record)),
        (
            "create",
            app.request(Method::POST, "/api/v1/resource")
                .json(&json!({"name": "during the outage"})),
        ),
        (
            "patch",
            app.request(Method::PATCH, &record)
                .header("if-match", "\"1\"")
                .json(&json!({"name": "x"})),
        ),
        ("delete", app.request(Method::DELETE, &record)),
        (
            "guest list",
            app.request_as(Method::GET, "/api/v1/resource", None),
        ),
        ("readyz", app.request_as(Method::GET, "/readyz", None)),
    ];
    let mut out = Vec::new();
    for (what, req) in calls {
        let started = Instant::now();
        let r = app.send(req).await;
        out.push((what, r, started.elapsed()));
    }
    out
}

/// Polls `/readyz` until it answers 200; panics after [`RESUME_WITHIN`].
async fn wait_until_ready(app: &TestApp, since: Instant) {
    loop {
        let r = app.send(app.request_as(Method::GET, "/readyz", None)).await;
        if r.status == StatusCode::OK {
            return;
        }
        assert_unavailable(&r, "readyz while the database comes back");
        assert!(
            since.elapsed() < RESUME_WITHIN,
            "/readyz still 503 {:?} after the database came back: {}",
            since.elapsed(),
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_answers_503_fast_and_service_resumes_by_itself() {
    if postgres_server("an_unreachable_database_answers_503_fast_and_service_resumes_by_itself")
        .is_none()
    {
        return;
    }
    // Declared before the app, so the app (and its database) goes first when the test
    // ends, and the cluster is stopped and removed even when an assertion fails.
    let mut cluster = blocking(|| PgCluster::primary(&expect_pg_binaries()));
    let app = app_on(&cluster).await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "before"})).await);
    let ready = app.send(app.request_as(Method::GET, "/readyz", None)).await;
    ready.data(StatusCode::OK);

    blocking(|| cluster.stop());
    // Twice over: the first round meets the pool's dead connections, the second finds none
    // and must fail just as fast trying to open new ones.
    for round in 0..2 {
        for (what, r, took) in requests(&app, &id).await {
            assert_unavailable(&r, what);
            assert!(
                took < FAST,
                "round {round}: {what} took {took:?} while the database was down"
            );
        }
    }
    // Liveness does not depend on the database: the process is alive.
    let live = app
        .send(app.request_as(Method::GET, "/healthz", None))
        .await;
    live.data(StatusCode::OK);

    blocking(|| cluster.start());
    wait_until_ready(&app, Instant::now()).await;
    // Reads and writes work again, on the same Plinth; nothing was written during the outage.
    let record = app.get_ok("resource", &id).await;
    assert_eq!(record["name"], json!("before"));
    assert_eq!(record["version"], json!(1));
    assert_eq!(record["status"], json!("active"));
    let (status, body) = app
        .patch("resource", &id, &json!({"name": "after"}), Some("\"1\""))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], json!(2));
    let created = app.create_ok("resource", &json!({"name": "new"})).await;
    let mut names: Vec<String> = app
        .list_all("resource", &[])
        .await
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["after", "new"]);
    assert_eq!(app.count_all("resource").await, 2);
    assert_eq!(app.get_ok("resource", &id_of(&created)).await, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_is_survived_without_restarting_plinth() {
    if postgres_server("a_database_restart_is_survived_without_restarting_plinth").is_none() {
        return;
    }
    let mut cluster = blocking(|| PgCluster::primary(&expect_pg_binaries()));
    let app = std::sync::Arc::new(app_on(&cluster).await);
    let id = id_of(&app.create_ok("resource", &json!({"name": "before"})).await);
    // Fill the pool: several requests at once hold several connections.
    let warm: Vec<_> = (0..8)
        .map(|_| {
            let (app, id) = (std::sync::Arc::clone(&app), id.clone());
            tokio::spawn(async move { app.get_resp("resource", &id, None).await.status })
        })
        .collect();
    for t in warm {
        assert_eq!(t.await.expect("the read finishes"), StatusCode::OK);
    }

    // Every pooled connection dies with the restart.
    blocking(|| cluster.restart());
    let since = Instant::now();
    // Until the pool has recovered, an answer is a success or a fast 503, never a 500.
    loop {
        let started = Instant::now();
        let r = app.get_resp("resource", &id, None).await;
        assert!(
            started.elapsed() < FAST,
            "a read took {:?}",
            started.elapsed()
        );
        if r.status == StatusCode::OK {
            break;
        }
        assert_unavailable(&r, "a read just after the restart");
        assert!(
            since.elapsed() < RESUME_WITHIN,
            "reads still fail {:?} after the restart",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until_ready(&app, since).await;
    // From now on nothing fails: no dead connection lingers in the pool.
    for i in 0..12 {
        let r = app.get_resp("resource", &id, None).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "read {i} after recovery: {}",
            r.body
        );
    }
    let parallel: Vec<_> = (0..8)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                app.create_resp("resource", &json!({"name": format!("after {i}")}))
                    .await
            })
        })
        .collect();
    for t in parallel {
        t.await
            .expect("the create finishes")
            .data(StatusCode::CREATED);
    }
    assert_eq!(app.count_all("resource").await, 9);
}

/// A partitioned or hung database: the kernel still accepts connections and open ones stay
/// open, but nothing answers, so only Plinth's own bounds (the connect and statement
/// timeouts it is configured with) can end a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_stops_answering_gives_503_within_the_timeouts() {
    if postgres_server("a_database_that_stops_answering_gives_503_within_the_timeouts").is_none() {
        return;
    }
    let mut cluster = blocking(|| PgCluster::primary(&expect_pg_binaries()));
    let app = std::sync::Arc::new(app_on(&cluster).await);
    let id = id_of(&app.create_ok("resource", &json!({"name": "before"})).await);
    // Open a few pooled connections, which will hang with the server.
    let warm: Vec<_> = (0..4)
        .map(|_| {
            let (app, id) = (std::sync::Arc::clone(&app), id.clone());
            tokio::spawn(async move { app.get_resp("resource", &id, None).await.status })
        })
        .collect();
    for t in warm {
        assert_eq!(t.await.expect("the read finishes"), StatusCode::OK);
    }

    // Connections stay open (and new ones are accepted by the kernel) but nothing answers.
    // Nothing may panic while frozen (dropping the test database would wait on the frozen
    // server), so the answers are collected first and checked after the thaw; the first
    // request that gets no answer at all ends the collection.
    blocking(|| cluster.freeze());
    let mut answers = Vec::new();
    'frozen: for round in 0..2 {
        for (what, req) in [
            ("readyz", app.request_as(Method::GET, "/readyz", None)),
            (
                "get",
                app.request(Method::GET, &format!("/api/v1/resource/{id}")),
            ),
            ("list", app.request(Method::GET, "/api/v1/resource")),
            (
                "create",
                app.request(Method::POST, "/api/v1/resource")
                    .json(&json!({"name": "while frozen"})),
            ),
        ] {
            let started = Instant::now();
            let answer = tokio::time::timeout(STUCK, app.send(req)).await.ok();
            let stuck = answer.is_none();
            answers.push((round, what, answer, started.elapsed()));
            if stuck {
                break 'frozen;
            }
        }
    }
    blocking(|| cluster.thaw());

    for (round, what, answer, took) in &answers {
        let r = answer.as_ref().unwrap_or_else(|| {
            panic!(
                "round {round}: {what} got no answer within {STUCK:?} while the database did \
                 not answer (connect timeout {CONNECT_TIMEOUT:?}, statement timeout \
                 {STATEMENT_TIMEOUT:?})"
            )
        });
        assert_unavailable(r, what);
        assert!(
            *took < HUNG_FAST,
            "round {round}: {what} took {took:?} while the database did not answer"
        );
    }
    wait_until_ready(&app, Instant::now()).await;
    let (status, body) = app
        .patch("resource", &id, &json!({"name": "after"}), Some("\"1\""))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.get_ok("resource", &id).await["name"], json!("after"));
}

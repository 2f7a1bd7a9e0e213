//! `/metrics`: what real traffic leaves in it (route templates, never raw paths; counts;
//! histogram buckets; store calls; the engine's writer or pool; auth refusals and rate
//! limits), who may read it, and turning it off. Who may read it from another host is
//! decided by a function unit-tested beside it (`metrics::access`): a test connection
//! always comes from loopback.

use crate::helpers::{PASSWORD, Resp, TestApp, WRONG_PASSWORD, assert_error, test_auth_config};
use plinth_server::{MetricsAccess, MetricsToken, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// One series of a scrape: name, labels, value.
#[derive(Debug)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A scrape, parsed.
#[derive(Debug)]
struct Scrape(Vec<Series>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (head, value) = line.rsplit_once(' ').expect("a value after the series");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap_or_else(|_| panic!("a number in {line:?}")),
                };
                let (name, labels) = match head.split_once('{') {
                    None => (head.to_owned(), Vec::new()),
                    Some((name, rest)) => (name.to_owned(), labels(rest.trim_end_matches('}'))),
                };
                Series {
                    name,
                    labels,
                    value,
                }
            })
            .collect();
        Self(series)
    }

    /// The series of `name` whose labels include all of `with`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Series> {
        self.0.iter().filter(move |s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    /// The sum of those series, 0 when there is none.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).map(|s| s.value).sum()
    }

    /// The one value of `name` with exactly these labels included, which must exist.
    fn get(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        let found: Vec<&Series> = self.matching(name, with).collect();
        assert_eq!(
            found.len(),
            1,
            "one series {name} {with:?}, found {found:?}"
        );
        found[0].value
    }
}

/// `k="v",k2="v2"` (values as the text format escapes them).
fn labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    out
}

async fn scrape(app: &TestApp) -> Scrape {
    let r = metrics(app, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&r.raw)
    );
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Scrape::parse(std::str::from_utf8(&r.raw).expect("UTF-8"))
}

async fn metrics(app: &TestApp, credential: Option<&str>) -> Resp {
    app.send(app.request_as(Method::GET, "/metrics", credential))
        .await
}

const ITEM: &str = "/api/v1/{model}/{id}";
const COLLECTION: &str = "/api/v1/{model}";

#[tokio::test]
async fn traffic_is_counted_by_method_route_template_and_status() {
    let mut auth = test_auth_config();
    auth.login_per_account_address = 1;
    let app = TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await;
    let before = scrape(&app).await;
    let created = app.create_ok("resource", &json!({"name": "counted"})).await;
    let id = created["id"].as_str().expect("an id").to_owned();
    app.create_ok("resource", &json!({"name": "counted again"}))
        .await;
    // A status that is not kept at hand per route is counted all the same.
    let text = app
        .request(Method::POST, "/api/v1/resource")
        .header("content-type", "text/plain")
        .body("name=x");
    let r = app.send(text).await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    app.get_ok("resource", &id).await;
    // Again: on SQLite, from the records kept after the first.
    app.get_ok("resource", &id).await;
    let missing = uuid::Uuid::now_v7().to_string();
    assert_eq!(app.get("resource", &missing).await.0, StatusCode::NOT_FOUND);
    assert_error(
        &app.get_path("/no/such/path").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let forged = app
        .send(app.request_as(
            Method::GET,
            COLLECTION.replace("{model}", "resource").as_str(),
            Some("not-a-token"),
        ))
        .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(
        &app.login("admin@example.com", WRONG_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &app.login("admin@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    );
    let brew = Method::from_bytes(b"BREW").expect("a method");
    let r = app.send(app.request(brew, "/api/v1/resource")).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let after = scrape(&app).await;

    let increase =
        |name: &str, with: &[(&str, &str)]| after.sum(name, with) - before.sum(name, with);
    let requests = "http_requests_total";
    assert_eq!(
        increase(
            requests,
            &[("method", "POST"), ("route", COLLECTION), ("status", "201")]
        ),
        2.0
    );
    assert_eq!(
        increase(
            requests,
            &[("method", "POST"), ("route", COLLECTION), ("status", "415")]
        ),
        1.0
    );
    assert_eq!(
        increase(
            requests,
            &[("method", "GET"), ("route", ITEM), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        increase(
            requests,
            &[("method", "GET"), ("route", ITEM), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        increase(
            requests,
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        increase(
            requests,
            &[("method", "GET"), ("route", COLLECTION), ("status", "401")]
        ),
        1.0
    );
    let login = "/api/v1/auth/login";
    assert_eq!(
        increase(requests, &[("route", login), ("status", "401")]),
        1.0
    );
    assert_eq!(
        increase(requests, &[("route", login), ("status", "429")]),
        1.0
    );
    assert_eq!(
        increase(requests, &[("method", "other"), ("status", "405")]),
        1.0
    );
    // The first scrape counted itself once it had answered.
    assert!(after.sum(requests, &[("route", "/metrics"), ("status", "200")]) >= 1.0);
    // Never a raw path: no label holds the record's id or the unknown path.
    for s in &after.0 {
        for (k, v) in &s.labels {
            assert!(
                !v.contains(&id) && !v.contains(&missing) && !v.contains("/no/such"),
                "{} {k}={v}",
                s.name
            );
        }
    }

    // The duration histogram: every bucket, +Inf, and a count that matches the requests.
    let get_item = [("method", "GET"), ("route", ITEM)];
    for le in [
        "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
        "2", "5", "+Inf",
    ] {
        let mut with = get_item.to_vec();
        with.push(("le", le));
        after.get("http_request_duration_seconds_bucket", &with);
    }
    assert_eq!(
        after.get("http_request_duration_seconds_count", &get_item),
        after.sum(requests, &get_item)
    );
    assert!(after.get("http_request_duration_seconds_sum", &get_item) > 0.0);
    // This scrape is in flight while it is rendered.
    assert_eq!(after.get("http_requests_in_flight", &[]), 1.0);

    // Store calls by operation.
    let store = "store_operation_duration_seconds_count";
    assert_eq!(increase(store, &[("operation", "create")]), 2.0);
    assert_eq!(increase(store, &[("operation", "get")]), 3.0);
    assert!(increase(store, &[("operation", "find_user_by_email")]) >= 1.0);
    assert!(
        after.get(
            "store_operation_duration_seconds_bucket",
            &[("operation", "create"), ("le", "+Inf")]
        ) >= 1.0
    );

    // Authentication.
    assert_eq!(increase("auth_failures_total", &[("reason", "token")]), 1.0);
    assert_eq!(
        increase("auth_failures_total", &[("reason", "password")]),
        1.0
    );
    assert_eq!(
        increase(
            "rate_limited_total",
            &[("limiter", "login_account_address")]
        ),
        1.0
    );
    assert_eq!(
        after.get("rate_limited_total", &[("limiter", "requests")]),
        0.0
    );
    assert!(
        increase("credential_cache_hits_total", &[])
            + increase("credential_cache_misses_total", &[])
            >= 2.0
    );

    // The database, the audit chain, the build and the process.
    assert_eq!(after.get("store_up", &[]), 1.0);
    assert!(
        increase("audit_entries_total", &[]) >= 2.0,
        "the create and the failed login"
    );
    assert_eq!(
        after.get(
            "plinth_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(after.get("process_resident_memory_bytes", &[]) > 0.0);
    assert!(after.get("process_open_fds", &[]) > 0.0);
    assert!(after.get("process_cpu_seconds_total", &[]) > 0.0);

    // The engine's own figures.
    if app.postgres {
        assert!(after.get("pg_pool_connections", &[("state", "max")]) >= 1.0);
        assert!(after.get("pg_pool_connections", &[("state", "open")]) >= 1.0);
        for state in ["in_use", "idle", "waiting"] {
            after.get("pg_pool_connections", &[("state", state)]);
        }
        assert_eq!(after.sum("sqlite_writer_queue_depth", &[]), 0.0);
        assert!(
            after
                .matching("sqlite_record_cache_hits_total", &[])
                .next()
                .is_none()
        );
        assert!(
            after
                .matching("sqlite_writer_batch_size_count", &[])
                .next()
                .is_none()
        );
    } else {
        assert_eq!(after.get("sqlite_writer_queue_depth", &[]), 0.0);
        assert!(increase("sqlite_writer_batch_size_count", &[]) >= 2.0);
        assert!(
            after.get("sqlite_writer_batch_size_sum", &[])
                >= after.get("sqlite_writer_batch_size_count", &[])
        );
        after.get("sqlite_writer_batch_size_bucket", &[("le", "256")]);
        assert!(after.matching("pg_pool_connections", &[]).next().is_none());
        // The first get of the record and the get of a missing one read the database; the
        // second get of the record did not.
        assert_eq!(increase("sqlite_record_cache_hits_total", &[]), 1.0);
        assert_eq!(increase("sqlite_record_cache_misses_total", &[]), 2.0);
        assert!(after.get("sqlite_record_cache_records", &[]) >= 1.0);
        assert!(after.get("sqlite_record_cache_bytes", &[]) > 0.0);
    }
}

#[tokio::test]
async fn loopback_peers_read_metrics_without_a_credential_and_a_wrong_one_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(metrics(&app, None).await.status, StatusCode::OK);
    // A credential sent must be the metrics token: a user's token is not one.
    let admin = app.admin_token.clone();
    assert_error(
        &metrics(&app, Some(&admin)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &metrics(&app, Some("guess")).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    // Through a proxy on the same host the peer is loopback, but the client is not.
    let proxied = app
        .request_as(Method::GET, "/metrics", None)
        .header("x-forwarded-for", "203.0.113.9");
    assert_error(&app.send(proxied).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn the_metrics_token_opens_metrics_and_only_the_right_one() {
    let token = "metrics-token-for-the-test-0123456789";
    let config = ServerConfig {
        metrics: MetricsAccess {
            enabled: true,
            token: Some(MetricsToken::new(token)),
        },
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    let r = metrics(&app, Some(token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.raw).contains("plinth_build_info"));
    assert_error(
        &metrics(&app, Some(&token[1..])).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    let proxied = app
        .request_as(Method::GET, "/metrics", None)
        .header("x-forwarded-for", "203.0.113.9");
    assert_error(
        &app.send(proxied).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    let proxied = app
        .request_as(Method::GET, "/metrics", Some(token))
        .header("x-forwarded-for", "203.0.113.9");
    assert_eq!(app.send(proxied).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_turned_off_are_not_found() {
    let config = ServerConfig {
        metrics: MetricsAccess {
            enabled: false,
            token: None,
        },
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    assert_error(
        &metrics(&app, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    app.get_path("/api/v1/resource").await.data(StatusCode::OK);
}

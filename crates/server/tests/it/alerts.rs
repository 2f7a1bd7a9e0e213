//! Plinth's own alerts, end to end: real 5xx answers and real slow ones (through the
//! test-only `X-Plinth-Fault` switch) make `HighErrorRate` and `SlowResponse` fire in
//! `GET /api/v1/alerts`, in the audit trail and at a webhook receiver that refuses each
//! notification's first attempt; once the faults stop they resolve. Quiet traffic fires
//! nothing. And the endpoint's attacks: no credential, a user, a revoked key, hostile input.

use crate::helpers::{TestApp, assert_error};
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use plinth_server::ServerConfig;
use plinth_server::alerts::{AlertConfig, SIGNATURE_HEADER, Thresholds, WebhookConfig};
use plinth_testkit::tls::SelfSigned;
use reqwest::{Method, StatusCode};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// The header of the fault switch.
const FAULT: &str = "x-plinth-fault";
/// The webhook secret of the tests.
const SECRET: &str = "webhook secret of the alert tests";
/// How long a test waits for an alert to change state before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Short windows: a rule fires within an interval of the faults and resolves a window
/// after they stop. Latency above 500 ms is slow here (well above what a loaded test
/// machine takes to answer).
fn config(webhook: Option<WebhookConfig>) -> ServerConfig {
    ServerConfig {
        alerts: AlertConfig {
            window: Duration::from_secs(2),
            interval: Duration::from_millis(50),
            thresholds: Thresholds {
                error_rate: 0.01,
                p99: Duration::from_millis(500),
                min_requests: 5,
            },
            keep_resolved: 10,
            webhook,
        },
        ..ServerConfig::default()
    }
}

/// One request to the webhook receiver.
#[derive(Debug)]
struct Delivery {
    body: Value,
    raw: Vec<u8>,
    signature: Option<String>,
    /// Whether the receiver accepted it (it refuses each notification's first attempt).
    accepted: bool,
}

/// What a receiver was sent; each notification's first attempt is refused (by body).
#[derive(Clone)]
struct Inbox {
    tx: mpsc::UnboundedSender<Delivery>,
    seen: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Inbox {
    fn new() -> (Self, mpsc::UnboundedReceiver<Delivery>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        (Self { tx, seen }, rx)
    }

    /// Notes one request; 503 for a notification's first attempt, else 204.
    fn take(&self, headers: &HeaderMap, raw: Vec<u8>) -> StatusCode {
        let accepted = !self.seen.lock().expect("seen").insert(raw.clone());
        let _ = self.tx.send(Delivery {
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            raw,
            signature: headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            accepted,
        });
        if accepted {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// A webhook receiver over HTTP on `127.0.0.1:0`, at `/hook`.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Delivery>) {
    let (inbox, rx) = Inbox::new();
    let hook = move |headers: HeaderMap, body: axum::body::Bytes| {
        let inbox = inbox.clone();
        async move { inbox.take(&headers, body.to_vec()) }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let addr = listener.local_addr().expect("the receiver's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// A webhook receiver over HTTPS on `127.0.0.1:0` with a self-signed `localhost`
/// certificate (any path).
async fn tls_receiver(cert: &SelfSigned) -> (SocketAddr, mpsc::UnboundedReceiver<Delivery>) {
    let (inbox, rx) = Inbox::new();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("the key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der.clone()], key)
    .expect("a server configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let addr = listener.local_addr().expect("the receiver's address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, inbox) = (acceptor.clone(), inbox.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let inbox = inbox.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let raw = body.collect().await?.to_bytes().to_vec();
                            let status = inbox.take(&parts.headers, raw);
                            let mut res = hyper::Response::new(http_body_util::Empty::<
                                axum::body::Bytes,
                            >::new(
                            ));
                            *res.status_mut() = status;
                            Ok::<_, hyper::Error>(res)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

/// The next delivery, within [`PATIENCE`].
async fn next(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a webhook delivery in time")
        .expect("the receiver is running")
}

/// Checks the signature: `t=<now-ish>,v1=<HMAC-SHA-256(SECRET, "<t>.<body>")>`.
fn assert_signed(d: &Delivery) {
    let sig = d.signature.as_deref().expect("a signature header");
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("a malformed signature: {sig}"));
    let at: u64 = t.parse().expect("a time");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    assert!(at.abs_diff(now) < 60, "signed at {at}, now {now}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let signed = [t.as_bytes(), b".", d.raw.as_slice()].concat();
    let expected: String = ring::hmac::sign(&key, &signed)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature does not match the body");
}

/// Requests the list with `fault`, `n` at once, and checks their answers.
async fn faulted(app: &TestApp, fault: &str, n: usize) {
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..n {
        let req = app
            .request(Method::GET, "/api/v1/resource")
            .header(FAULT, fault);
        sends.spawn(async move {
            let res = req.send().await.expect("the server answers");
            let status = res.status();
            let body: Value = res.json().await.expect("a JSON answer");
            (status, body)
        });
    }
    while let Some(done) = sends.join_next().await {
        let (status, body) = done.expect("the request task");
        if fault == "error" {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
            assert_eq!(body["error"]["code"], json!("INTERNAL"));
            // The fault's cause is logged, never sent.
            assert_eq!(body["error"]["message"], json!("internal error"));
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
}

/// `GET /api/v1/alerts` as the admin: the list.
async fn alerts(app: &TestApp) -> Vec<Value> {
    let r = app.get_path("/api/v1/alerts").await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.data(StatusCode::OK).as_array().expect("a list").clone()
}

fn find<'a>(list: &'a [Value], name: &str, state: &str) -> Option<&'a Value> {
    list.iter()
        .find(|a| a["name"] == json!(name) && a["state"] == json!(state))
}

/// Sends `fault` traffic until `name` is firing; the firing alert.
async fn drive_until_firing(app: &TestApp, fault: &str, name: &str) -> Value {
    let started = Instant::now();
    loop {
        faulted(app, fault, 6).await;
        if let Some(a) = find(&alerts(app).await, name, "firing") {
            return a.clone();
        }
        assert!(started.elapsed() < PATIENCE, "{name} never fired");
    }
}

/// Polls (with healthy traffic) until `name` is resolved; the resolved alert.
async fn wait_until_resolved(app: &TestApp, name: &str) -> Value {
    let started = Instant::now();
    loop {
        let list = alerts(app).await;
        if let Some(a) = find(&list, name, "resolved") {
            assert!(find(&list, name, "firing").is_none(), "{list:?}");
            return a.clone();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{name} never resolved: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audit entries of alert `name`, oldest first, once there are at least `n` (the
/// evaluator appends them just after the change shows in `GET /api/v1/alerts`).
async fn alert_entries(app: &TestApp, name: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let r = app.get_path("/api/v1/audit?action=alert.*&limit=200").await;
        let mut list: Vec<Value> = r
            .data(StatusCode::OK)
            .as_array()
            .expect("a page")
            .iter()
            .filter(|e| e["changes"]["alert"] == json!(name))
            .cloned()
            .collect();
        if list.len() >= n || started.elapsed() > PATIENCE {
            list.reverse();
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check_fields(a: &Value, name: &str, severity: &str, threshold: f64) {
    assert_eq!(a["name"], json!(name));
    assert_eq!(a["severity"], json!(severity));
    assert_eq!(a["threshold"].as_f64(), Some(threshold), "{a}");
    assert!(a["value"].as_f64().is_some_and(|v| v > threshold), "{a}");
    assert!(a["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{a}");
    assert!(a["summary"].as_str().is_some_and(|s| !s.is_empty()), "{a}");
}

#[tokio::test]
async fn errors_fire_high_error_rate_everywhere_then_it_resolves() {
    let (addr, mut hook) = receiver().await;
    let app = TestApp::spawn_configured(
        Vec::new(),
        config(Some(WebhookConfig {
            url: format!("http://{addr}/hook"),
            secret: Some(SECRET.to_owned()),
            ca_file: None,
        })),
    )
    .await;
    let firing = drive_until_firing(&app, "error", "HighErrorRate").await;
    check_fields(&firing, "HighErrorRate", "critical", 0.01);
    assert_eq!(firing["until"], Value::Null);

    let resolved = wait_until_resolved(&app, "HighErrorRate").await;
    assert_eq!(resolved["since"], firing["since"]);
    assert!(resolved["until"].as_str() >= resolved["since"].as_str());

    // The trail: fired, then resolved, by the system.
    let entries = alert_entries(&app, "HighErrorRate", 2).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect();
    assert_eq!(actions, ["alert.fire", "alert.resolve"]);
    for e in &entries {
        assert_eq!(e["actor"]["kind"], json!("system"));
        assert_eq!(e["target"]["model"], json!("_alerts"));
        assert_eq!(e["changes"]["severity"], json!("critical"));
    }

    // The webhook: each notification refused once, then accepted, signed, in order.
    let mut accepted = Vec::new();
    while accepted.len() < 2 {
        let d = next(&mut hook).await;
        assert_signed(&d);
        if d.body["alert"]["name"] != json!("HighErrorRate") {
            continue;
        }
        if d.accepted {
            accepted.push(d);
        } else {
            // The retry carries the same notification.
            let again = next_for(&mut hook, &d.raw).await;
            assert!(again.accepted);
            accepted.push(again);
        }
    }
    assert_eq!(accepted[0].body["event"], json!("alert.fire"));
    assert_eq!(accepted[0].body["alert"]["state"], json!("firing"));
    assert_eq!(accepted[1].body["event"], json!("alert.resolve"));
    assert_eq!(accepted[1].body["alert"]["state"], json!("resolved"));
    assert_eq!(accepted[1].body["alert"]["since"], firing["since"]);
    assert!(
        !String::from_utf8_lossy(&accepted[0].raw).contains(SECRET),
        "the secret is not in the body"
    );
}

/// The next delivery with this exact body (deliveries of other alerts are skipped).
async fn next_for(rx: &mut mpsc::UnboundedReceiver<Delivery>, raw: &[u8]) -> Delivery {
    loop {
        let d = next(rx).await;
        if d.raw == raw {
            return d;
        }
    }
}

#[tokio::test]
async fn the_webhook_speaks_https_to_the_trusted_certificate() {
    let cert = SelfSigned::localhost();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_file = dir.path().join("hook-ca.pem");
    std::fs::write(&ca_file, &cert.cert_pem).expect("write the CA file");
    let (addr, mut hook) = tls_receiver(&cert).await;
    let app = TestApp::spawn_configured(
        Vec::new(),
        config(Some(WebhookConfig {
            url: format!("https://localhost:{}/alerts?via=test", addr.port()),
            secret: None,
            ca_file: Some(ca_file),
        })),
    )
    .await;
    drive_until_firing(&app, "error", "HighErrorRate").await;
    let first = next(&mut hook).await;
    assert!(!first.accepted);
    assert_eq!(first.signature, None, "no secret, no signature");
    let again = next_for(&mut hook, &first.raw).await;
    assert!(again.accepted);
    assert_eq!(again.body["event"], json!("alert.fire"));
}

#[tokio::test]
async fn slow_answers_fire_slow_response_then_it_resolves() {
    let app = TestApp::spawn_configured(Vec::new(), config(None)).await;
    let firing = drive_until_firing(&app, "sleep=1200", "SlowResponse").await;
    check_fields(&firing, "SlowResponse", "warning", 0.5);
    // 1.2 s answers: the p99 falls in the (1, 2.5] s bucket.
    let value = firing["value"].as_f64().expect("a value");
    assert!((1.0..=2.5).contains(&value), "{firing}");
    // Slow is not failing.
    assert!(find(&alerts(&app).await, "HighErrorRate", "firing").is_none());

    wait_until_resolved(&app, "SlowResponse").await;
    let actions: Vec<Value> = alert_entries(&app, "SlowResponse", 2)
        .await
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    // Fired, then resolved (a loaded machine may make it fire again since: then it
    // alternates).
    assert!(actions.len() >= 2, "{actions:?}");
    assert_eq!(actions[..2], [json!("alert.fire"), json!("alert.resolve")]);
    assert!(actions.windows(2).all(|w| w[0] != w[1]), "{actions:?}");
}

#[tokio::test]
async fn quiet_traffic_fires_nothing() {
    let (addr, mut hook) = receiver().await;
    // The seed's thresholds (1 %, 1 s) over a short window.
    let mut config = config(Some(WebhookConfig {
        url: format!("http://{addr}/hook"),
        secret: None,
        ca_file: None,
    }));
    config.alerts.thresholds.p99 = Duration::from_secs(1);
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    // A 404 and a 400 are the client's: they are not errors of the service.
    let missing = app.get_path("/api/v1/nowhere").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");
    for i in 0..40 {
        app.create_as(
            "resource",
            &app.admin_token,
            &json!({"name": format!("r{i}")}),
        )
        .await;
        app.list("resource", &[]).await;
    }
    let bad = app.list_raw("resource", "limit=0").await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    // Many evaluations over the traffic.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alerts(&app).await, Vec::<Value>::new());
    for name in ["HighErrorRate", "SlowResponse"] {
        assert!(alert_entries(&app, name, 0).await.is_empty());
    }
    assert!(hook.try_recv().is_err(), "the webhook was called");
    // The rules were being evaluated all along: errors fire at once.
    drive_until_firing(&app, "error", "HighErrorRate").await;
}

#[tokio::test]
async fn the_alerts_are_for_admins_only() {
    let app = TestApp::spawn_configured(Vec::new(), config(None)).await;
    let get_as = |credential: Option<String>| {
        let app = &app;
        async move {
            app.call_as(Method::GET, "/api/v1/alerts", credential.as_deref(), None)
                .await
        }
    };
    assert_error(
        &get_as(None).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    let forged = get_as(Some("not.a.token".to_owned())).await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let (_, token) = app.user("ann@example.com").await;
    assert_error(
        &get_as(Some(token.clone())).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let key = app.create_key(&token, &json!({"name": "k"})).await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    assert_error(&get_as(Some(key)).await, StatusCode::FORBIDDEN, "FORBIDDEN");

    // An admin's key reads them, until it is revoked.
    let made = app
        .create_key(&app.admin_token, &json!({"name": "pager"}))
        .await;
    let made = made.data(StatusCode::CREATED);
    let (key_id, key) = (
        made["id"].as_str().expect("an id").to_owned(),
        made["key"].as_str().expect("a key").to_owned(),
    );
    get_as(Some(key.clone())).await.data(StatusCode::OK);
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_error(
        &get_as(Some(key)).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );

    // Hostile input: parameters are refused, not ignored; other methods are 405.
    let param = app.get_path("/api/v1/alerts?state=firing").await;
    assert_eq!(
        assert_error(&param, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["state"]
    );
    let junk = app.get_path("/api/v1/alerts?%zz=%00").await;
    assert_error(&junk, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let post = app
        .call_as(
            Method::POST,
            "/api/v1/alerts",
            Some(&app.admin_token),
            Some(&json!({})),
        )
        .await;
    assert_error(&post, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    // A fault header from a client of a test build still answers with the envelope.
    let r = app
        .send(
            app.request(Method::GET, "/api/v1/alerts")
                .header(FAULT, "sleep=x"),
        )
        .await;
    r.data(StatusCode::OK);
}

#[tokio::test]
async fn with_alerts_off_nothing_is_evaluated() {
    let mut config = config(None);
    config.alerts.interval = Duration::ZERO;
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    faulted(&app, "error", 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alerts(&app).await, Vec::<Value>::new());
    assert!(alert_entries(&app, "HighErrorRate", 0).await.is_empty());
}

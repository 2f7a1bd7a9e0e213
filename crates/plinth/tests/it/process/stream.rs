//! A steady stream of requests, as a load balancer sends during a rollout: clients that
//! keep their connection alive and clients that open a new one for every request, each
//! alternating a create and a read of what it created, recording every outcome.

use crate::helpers::Server;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long before the end of the drain delay a request must have started to be owed a
/// successful answer: the listener closes when the delay ends, give or take scheduling.
const MARGIN: Duration = Duration::from_millis(300);

/// One request and what came of it.
#[derive(Debug)]
pub(crate) struct Outcome {
    client: String,
    started: Instant,
    /// The status, or the client's error (refused or closed connection, timeout).
    result: Result<StatusCode, String>,
    /// What a create answered 201 with: the id and the name sent.
    created: Option<(String, String)>,
}

/// The running clients.
#[derive(Debug)]
pub(crate) struct Stream {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Stream {
    /// Starts `kept` clients on kept-alive connections and `fresh` ones opening a new
    /// connection per request, all with the server's current credential.
    pub(crate) fn start(server: &Server, kept: usize, fresh: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let token = server.tokens().access_token.clone();
        let kinds = (0..kept).map(|i| (format!("kept-{i}"), true));
        let kinds = kinds.chain((0..fresh).map(|i| (format!("fresh-{i}"), false)));
        let tasks = kinds
            .map(|(name, keep_alive)| {
                let client = client(&token, keep_alive);
                let base = server.url("/api/v1/resource");
                tokio::spawn(run(name, client, base, Arc::clone(&stop)))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the clients and returns every outcome.
    pub(crate) async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("a stream client"));
        }
        all
    }
}

fn client(token: &str, keep_alive: bool) -> Client {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    headers.insert(AUTHORIZATION, value);
    let builder = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .default_headers(headers);
    let builder = if keep_alive {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    builder.build().expect("an HTTP client")
}

async fn run(name: String, client: Client, base: String, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut last: Option<String> = None;
    let mut n = 0u32;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let started = Instant::now();
        let sent_name = format!("{name}-{n}");
        let (request, is_create) = match (&last, n % 2) {
            (Some(id), 0) => (client.get(format!("{base}/{id}")), false),
            _ => (client.post(&base).json(&json!({"name": sent_name})), true),
        };
        let result = match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let id = body["data"]["id"].as_str().map(str::to_owned);
                let created = (is_create && status == StatusCode::CREATED)
                    .then_some(id)
                    .flatten();
                if let Some(id) = &created {
                    last = Some(id.clone());
                }
                outcomes.push(Outcome {
                    client: name.clone(),
                    started,
                    result: Ok(status),
                    created: created.map(|id| (id, sent_name)),
                });
                continue;
            }
            Err(e) => Err(format!("{e:?}")),
        };
        outcomes.push(Outcome {
            client: name.clone(),
            started,
            result,
            created: None,
        });
        // The listener is gone: try again shortly, as a balancer would elsewhere.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

/// Checks the outcomes of a stream around a SIGTERM at `signalled` with a drain delay of
/// `drain`, returning the records whose creation was acknowledged.
pub(crate) fn check(
    outcomes: &[Outcome],
    signalled: Instant,
    drain: Duration,
) -> Vec<(String, String)> {
    let owed_until = signalled + drain - MARGIN;
    let mut problems = Vec::new();
    for o in outcomes {
        let at = o.started.saturating_duration_since(signalled);
        let when = if o.started < signalled {
            "before SIGTERM".to_owned()
        } else {
            format!("{at:?} after SIGTERM")
        };
        match &o.result {
            Ok(status) if status.is_success() => {}
            Ok(status) => problems.push(format!("{} {when}: answered {status}", o.client)),
            Err(e) if o.started < owed_until => {
                problems.push(format!("{} {when}, inside the drain: {e}", o.client));
            }
            Err(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} requests failed:\n{}",
        problems.len(),
        outcomes.len(),
        problems.join("\n")
    );
    let after = outcomes.iter().filter(|o| o.started >= owed_until);
    let refused = after.filter(|o| o.result.is_err()).count();
    eprintln!(
        "stream: {} requests, {} during the drain, {refused} refused or cut after it",
        outcomes.len(),
        outcomes
            .iter()
            .filter(|o| o.started > signalled && o.started < owed_until)
            .count(),
    );
    // The stream did run through the drain, on both kinds of connection.
    for kind in ["kept-", "fresh-"] {
        let served = outcomes
            .iter()
            .filter(|o| o.client.starts_with(kind) && o.started > signalled)
            .filter(|o| o.started < owed_until && o.result.is_ok())
            .count();
        assert!(
            served >= 10,
            "only {served} {kind} requests served during the drain"
        );
    }
    outcomes.iter().filter_map(|o| o.created.clone()).collect()
}

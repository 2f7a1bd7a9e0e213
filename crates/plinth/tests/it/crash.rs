//! The crash harness: `plinth serve` is killed with SIGKILL again and again while workers
//! create (with `Idempotency-Key`), update and delete records, and restarted each time.
//!
//! After every restart: every acknowledged write is there with its content and version; a
//! write cut off by the kill either happened whole or not at all; re-sending an acknowledged
//! create with its key returns the same record; re-sending a cut-off create makes exactly
//! one. At the end a full listing holds exactly the records the workers know of: nothing
//! lost, nothing duplicated. Runs on the engine of the run (SQLite or PostgreSQL).

use crate::helpers::{Reply, Server, TestDir};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Kills per run.
const CYCLES: usize = 20;
const WORKERS: usize = 6;
/// Writes run at least this long before each kill…
const WINDOW: Duration = Duration::from_millis(150);
/// …and until at least this many were acknowledged in the cycle.
const MIN_ACKS: usize = 12;

/// A record as its worker last saw it acknowledged.
#[derive(Debug, Clone, PartialEq)]
struct State {
    name: String,
    version: i64,
    deleted: bool,
}

impl State {
    fn of(data: &Value) -> Self {
        Self {
            name: data["name"].as_str().expect("name").to_owned(),
            version: data["version"].as_i64().expect("version"),
            deleted: data["status"] == "deleted",
        }
    }
}

/// A write sent but not answered when the process died.
#[derive(Debug, Clone)]
enum Pending {
    Create { key: String },
    Update { id: String, to: State },
    Delete { id: String },
}

/// One worker's records (it alone writes them, one request at a time, so at most one of
/// its writes is ever in doubt).
#[derive(Debug, Default)]
struct Ledger {
    records: BTreeMap<String, (String, State)>,
    pending: Option<Pending>,
    /// Ids written in this cycle, checked after the restart.
    touched: Vec<String>,
    /// Keys of creates acknowledged in this cycle (with their ids).
    created: Vec<(String, String)>,
    next: usize,
}

#[derive(Clone)]
struct Shared {
    client: Client,
    base: String,
    killed: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
}

impl Shared {
    /// Sends a write; `None` if the answer never came whole (the process was killed).
    async fn send(&self, req: RequestBuilder) -> Option<Reply> {
        let Ok(resp) = req.send().await else {
            assert!(
                self.killed.load(Ordering::SeqCst),
                "a request failed before the kill"
            );
            return None;
        };
        let status = resp.status();
        let Ok(text) = resp.text().await else {
            assert!(
                self.killed.load(Ordering::SeqCst),
                "a response was cut before the kill"
            );
            return None;
        };
        let body = serde_json::from_str(&text).expect("a JSON body");
        self.acks.fetch_add(1, Ordering::SeqCst);
        assert!(
            status.is_success(),
            "a write before the kill: {status} {text}"
        );
        Some(Reply {
            status,
            headers: Default::default(),
            body,
            text,
        })
    }
}

/// Creates, updates and deletes until the process dies under it.
async fn work(w: usize, cycle: usize, shared: Shared, mut ledger: Ledger) -> Ledger {
    loop {
        let n = ledger.next;
        ledger.next += 1;
        let live: Vec<String> = ledger
            .records
            .iter()
            .filter(|(_, (_, s))| !s.deleted)
            .map(|(id, _)| id.clone())
            .collect();
        let pick = live.get(n * 7919 % live.len().max(1)).cloned();
        match (n % 5, pick) {
            (1 | 3, Some(id)) => {
                let (key, before) = ledger.records[&id].clone();
                let to = State {
                    name: format!("{key}-v{}", before.version + 1),
                    version: before.version + 1,
                    deleted: false,
                };
                ledger.pending = Some(Pending::Update {
                    id: id.clone(),
                    to: to.clone(),
                });
                let url = format!("{}/{id}", shared.base);
                let req = shared.client.patch(url).json(&json!({"name": to.name}));
                let Some(r) = shared.send(req).await else {
                    return ledger;
                };
                assert_eq!(State::of(&r.body["data"]), to, "{}", r.text);
                ledger.records.insert(id.clone(), (key, to));
                ledger.touched.push(id);
            }
            (4, Some(id)) => {
                let (key, before) = ledger.records[&id].clone();
                ledger.pending = Some(Pending::Delete { id: id.clone() });
                let req = shared.client.delete(format!("{}/{id}", shared.base));
                let Some(r) = shared.send(req).await else {
                    return ledger;
                };
                let after = State::of(&r.body["data"]);
                assert!(
                    after.deleted && after.version == before.version + 1,
                    "{}",
                    r.text
                );
                ledger.records.insert(id.clone(), (key, after));
                ledger.touched.push(id);
            }
            _ => {
                let key = format!("crash-{cycle}-{w}-{n}");
                ledger.pending = Some(Pending::Create { key: key.clone() });
                let Some(r) = shared
                    .send(create(&shared.client, &shared.base, &key))
                    .await
                else {
                    return ledger;
                };
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
                let id = r.body["data"]["id"].as_str().expect("id").to_owned();
                let state = State::of(&r.body["data"]);
                assert_eq!(state.name, key);
                ledger.records.insert(id.clone(), (key.clone(), state));
                ledger.touched.push(id.clone());
                ledger.created.push((key, id));
            }
        }
        ledger.pending = None;
    }
}

fn create(client: &Client, base: &str, key: &str) -> RequestBuilder {
    client
        .post(base)
        .header("idempotency-key", key)
        .json(&json!({ "name": key }))
}

/// After a restart: the cycle's acknowledged writes are there, its cut-off writes happened
/// whole or not at all (the ledger learns which), and its creates replay by key.
async fn check_cycle(server: &Server, ledger: &mut Ledger) {
    let base = server.url("/api/v1/resource");
    for id in std::mem::take(&mut ledger.touched) {
        if matches!(&ledger.pending, Some(Pending::Update { id: p, .. } | Pending::Delete { id: p }) if *p == id)
        {
            continue;
        }
        let r = read(server, &id).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "acknowledged record {id} lost: {}",
            r.text
        );
        assert_eq!(
            State::of(&r.body["data"]),
            ledger.records[&id].1,
            "record {id}"
        );
    }
    match ledger.pending.take() {
        None => {}
        Some(Pending::Update { id, to }) => {
            let now = State::of(&read(server, &id).await.body["data"]);
            assert!(
                now == ledger.records[&id].1 || now == to,
                "a cut-off update of {id} left {now:?}"
            );
            ledger.records.get_mut(&id).expect("known").1 = now;
        }
        Some(Pending::Delete { id }) => {
            let before = ledger.records[&id].1.clone();
            let now = State::of(&read(server, &id).await.body["data"]);
            let whole = State {
                deleted: true,
                version: before.version + 1,
                ..before.clone()
            };
            assert!(
                now == before || now == whole,
                "a cut-off delete of {id} left {now:?}"
            );
            ledger.records.get_mut(&id).expect("known").1 = now;
        }
        Some(Pending::Create { key }) => {
            // The client retries: exactly one record comes of it, whether or not the first
            // try committed (the full listing at the end finds any duplicate).
            let r = server.send(create(&server.client(), &base, &key)).await;
            assert_eq!(r.status, StatusCode::CREATED, "retry of {key}: {}", r.text);
            let id = r.body["data"]["id"].as_str().expect("id").to_owned();
            ledger
                .records
                .insert(id, (key.clone(), State::of(&r.body["data"])));
        }
    }
    for (key, id) in std::mem::take(&mut ledger.created) {
        if ledger.records[&id].1.deleted {
            continue;
        }
        let r = server.send(create(&server.client(), &base, &key)).await;
        assert_eq!(r.status, StatusCode::CREATED, "replay of {key}: {}", r.text);
        assert_eq!(
            r.header("idempotent-replayed"),
            Some("true"),
            "replay of {key}"
        );
        assert_eq!(
            r.body["data"]["id"],
            json!(id),
            "replay of {key} after restart"
        );
    }
}

async fn read(server: &Server, id: &str) -> Reply {
    server.get(&format!("/api/v1/resource/{id}")).await
}

/// Every record in the database, deleted ones included, by id.
async fn everything(server: &Server) -> BTreeMap<String, State> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/resource?limit=200&status[in]=active,inactive,deleted".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = server.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for data in r.body["data"].as_array().expect("a page") {
            let id = data["id"].as_str().expect("id").to_owned();
            assert!(
                all.insert(id, State::of(data)).is_none(),
                "a record listed twice"
            );
        }
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_and_idempotency_keys_survive_repeated_sigkill() {
    let dir = TestDir::new();
    let mut ledgers: Vec<Ledger> = (0..WORKERS).map(|_| Ledger::default()).collect();
    let mut server = Server::start(&dir).await;
    for cycle in 0..CYCLES {
        let shared = Shared {
            client: server.client(),
            base: server.url("/api/v1/resource"),
            killed: Arc::default(),
            acks: Arc::default(),
        };
        let workers: Vec<_> = std::mem::take(&mut ledgers)
            .into_iter()
            .enumerate()
            .map(|(w, ledger)| tokio::spawn(work(w, cycle, shared.clone(), ledger)))
            .collect();
        let started = Instant::now();
        while started.elapsed() < WINDOW || shared.acks.load(Ordering::SeqCst) < MIN_ACKS {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cycle {cycle}: too few writes acknowledged\n{}",
                server.proc.describe()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shared.killed.store(true, Ordering::SeqCst);
        let status = server.proc.kill();
        assert_eq!(
            status.signal(),
            Some(9),
            "cycle {cycle}: not killed by SIGKILL"
        );
        for w in workers {
            ledgers.push(w.await.expect("worker"));
        }
        drop(server);
        server = Server::start(&dir).await;
        for ledger in &mut ledgers {
            check_cycle(&server, ledger).await;
        }
    }
    let listed = everything(&server).await;
    let known: BTreeMap<String, State> = ledgers
        .iter()
        .flat_map(|l| l.records.iter().map(|(id, (_, s))| (id.clone(), s.clone())))
        .collect();
    assert!(known.len() >= CYCLES, "too few records written");
    assert_eq!(
        listed, known,
        "the database holds exactly the acknowledged records"
    );
}

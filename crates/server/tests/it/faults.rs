//! Database faults under a running Plinth: PostgreSQL stops, restarts, or stops answering
//! (connections stay open, nothing comes back, as in a network partition). Requests fail fast
//! with `503 UNAVAILABLE` and `Retry-After`, `/readyz` goes 503, and service resumes by
//! itself when the database is back, without restarting Plinth.
//!
//! Each test starts a PostgreSQL cluster of its own (`initdb` in a temporary directory, a free
//! port, its own socket directory) and stops it; the machine's shared server is never
//! touched. PostgreSQL refuses to run as root, so when the tests run as root the cluster runs
//! as the `postgres` user. PostgreSQL only: skipped, with the reason printed, when
//! `PLINTH_TEST_POSTGRES` is unset.

use crate::helpers::{
    Resp, TestApp, TestDb, assert_error, id_of, postgres_server, test_auth_config,
};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) are, unless
/// [`PG_BIN_ENV`] says otherwise.
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Overrides [`DEFAULT_PG_BIN`].
const PG_BIN_ENV: &str = "PLINTH_TEST_PG_BIN";

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

/// A PostgreSQL cluster of the test's own, stopped and deleted on `Drop` (also when the
/// test fails).
#[derive(Debug)]
struct Cluster {
    /// Holds the data directory, the socket directory and the log; removed on `Drop`.
    root: TempDir,
    bin: PathBuf,
    port: u16,
    /// Whether the tools must run as the `postgres` user (the tests run as root).
    as_postgres: bool,
    running: bool,
    /// Processes stopped by [`Cluster::freeze`], continued by [`Cluster::thaw`] or `Drop`.
    frozen: Vec<String>,
}

impl Cluster {
    /// Creates a cluster with `initdb` (trust authentication, user `postgres`) and starts
    /// it on a free loopback port.
    fn start_new() -> Self {
        let bin =
            std::env::var(PG_BIN_ENV).map_or_else(|_| PathBuf::from(DEFAULT_PG_BIN), PathBuf::from);
        assert!(
            bin.join("pg_ctl").exists(),
            "no pg_ctl in {} (set {PG_BIN_ENV} to PostgreSQL's bin directory)",
            bin.display()
        );
        let root = tempfile::tempdir().expect("create the cluster's directory");
        let as_postgres = running_as_root();
        if as_postgres {
            run(
                Command::new("chown").arg("postgres:").arg(root.path()),
                "chown the cluster's directory to postgres",
            );
        }
        std::fs::create_dir(root.path().join("sockets")).ok();
        if as_postgres {
            run(
                Command::new("chown")
                    .arg("postgres:")
                    .arg(root.path().join("sockets")),
                "chown the socket directory to postgres",
            );
        }
        let mut cluster = Self {
            root,
            bin,
            port: free_port(),
            as_postgres,
            running: false,
            frozen: Vec::new(),
        };
        let data = cluster.data();
        run(
            cluster.tool("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("postgres.log")
    }

    /// A PostgreSQL tool, run as `postgres` when needed, from the cluster's directory (the
    /// `postgres` user may not be able to read the test's working directory).
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(self.root.path());
        cmd
    }

    /// The server URL, without a database name.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.root.path().join("sockets").display()
        );
        let (data, log) = (self.data(), self.log());
        let ok = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            ok.status.success(),
            "pg_ctl start failed: {}{}\nlog:\n{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops the server, disconnecting every client (`-m fast`), and waits until it is down.
    fn stop(&mut self) {
        let data = self.data();
        run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w", "-t", "30", "stop"]),
            "pg_ctl stop",
        );
        self.running = false;
    }

    /// Restarts the server (`-m fast`: every client is disconnected).
    fn restart(&mut self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.root.path().join("sockets").display()
        );
        run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(self.log())
                .args(["-o", &options, "-m", "fast", "-w", "-t", "30", "restart"]),
            "pg_ctl restart",
        );
        self.running = true;
    }
}

impl Cluster {
    /// Stops (SIGSTOP) the server and every backend: connections stay open but nothing
    /// answers, as in a network partition or a hung host.
    fn freeze(&mut self) {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .expect("read postmaster.pid");
        let postmaster = pid_file
            .lines()
            .next()
            .expect("the postmaster's pid")
            .trim()
            .to_owned();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .expect("run pgrep");
        let mut pids = vec![postmaster];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
        run(
            Command::new("kill").arg("-STOP").args(&pids),
            "stop the PostgreSQL processes",
        );
        self.frozen = pids;
    }

    /// Continues what [`Self::freeze`] stopped.
    fn thaw(&mut self) {
        if self.frozen.is_empty() {
            return;
        }
        let pids = std::mem::take(&mut self.frozen);
        let continued = Command::new("kill").arg("-CONT").args(&pids).output();
        if !continued.is_ok_and(|o| o.status.success()) {
            eprintln!("warning: could not continue the PostgreSQL processes {pids:?}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.thaw();
        if self.running {
            let data = self.data();
            let stopped = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
            if !stopped.is_ok_and(|o| o.status.success()) {
                eprintln!(
                    "warning: could not stop the test PostgreSQL cluster in {}",
                    data.display()
                );
            }
        }
        // The TempDir removes the data directory after this.
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A loopback port nobody listens on now (bound, read, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Runs blocking cluster work without stalling the server's runtime threads.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A Plinth instance over a fresh database on `cluster`, with short connect and statement
/// timeouts so an unreachable database is noticed fast.
async fn app_on(cluster: &Cluster) -> TestApp {
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
    let mut cluster = blocking(Cluster::start_new);
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
    let mut cluster = blocking(Cluster::start_new);
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
    let mut cluster = blocking(Cluster::start_new);
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

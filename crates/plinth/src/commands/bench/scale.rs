//! `plinth bench --scale N`: the server in a process of its own (this binary's `serve`, on
//! a temporary data directory, with the bench's configuration), so that its memory and its
//! start are its own; `resource` seeded to each checkpoint and measured there
//! ([`plinth_bench::ScaleServer`]); the query plans of two lists through the store's own
//! list statement ([`plinth_store::Store::explain_list`]); then the server stopped and
//! started again on the full database, timed to its first ready answer.
//!
//! The process is killed and the directory removed on every way out: an error, Ctrl-C,
//! SIGTERM, or the end (`Server`'s `Drop`, then the `TempDir`'s). A PostgreSQL database is the user's:
//! it is left as it is.

use super::super::serve;
use crate::cli::{BenchArgs, GlobalArgs};
use crate::config::{Config, Database, env};
use crate::logging;
use anyhow::Context;
use plinth_bench::{Plan, SCALE_LISTS, ScaleList, ScaleReport, ScaleServer};
use plinth_core::ListQuery;
use plinth_core::policy::{FieldAccess, ListScope};
use plinth_core::query::MAX_LIMIT;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer `/readyz`, or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(120);
/// Between readiness polls: the cold start's resolution.
const POLL: Duration = Duration::from_millis(5);
/// The first admin the server creates, whose API key the run uses.
const ADMIN_EMAIL: &str = "scale-bench@example.com";

/// `plinth bench --scale N`.
pub(crate) fn run(global: &GlobalArgs, args: &BenchArgs, records: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        global.config.is_none(),
        "--scale serves the bench's own configuration (`resource` with `contact` and `rank`); \
         --config is not used with it"
    );
    let points =
        plinth_bench::checkpoints(records, &args.checkpoints).map_err(anyhow::Error::msg)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    let samples = args.samples as usize;
    super::super::runtime()?.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
        // On a signal the run is dropped, which kills the server and removes its directory.
        tokio::select! {
            done = scale(&points, samples) => done,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    })
}

async fn scale(points: &[u64], samples: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("plinth-bench-scale-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let config_file = dir.path().join("features.toml");
    std::fs::write(&config_file, plinth_bench::FEATURES_TOML)
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let data = dir.path().join("data");
    // What the server will read: the bench opens its database with it for the plans.
    let mut config = Config::load(
        &GlobalArgs {
            config: Some(config_file.clone()),
            data_dir: Some(data.clone()),
            log_level: None,
        },
        None,
    )?;
    let postgres = match config.database()? {
        Database::Postgres(url) => Some(url.expose().to_owned()),
        Database::Sqlite(_) => {
            config.settings.database_url = None;
            None
        }
    };
    let engine = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let spec = Spec {
        exe: std::env::current_exe().context("cannot find this binary")?,
        config_file,
        data,
        addr: free_port()?,
        postgres,
        log: dir.path().join("serve.log"),
        password: format!("scale-{}-bench-password", std::process::id()),
    };
    let mut target = ScaleServer::new(
        &format!("http://{}", spec.addr),
        config
            .settings
            .metrics_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        samples,
        MAX_LIMIT,
    )?;
    let mut server = Server::spawn(&spec)?;
    server.ready(&target).await?;
    target
        .sign_in(ADMIN_EMAIL, &spec.password)
        .await
        .context(
            "cannot sign in as the bench's admin (the scale mode needs an empty database: with \
             DATABASE_URL, a fresh scratch database)",
        )
        .map_err(|e| server.with_log(e))?;
    let mut checkpoints = Vec::new();
    for &records in points {
        eprintln!("scale: seeding to {records} records");
        let done = async {
            let seed = target.seed_to(records).await?;
            eprintln!("scale: measuring at {records} records");
            target.checkpoint(seed).await
        }
        .await;
        checkpoints.push(done.map_err(|e| server.with_log(e.into()))?);
    }
    let plans = match checkpoints.last() {
        Some(last) => plans(&config, last).await?,
        None => Vec::new(),
    };
    eprintln!(
        "scale: restarting the server on {} records",
        target.seeded()
    );
    server.stop().await?;
    let spawned = Instant::now();
    let mut server = Server::spawn(&spec)?;
    server.ready(&target).await?;
    let ready = spawned.elapsed();
    target.reconnect()?;
    let cold = target
        .cold_start(ready)
        .await
        .map_err(|e| server.with_log(e.into()))?;
    server.stop().await?;
    let report = ScaleReport {
        url: target.url().to_owned(),
        engine: engine.to_owned(),
        checkpoints,
        plans,
        cold: Some(cold),
    };
    print!("{report}");
    Ok(())
}

/// The plans of the indexed sort and the filtered list, first page and deep page, from the
/// statement the store runs for them, on the running server's database (opened read-only).
async fn plans(config: &Config, at: &plinth_bench::ScaleCheckpoint) -> anyhow::Result<Vec<Plan>> {
    let store = serve::open_store_as(config, true).await?;
    let model = config
        .schema
        .model("resource")
        .context("the bench's configuration declares no `resource`")?;
    let mut plans = Vec::new();
    for figures in at
        .lists
        .iter()
        .filter(|l| l.list.name != SCALE_LISTS[0].name)
    {
        for (after, cursor) in [
            (0, None),
            (figures.deep_after, figures.deep_cursor.as_deref()),
        ] {
            let pairs = pairs(&figures.list, cursor);
            let query = ListQuery::parse(model, &pairs, FieldAccess::All)
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .with_context(|| format!("the {} list's query", figures.list.name))?;
            let lines = store.explain_list(model, &query, ListScope::All).await?;
            plans.push(Plan {
                list: figures.list,
                after,
                lines,
            });
        }
    }
    store.close().await;
    Ok(plans)
}

/// A list's page as query-string pairs, as the server parses them.
fn pairs(list: &ScaleList, cursor: Option<&str>) -> Vec<(String, String)> {
    let query = list.query(list.limit);
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Some(c) = cursor {
        pairs.push(("cursor".to_owned(), c.to_owned()));
    }
    pairs
}

/// A loopback port free now (the server binds it a moment later).
fn free_port() -> anyhow::Result<std::net::SocketAddr> {
    let socket =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(socket.local_addr()?)
}

/// How the server is started, each time alike.
struct Spec {
    exe: PathBuf,
    config_file: PathBuf,
    data: PathBuf,
    addr: std::net::SocketAddr,
    /// `DATABASE_URL`, on PostgreSQL.
    postgres: Option<String>,
    /// Its standard output and error.
    log: PathBuf,
    password: String,
}

/// The server's process, killed when dropped unless it was stopped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(spec: &Spec) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("cannot open {}", spec.log.display()))?;
        let mut cmd = Command::new(&spec.exe);
        cmd.arg("serve")
            .arg("--config")
            .arg(&spec.config_file)
            .arg("--data-dir")
            .arg(&spec.data)
            .arg("--listen")
            .arg(spec.addr.to_string())
            .env(env::LOG_LEVEL, "warn")
            .env(env::ADMIN_EMAIL, ADMIN_EMAIL)
            .env(env::ADMIN_PASSWORD, &spec.password)
            .env_remove(env::DATABASE_URL)
            .env_remove(env::DATABASE_READ_URL)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(url) = &spec.postgres {
            cmd.env(env::DATABASE_URL, url);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} serve", spec.exe.display()))?;
        Ok(Self {
            child,
            log: spec.log.clone(),
        })
    }

    /// Waits for `/readyz` to answer 200; fails when the process exits first, or after
    /// [`PATIENCE`].
    async fn ready(&mut self, target: &ScaleServer) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if target.ready().await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(self.with_log(anyhow::anyhow!("the server exited ({status})")));
            }
            if Instant::now() > deadline {
                return Err(self.with_log(anyhow::anyhow!(
                    "the server was not ready within {} s",
                    PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        anyhow::ensure!(
            sent.is_ok_and(|s| s.success()),
            "cannot send SIGTERM to the server (pid {pid})"
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                return Err(self.with_log(anyhow::anyhow!(
                    "the server exited with {status} after SIGTERM"
                )));
            }
            if Instant::now() > deadline {
                return Err(self.with_log(anyhow::anyhow!(
                    "the server did not exit within {} s of SIGTERM",
                    PATIENCE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `e`, with the end of the server's log (the directory holding it is removed on exit),
    /// and whether the server is still running.
    fn with_log(&mut self, e: anyhow::Error) -> anyhow::Error {
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("the server exited ({status})"),
            _ => "the server was running".to_owned(),
        };
        anyhow::anyhow!(
            "{e:#}\n{state}; the end of its log:\n{}",
            tail(&self.log, 30)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `n` lines of the file at `path`.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

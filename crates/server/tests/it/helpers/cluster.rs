//! PostgreSQL clusters of a test's own: a primary made with `initdb` and streaming replicas
//! made from it with `pg_basebackup`, each on a free loopback port with its own socket
//! directory, stopped and deleted on `Drop` (also when the test fails). The machine's shared
//! server is never touched.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root every tool runs as the
//! `postgres` user, in directories it owns. Outages a test causes on purpose (stop, restart,
//! freeze) are in [`outage`].

mod outage;

pub(crate) use outage::expect_pg_binaries;

use super::{TestApp, TestDb, make_user, test_auth_config};
use plinth_core::{Role, Schema};
use plinth_server::{AppState, Auth, ServerConfig};
use plinth_store::{PgOptions, PgStore, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where the PostgreSQL server binaries are, unless [`PG_BIN_ENV`] says otherwise.
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Overrides [`DEFAULT_PG_BIN`].
const PG_BIN_ENV: &str = "PLINTH_TEST_PG_BIN";
/// The tools the clusters need.
const TOOLS: [&str; 5] = ["initdb", "pg_ctl", "pg_basebackup", "postgres", "psql"];
/// How long replication may take to catch up, or replay to pause, before a test gives up.
const REPLICATION_WAIT: Duration = Duration::from_secs(10);

/// PostgreSQL's bin directory, or `None` (after printing why `test` is skipped) when the
/// tools are missing or cannot be run.
pub(crate) fn pg_binaries(test: &str) -> Option<PathBuf> {
    let bin = pg_bin_dir();
    if let Some(missing) = TOOLS.iter().find(|t| !bin.join(t).exists()) {
        eprintln!(
            "skipped {test}: no {missing} in {} (set {PG_BIN_ENV} to PostgreSQL's bin directory)",
            bin.display()
        );
        return None;
    }
    if running_as_root()
        && !Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "skipped {test}: running as root and there is no `postgres` user to run PostgreSQL as"
        );
        return None;
    }
    Some(bin)
}

/// [`PG_BIN_ENV`], or [`DEFAULT_PG_BIN`].
fn pg_bin_dir() -> PathBuf {
    std::env::var(PG_BIN_ENV).map_or_else(|_| PathBuf::from(DEFAULT_PG_BIN), PathBuf::from)
}

/// Runs blocking cluster work without stalling the server's runtime threads.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// One running PostgreSQL cluster (trust authentication, superuser `postgres`).
#[derive(Debug)]
pub(crate) struct PgCluster {
    /// Holds the data directory, the socket directory and the log; removed on `Drop`, after
    /// the server is stopped.
    root: TempDir,
    bin: PathBuf,
    port: u16,
    /// Whether the tools must run as the `postgres` user (the tests run as root).
    as_postgres: bool,
    /// Whether `Drop` must stop the server.
    running: bool,
    /// Processes stopped by [`PgCluster::freeze`], continued by [`PgCluster::thaw`] or `Drop`.
    frozen: Vec<String>,
}

impl PgCluster {
    /// A new primary: `initdb` (trust for local and loopback connections, replication
    /// included), started with WAL for streaming replicas.
    pub(crate) fn primary(bin: &Path) -> Self {
        let mut cluster = Self::empty(bin);
        let data = cluster.data();
        cluster.run(
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

    /// A hot-standby streaming replica of `primary`: `pg_basebackup -R` (which writes the
    /// connection to the primary and `standby.signal`), started on a port of its own.
    pub(crate) fn replica_of(primary: &Self) -> Self {
        let mut cluster = Self::empty(&primary.bin);
        let data = cluster.data();
        let port = primary.port.to_string();
        cluster.run(
            cluster.tool("pg_basebackup").arg("-D").arg(&data).args([
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
            ]),
            "pg_basebackup",
        );
        cluster.start();
        cluster
    }

    /// A cluster directory owned by whoever runs the tools, with nothing in it yet.
    fn empty(bin: &Path) -> Self {
        let root = tempfile::Builder::new()
            .prefix("plinth-pg-")
            .tempdir_in("/tmp")
            .expect("create the cluster's directory");
        std::fs::create_dir(root.path().join("sockets")).expect("create the socket directory");
        let cluster = Self {
            root,
            bin: bin.to_owned(),
            port: free_port(),
            as_postgres: running_as_root(),
            running: false,
            frozen: Vec::new(),
        };
        if cluster.as_postgres {
            cluster.run(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(cluster.root.path()),
                "chown the cluster's directory to postgres",
            );
        }
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

    /// Runs `cmd`, panicking with its output and the server log when it fails.
    fn run(&self, cmd: &mut Command, what: &str) -> Output {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}): {}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
        out
    }

    /// The server's command-line options (`pg_ctl -o`): its port, socket directory and
    /// settings.
    fn server_options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 \
             -c wal_level=replica -c max_wal_senders=4",
            self.port,
            self.root.path().join("sockets").display()
        )
    }

    /// Starts the server (again, after [`Self::stop`]) and waits until it accepts
    /// connections.
    pub(crate) fn start(&mut self) {
        let options = self.server_options();
        let (data, log) = (self.data(), self.log());
        // Set first: a start that times out may still leave a server to stop.
        self.running = true;
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options, "-w", "-t", "30", "start"]),
            "pg_ctl start",
        );
    }

    /// The server URL, without a database name.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The URL of `database` on this server.
    pub(crate) fn db_url(&self, database: &str) -> String {
        format!("{}/{database}", self.url())
    }

    /// Runs `sql` with `psql` in `database` and returns its unaligned, trimmed output.
    pub(crate) fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run(
            self.tool("psql").args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ]),
            &format!("psql {sql:?}"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until this replica has replayed everything `primary` has written so far.
    pub(crate) fn wait_for_replay_of(&self, primary: &Self) {
        let lsn = primary.psql("postgres", "SELECT pg_current_wal_lsn()");
        let since = Instant::now();
        let check = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        while self.psql("postgres", &check) != "t" {
            assert!(
                since.elapsed() < REPLICATION_WAIT,
                "the replica has not replayed up to {lsn} after {REPLICATION_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pauses WAL replay on this replica and waits until it has taken effect: from then on
    /// nothing written on the primary becomes visible here.
    pub(crate) fn pause_replay(&self) {
        self.psql("postgres", "SELECT pg_wal_replay_pause()");
        let since = Instant::now();
        loop {
            let state = self.psql("postgres", "SELECT pg_get_wal_replay_pause_state()");
            if state == "paused" {
                return;
            }
            assert!(
                since.elapsed() < REPLICATION_WAIT,
                "replay still {state:?} after {REPLICATION_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resumes WAL replay on this replica.
    pub(crate) fn resume_replay(&self) {
        self.psql("postgres", "SELECT pg_wal_replay_resume()");
    }
}

impl Drop for PgCluster {
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
        // The TempDir removes the directory after this.
    }
}

impl TestApp {
    /// A server over `database` (which must exist on both clusters) with reads offered to
    /// `replica` (`DATABASE_READ_URL`) and the given read-your-own-writes window. The
    /// default `resource` model; migrated through the store, as `plinth serve` does.
    pub(crate) async fn spawn_with_replica(
        primary: &PgCluster,
        replica: &PgCluster,
        database: &str,
        ryow_window: Duration,
    ) -> Self {
        let mut options = PgOptions::new(primary.db_url(database));
        options.read_url = Some(replica.db_url(database));
        options.pool_size = 4;
        options.keys = super::test_keys();
        let store: Arc<dyn Store> = Arc::new(
            PgStore::open(options)
                .await
                .expect("open the PostgreSQL store with a read replica"),
        );
        assert!(
            store.has_read_replica(),
            "a store opened with read_url has no read replica"
        );
        let schema = Schema::from_decls(&[]).expect("the default schema");
        store
            .migrate(&schema, false)
            .await
            .expect("migrate the primary");
        let auth = Auth::new(test_auth_config()).expect("auth settings");
        let state = AppState::with_ryow_window(
            Arc::clone(&store),
            Arc::new(schema),
            Arc::new(auth),
            ryow_window,
        );
        let (admin, admin_token) = make_user(&state, "admin@example.com", Role::Admin).await;
        let db = TestDb {
            store,
            dir: None,
            postgres: Some(plinth_testkit::PgDatabase::adopt(&primary.url(), database)),
        };
        Self::serve(
            Arc::new(db),
            state,
            ServerConfig::default(),
            admin_token,
            admin.id.to_string(),
        )
        .await
    }
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

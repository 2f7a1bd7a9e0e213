//! The harness: runs the real `plinth` binary in a temporary directory, collects its output
//! and talks HTTP to it.
//!
//! Every child runs with its current directory set to the test's own temporary directory (so
//! no stray `./plinth.toml` is read) and with `PLINTH_*`, `DATABASE_URL` and `LOG_LEVEL`
//! removed from its environment, so the developer's shell cannot change an outcome.
//!
//! Every request needs credentials now: [`Server::start`] creates the first admin from
//! `PLINTH_ADMIN_EMAIL` / `PLINTH_ADMIN_PASSWORD` ([`ADMIN_EMAIL`], [`ADMIN_PASSWORD`]), logs
//! in once the server listens, and sends the access token on every request by default.

mod server;

pub(crate) use server::{LOGIN_REQUEST_ID, Reply, Server, Tokens, bearer_client, reply};

use plinth_testkit::{Engine, PgDatabase};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_plinth");
/// Generous: a loaded CI machine runs many of these at once.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The first admin every [`Server::start`] creates (or, on a restart, logs in as).
pub(crate) const ADMIN_EMAIL: &str = "admin@plinth.test";
/// Passes the password policy: at least 12 characters and not a common password.
pub(crate) const ADMIN_PASSWORD: &str = "it-admin-staple-horse-91";

/// A fixed set of encryption keys (`PLINTH_ENCRYPTION_KEYS`), for production starts.
pub(crate) const ENCRYPTION_KEYS: &str = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The commands that open the database: on PostgreSQL, the harness gives them the test's
/// database as `DATABASE_URL` (unless the test sets one itself).
const DATABASE_COMMANDS: [&str; 10] = [
    "serve", "migrate", "user", "export", "import", "audit", "keys", "backup", "restore", "bench",
];

/// A temporary working directory with the data directory inside it, and the test's database:
/// the SQLite file in the data directory, or, when the run is on PostgreSQL
/// (`plinth_testkit::engine`), a fresh PostgreSQL database, dropped with the `TestDir`.
#[derive(Debug)]
pub(crate) struct TestDir {
    dir: tempfile::TempDir,
    postgres: Option<PgDatabase>,
}

impl TestDir {
    /// A directory on the engine of this run.
    pub(crate) fn new() -> Self {
        match plinth_testkit::engine() {
            Engine::Sqlite => Self::sqlite(),
            Engine::Postgres(server) => Self {
                postgres: Some(PgDatabase::create_blocking(&server)),
                ..Self::sqlite()
            },
        }
    }

    /// A directory whose commands use the SQLite file in the data directory whatever the
    /// engine of the run: for tests that look into that file.
    pub(crate) fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("plinth-it-")
            .tempdir()
            .expect("create a temporary directory");
        Self {
            dir,
            postgres: None,
        }
    }

    /// The test's PostgreSQL database URL, when it has one.
    pub(crate) fn postgres_url(&self) -> Option<String> {
        self.postgres.as_ref().map(PgDatabase::url)
    }

    /// A `plinth args…` command in this directory (see [`command`]); a command that opens
    /// the database gets the test's PostgreSQL database as `DATABASE_URL` unless `envs`
    /// names one.
    pub(crate) fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let url = self.postgres_url().filter(|_| {
            args.iter().any(|a| DATABASE_COMMANDS.contains(a))
                && !envs.iter().any(|(k, _)| *k == "DATABASE_URL")
        });
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(envs.len() + 1);
        if let Some(url) = &url {
            all.push(("DATABASE_URL", url));
        }
        all.extend_from_slice(envs);
        command(self.path(), args, &all)
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// `--data-dir` value.
    pub(crate) fn data_arg(&self) -> String {
        self.data_dir().display().to_string()
    }

    /// The SQLite file `plinth serve` uses by default.
    pub(crate) fn db(&self) -> PathBuf {
        self.data_dir().join("plinth.db")
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a file into the test directory");
        path
    }

    /// Writes `./plinth.toml`, which `plinth` reads when no `--config` is given.
    pub(crate) fn write_config(&self, text: &str) -> PathBuf {
        self.write("plinth.toml", text)
    }
}

/// A `plinth` command in `dir` with a clean environment plus `envs`.
pub(crate) fn command(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str()
            && (key.starts_with("PLINTH_")
                || ["DATABASE_URL", "LOG_LEVEL", "RUST_LOG"].contains(&key))
        {
            cmd.env_remove(key);
        }
    }
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running (or finished) child whose stdout and stderr lines are collected by threads.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_owned();
                    into.lock().expect("output lock").push(line);
                }
            }
        }
    })
}

impl Proc {
    pub(crate) fn spawn(cmd: Command) -> Self {
        Self::spawn_fed(cmd, None)
    }

    /// As `spawn`, writing `input` to the child's standard input, then closing it.
    pub(crate) fn spawn_fed(mut cmd: Command, input: Option<&str>) -> Self {
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn the plinth binary");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(input.as_bytes())
                .expect("write to the child's stdin");
            // Dropped here: the child sees end of file after the input.
        }
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let readers = vec![
            collect(out, Arc::clone(&stdout)),
            collect(err, Arc::clone(&stderr)),
        ];
        Self {
            child,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    pub(crate) fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("output lock").clone()
    }

    pub(crate) fn stdout(&self) -> String {
        self.stdout_lines().join("\n")
    }

    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("output lock").clone()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// Both streams, for failure messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Every stdout line parsed as JSON; a line that is not JSON fails the test.
    pub(crate) fn logs(&self) -> Vec<Value> {
        self.stdout_lines()
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// Whether some log line has this message.
    pub(crate) fn logged(&self, message: &str) -> bool {
        self.logs().iter().any(|l| log_message(l) == Some(message))
    }

    /// Waits until a log line satisfies `pred`, returning it.
    pub(crate) async fn wait_for_log(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Some(status) = self.try_status() {
                panic!(
                    "plinth exited ({status}) before logging {what}\n{}",
                    self.describe()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no log line {what}\n{}",
                self.describe()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the child");
        }
        self.status
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader thread");
        }
    }

    /// Waits for the child to exit (killing it and failing after a timeout); all its output
    /// has been collected when this returns.
    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.try_status() {
                self.join_readers();
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "plinth did not exit within {EXIT_TIMEOUT:?}\n{}",
                    self.describe()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        self.child.kill().expect("SIGKILL the child");
        let status = self.child.wait().expect("reap the child");
        self.status = Some(status);
        self.join_readers();
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The outcome of a command that ran to completion.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `plinth args…` in `dir` to completion.
pub(crate) async fn run(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Finished {
    run_fed(dir, args, envs, None).await
}

/// Runs `plinth args…` in `dir` to completion with `input` on its standard input (closed
/// after it; without input, standard input is empty).
pub(crate) async fn run_fed(
    dir: &TestDir,
    args: &[&str],
    envs: &[(&str, &str)],
    input: Option<&str>,
) -> Finished {
    let mut proc = Proc::spawn_fed(dir.command(args, envs), input);
    let status = proc.wait_exit().await;
    Finished {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// Runs `plinth args…` and asserts it succeeds.
pub(crate) async fn run_ok(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Finished {
    let done = run(dir, args, envs).await;
    assert_eq!(
        done.status.code(),
        Some(0),
        "plinth {args:?} failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        done.stdout,
        done.stderr
    );
    done
}

/// Runs `plinth args…` and asserts it is refused: exit code 1, a message on stderr, and no
/// server left running (a server that starts would hit the exit timeout).
pub(crate) async fn refused(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Finished {
    refused_fed(dir, args, envs, None).await
}

/// As `refused`, with `input` on standard input.
pub(crate) async fn refused_fed(
    dir: &TestDir,
    args: &[&str],
    envs: &[(&str, &str)],
    input: Option<&str>,
) -> Finished {
    let done = run_fed(dir, args, envs, input).await;
    assert_eq!(
        done.status.code(),
        Some(1),
        "plinth {args:?} should have been refused\n--- stdout ---\n{}\n--- stderr ---\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stderr.starts_with("plinth: "),
        "the refusal should be explained on stderr, got {:?}",
        done.stderr
    );
    done
}

/// A log line's `message`.
pub(crate) fn log_message(line: &Value) -> Option<&str> {
    line.get("fields")?.get("message")?.as_str()
}

/// A field of a log line: its own fields first, then those of its spans (innermost first:
/// the handler's span, then the request span with `request_id`, `method` and `route`), then
/// the top level.
pub(crate) fn log_field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get("fields")
        .and_then(|f| f.get(key))
        .or_else(|| {
            line.get("spans")
                .and_then(Value::as_array)
                .and_then(|spans| spans.iter().rev().find_map(|s| s.get(key)))
        })
        .or_else(|| line.get(key))
}

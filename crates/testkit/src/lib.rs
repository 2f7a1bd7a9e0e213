//! Test support shared by Plinth's test suites; a dev-dependency only, never linked into the
//! binary.
//!
//! - [`PgDatabase`]: a fresh, uniquely named PostgreSQL database for one test, dropped (with
//!   any connection still open to it) when the value is dropped, also when the test fails.
//! - The skip rule: [`postgres_server`] hands PostgreSQL-only tests the server named by
//!   [`POSTGRES_ENV`]. Without one, the test is skipped with a line on the process's real
//!   standard error (shown in every `cargo test` run, not only with `--nocapture`), unless
//!   skips are forbidden ([`REQUIRE_ENV`]`=1` or `CI=true`): then the test fails.
//! - [`engine`]: which engine a suite that runs on one engine at a time uses.
//! - [`tls`]: self-signed certificates and a client that trusts them.
//! - [`pg_tls`]: a TLS-only PostgreSQL server of a test's own, with a test CA.
//! - [`oidc`]: a test OpenID provider over HTTP on loopback.
//! - [`smtp`]: an SMTP server on loopback that keeps what it is sent ([`smtp::SmtpSink`]).

pub mod oidc;
pub mod pg_tls;
pub mod smtp;
pub mod tls;

use std::io::Write;

/// Names a PostgreSQL server, without a database name (e.g.
/// `postgres://postgres@127.0.0.1:5432`). Each test makes a database of its own on it.
pub const POSTGRES_ENV: &str = "PLINTH_TEST_POSTGRES";

/// `1` forbids skipping PostgreSQL tests: a missing server is a failure. `.ci/run` sets it;
/// `CI=true` (set by the common CI services) has the same effect.
pub const REQUIRE_ENV: &str = "PLINTH_REQUIRE_POSTGRES";

/// `sqlite` or `postgres`: the engine of suites that run on one engine at a time (the HTTP
/// and binary suites). Unset: PostgreSQL when [`POSTGRES_ENV`] is set, else SQLite.
pub const ENGINE_ENV: &str = "PLINTH_TEST_ENGINE";

/// Whether a missing PostgreSQL server must fail the tests that need one.
pub fn postgres_required() -> bool {
    let set = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    set(REQUIRE_ENV, "1") || set(REQUIRE_ENV, "true") || set("CI", "true") || set("CI", "1")
}

/// The server of [`POSTGRES_ENV`] (trailing `/` removed), if set.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
}

/// Writes a line to the process's standard error itself. The test harness captures
/// `eprintln!` (shown only for failing tests or with `--nocapture`); this is not captured, so
/// it shows in every run.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The PostgreSQL server for the PostgreSQL-only test `test`: `None`, after a visible note
/// that `test` is skipped, when [`POSTGRES_ENV`] is unset.
///
/// # Panics
///
/// When the server is missing and skips are forbidden ([`postgres_required`]).
pub fn postgres_server(test: &str) -> Option<String> {
    if let Some(url) = postgres_url() {
        return Some(url);
    }
    assert!(
        !postgres_required(),
        "{test} needs PostgreSQL, and skipping is not allowed here ({REQUIRE_ENV}=1 or CI=true): \
         set {POSTGRES_ENV} (e.g. {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432)"
    );
    note(&format!(
        "SKIPPED {test}: needs PostgreSQL, and {POSTGRES_ENV} is not set"
    ));
    None
}

/// The engine of a suite that runs on one engine at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file.
    Sqlite,
    /// A database on this PostgreSQL server.
    Postgres(String),
}

/// The engine chosen by [`ENGINE_ENV`] and [`POSTGRES_ENV`]. Running on SQLite only because
/// no server is named is said once per process, on the real standard error.
///
/// # Panics
///
/// When [`ENGINE_ENV`] is `postgres` without a server, or has an unknown value.
pub fn engine() -> Engine {
    let chosen = std::env::var(ENGINE_ENV).unwrap_or_default();
    match (chosen.trim(), postgres_url()) {
        ("sqlite", _) => Engine::Sqlite,
        ("postgres" | "", Some(url)) => Engine::Postgres(url),
        ("postgres", None) => panic!("{ENGINE_ENV}=postgres, but {POSTGRES_ENV} is not set"),
        ("", None) => {
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                note(&format!(
                    "note: running on SQLite only: {POSTGRES_ENV} is not set (e.g. \
                     {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432); PostgreSQL-only \
                     tests are skipped, each with a SKIPPED line"
                ));
            });
            Engine::Sqlite
        }
        (other, _) => panic!("{ENGINE_ENV}={other}: use sqlite or postgres"),
    }
}

/// A plain connection to `url` (its connection task runs on the current runtime).
///
/// # Panics
///
/// When the server cannot be reached: a named server that does not answer fails the test.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "connect to the test PostgreSQL server ({}): {e}",
                redact(url)
            )
        });
    tokio::spawn(conn);
    client
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A fresh, uniquely named database on a PostgreSQL server, dropped on `Drop` with
/// `DROP DATABASE … WITH (FORCE)`, which ends connections still open to it.
#[derive(Debug)]
pub struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates `plinth_test_<uuid>` on `server` (a URL without a database name).
    ///
    /// # Panics
    ///
    /// When the server does not answer or refuses: the test fails, loudly.
    pub async fn create(server: &str) -> Self {
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("plinth_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&format!("{server}/postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        Self { server, name }
    }

    /// As [`Self::create`], for code that is not async (it runs on a thread of its own).
    ///
    /// # Panics
    ///
    /// As [`Self::create`].
    pub fn create_blocking(server: &str) -> Self {
        let server = server.to_owned();
        let made = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(Self::create(&server)))
        })
        .join();
        match made {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => panic!("start a runtime to create the test database: {e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Takes charge of the existing database `name` on `server`: it is dropped with the value.
    pub fn adopt(server: &str, name: &str) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
        }
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// The server the database is on (a URL without a database name).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection to the database, to look at what the code under test did.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url()).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async (maybe inside a runtime that cannot block): a thread with a
        // runtime of its own drops the database.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (admin, conn) =
                    tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
                        .await
                        .ok()?;
                tokio::spawn(conn);
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            note(&format!(
                "warning: could not drop the test database {}",
                self.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h"), "postgres://u@h");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}

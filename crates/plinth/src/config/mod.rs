//! Configuration: defaults → config file → environment → command-line flags, validated
//! once at start.

mod auth;

use crate::cli::GlobalArgs;
use anyhow::{Context, bail};
pub(crate) use auth::{AuthSettings, generate_key_text};
use plinth_core::schema::DeclError;
use plinth_core::{ModelDecl, Schema};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable names scripts rely on.
pub(crate) mod env {
    pub(crate) const CONFIG: &str = "PLINTH_CONFIG";
    pub(crate) const LISTEN: &str = "PLINTH_LISTEN";
    pub(crate) const DATA_DIR: &str = "PLINTH_DATA_DIR";
    pub(crate) const ENV: &str = "PLINTH_ENV";
    pub(crate) const BODY_LIMIT: &str = "PLINTH_BODY_LIMIT";
    pub(crate) const CORS_ORIGINS: &str = "PLINTH_CORS_ORIGINS";
    pub(crate) const DRAIN_SECONDS: &str = "PLINTH_DRAIN_SECONDS";
    pub(crate) const SQLITE_READERS: &str = "PLINTH_SQLITE_READERS";
    pub(crate) const PG_POOL_SIZE: &str = "PLINTH_PG_POOL_SIZE";
    pub(crate) const JWT_SECRET: &str = "PLINTH_JWT_SECRET";
    /// The credential `plinth bench --url` sends.
    pub(crate) const BENCH_TOKEN: &str = "PLINTH_BENCH_TOKEN";
    pub(crate) const JWT_SECRET_FILE: &str = "PLINTH_JWT_SECRET_FILE";
    pub(crate) const ADMIN_EMAIL: &str = "PLINTH_ADMIN_EMAIL";
    pub(crate) const ADMIN_PASSWORD: &str = "PLINTH_ADMIN_PASSWORD";
    pub(crate) const DATABASE_URL: &str = "DATABASE_URL";
    pub(crate) const DATABASE_READ_URL: &str = "DATABASE_READ_URL";
    pub(crate) const LOG_LEVEL: &str = "LOG_LEVEL";
    /// Names reserved for features that read them elsewhere (first admin).
    pub(crate) const RESERVED: &[&str] = &[
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        JWT_SECRET,
        JWT_SECRET_FILE,
        BENCH_TOKEN,
    ];
    /// Every `PLINTH_*` name this version reads.
    pub(crate) const KNOWN: &[&str] = &[
        PG_POOL_SIZE,
        CONFIG,
        LISTEN,
        DATA_DIR,
        ENV,
        BODY_LIMIT,
        CORS_ORIGINS,
        DRAIN_SECONDS,
        SQLITE_READERS,
    ];
}

/// Where Plinth runs; production refuses weak settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Environment {
    Development,
    Production,
}

/// The config file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    env: Option<Environment>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_level: Option<String>,
    body_limit: Option<usize>,
    cors_origins: Option<Vec<String>>,
    drain_seconds: Option<u64>,
    sqlite_readers: Option<usize>,
    pg_pool_size: Option<usize>,
    database_read_url: Option<String>,
    read_your_writes_seconds: Option<u64>,
    pg_connect_timeout_seconds: Option<u64>,
    pg_statement_timeout_seconds: Option<u64>,
    #[serde(default)]
    auth: auth::AuthFile,
    #[serde(default)]
    models: Vec<toml::Spanned<ModelDecl>>,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server shared by any number of instances.
    Postgres(Secret),
}

/// A secret that prints masked.
#[derive(Clone, Deserialize)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

/// `scheme://user:password@host/db` → `scheme://user:****@host/db`.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) env: Environment,
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: Option<Secret>,
    pub(crate) log_level: String,
    pub(crate) body_limit: usize,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) drain_delay: Duration,
    pub(crate) sqlite_readers: usize,
    pub(crate) pg_pool_size: usize,
    /// A streaming replica for reads (PostgreSQL only).
    pub(crate) database_read_url: Option<Secret>,
    /// After a write, how long the writer's reads stay on the primary.
    pub(crate) read_your_writes: Duration,
    pub(crate) pg_connect_timeout: Duration,
    pub(crate) pg_statement_timeout: Duration,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) auth: AuthSettings,
    pub(crate) models: Vec<ModelDecl>,
    /// The validated models.
    pub(crate) schema: Schema,
}

/// Largest body limit accepted: 64 MiB.
const MAX_BODY_LIMIT: usize = 64 << 20;

impl Config {
    /// Loads and validates the configuration. `listen` is the `serve --listen` flag.
    pub(crate) fn load(args: &GlobalArgs, listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        Self::load_from(args, listen, |k| std::env::var(k).ok())
    }

    pub(crate) fn load_from(
        args: &GlobalArgs,
        listen: Option<SocketAddr>,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let (file, path, text) = read_file(args, &var)?;
        let parse_env = |name: &str| -> anyhow::Result<Option<String>> {
            Ok(var(name).filter(|v| !v.is_empty()))
        };
        let env = match parse_env(env::ENV)? {
            Some(v) => match v.as_str() {
                "production" => Environment::Production,
                "development" => Environment::Development,
                _ => bail!(
                    "{}={v:?} is not valid: use production or development",
                    env::ENV
                ),
            },
            None => file.env.unwrap_or(Environment::Development),
        };
        let listen = match (listen, parse_env(env::LISTEN)?) {
            (Some(l), _) => l,
            (None, Some(v)) => v.parse().with_context(|| {
                format!(
                    "{}={v:?} is not an address like 127.0.0.1:8080",
                    env::LISTEN
                )
            })?,
            (None, None) => file
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| {
                var(env::DATA_DIR)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("plinth-data"));
        let database_url = parse_env(env::DATABASE_URL)?
            .or(file.database_url)
            .map(Secret);
        let log_level = args
            .log_level
            .clone()
            .or(parse_env(env::LOG_LEVEL)?)
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_level).with_context(|| {
            format!("invalid log filter {log_level:?} (try info, warn or plinth=debug,info)")
        })?;
        let body_limit = match parse_env(env::BODY_LIMIT)? {
            Some(v) => v
                .parse()
                .with_context(|| format!("{}={v:?} is not a number of bytes", env::BODY_LIMIT))?,
            None => file
                .body_limit
                .unwrap_or(plinth_server::config::DEFAULT_BODY_LIMIT),
        };
        if body_limit == 0 || body_limit > MAX_BODY_LIMIT {
            bail!("body_limit must be between 1 and {MAX_BODY_LIMIT} bytes");
        }
        let cors_origins = match parse_env(env::CORS_ORIGINS)? {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.cors_origins.unwrap_or_default(),
        };
        let drain_seconds = match parse_env(env::DRAIN_SECONDS)? {
            Some(v) => v.parse().with_context(|| {
                format!("{}={v:?} is not a number of seconds", env::DRAIN_SECONDS)
            })?,
            None => file.drain_seconds.unwrap_or(0),
        };
        if drain_seconds > 300 {
            bail!("drain_seconds must be at most 300");
        }
        let sqlite_readers = match parse_env(env::SQLITE_READERS)? {
            Some(v) => v
                .parse()
                .with_context(|| format!("{}={v:?} is not a number", env::SQLITE_READERS))?,
            None => file.sqlite_readers.unwrap_or(4),
        };
        if !(1..=64).contains(&sqlite_readers) {
            bail!("sqlite_readers must be between 1 and 64");
        }
        let pg_pool_size = match parse_env(env::PG_POOL_SIZE)? {
            Some(v) => v
                .parse()
                .with_context(|| format!("{}={v:?} is not a number", env::PG_POOL_SIZE))?,
            None => file.pg_pool_size.unwrap_or(16),
        };
        if !(1..=1000).contains(&pg_pool_size) {
            bail!("pg_pool_size must be between 1 and 1000");
        }
        let database_read_url = parse_env(env::DATABASE_READ_URL)?
            .or(file.database_read_url)
            .map(Secret);
        let read_your_writes =
            Duration::from_secs(file.read_your_writes_seconds.unwrap_or(5).min(3600));
        let pg_connect_timeout =
            Duration::from_secs(file.pg_connect_timeout_seconds.unwrap_or(5).clamp(1, 300));
        let pg_statement_timeout = Duration::from_secs(
            file.pg_statement_timeout_seconds
                .unwrap_or(30)
                .clamp(1, 3600),
        );
        let auth = AuthSettings::resolve(file.auth.clone(), env, &data_dir, &var)?;
        let models: Vec<ModelDecl> = file.models.iter().map(|m| m.get_ref().clone()).collect();
        let schema = Schema::from_decls(&models)
            .map_err(|errors| decl_errors(&errors, &file.models, path.as_deref(), &text))?;
        let config = Self {
            env,
            listen,
            data_dir,
            database_url,
            log_level,
            body_limit,
            cors_origins,
            drain_delay: Duration::from_secs(drain_seconds),
            sqlite_readers,
            pg_pool_size,
            database_read_url,
            read_your_writes,
            pg_connect_timeout,
            pg_statement_timeout,
            config_file: path,
            auth,
            models,
            schema,
        };
        Ok(config)
    }

    /// The database: a SQLite file (the default, under the data directory) or a PostgreSQL
    /// server (`DATABASE_URL=postgres://…`).
    pub(crate) fn database(&self) -> anyhow::Result<Database> {
        let Some(url) = &self.database_url else {
            if self.database_read_url.is_some() {
                bail!(
                    "{} needs a PostgreSQL {}",
                    env::DATABASE_READ_URL,
                    env::DATABASE_URL
                );
            }
            return Ok(Database::Sqlite(self.data_dir.join("plinth.db")));
        };
        let text = url.expose();
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("{}={text:?} names no file", env::DATABASE_URL);
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.clone()));
        }
        if self.database_read_url.is_some() {
            bail!(
                "{} needs a PostgreSQL {}",
                env::DATABASE_READ_URL,
                env::DATABASE_URL
            );
        }
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        bail!(
            "{}: the {scheme:?} scheme is not supported; use postgres://…, sqlite://PATH, or leave it unset for {}/plinth.db",
            env::DATABASE_URL,
            self.data_dir.display()
        )
    }

    /// Unknown `PLINTH_*` variables, most likely typos.
    pub(crate) fn unknown_env_vars() -> Vec<String> {
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| {
                k.starts_with("PLINTH_")
                    && !env::KNOWN.contains(&k.as_str())
                    && !env::RESERVED.contains(&k.as_str())
            })
            .collect()
    }

    /// The effective configuration as TOML, secrets masked.
    pub(crate) fn render(&self) -> String {
        #[derive(Serialize)]
        struct Shown<'a> {
            env: Environment,
            listen: String,
            data_dir: String,
            database: String,
            log_level: &'a str,
            body_limit: usize,
            cors_origins: &'a [String],
            drain_seconds: u64,
            sqlite_readers: usize,
            pg_pool_size: usize,
            database_read_url: Option<String>,
            read_your_writes_seconds: u64,
            pg_connect_timeout_seconds: u64,
            pg_statement_timeout_seconds: u64,
            config_file: Option<String>,
            auth: &'a AuthSettings,
            models: &'a [ModelDecl],
        }
        let database = match (&self.database_url, self.database()) {
            (Some(url), _) => format!("{url:?}"),
            (None, Ok(Database::Sqlite(path))) => format!("sqlite://{}", path.display()),
            (None, Ok(Database::Postgres(_))) => String::new(),
            (None, Err(e)) => e.to_string(),
        };
        let defaults = [ModelDecl::default_resource()];
        let shown = Shown {
            env: self.env,
            listen: self.listen.to_string(),
            data_dir: self.data_dir.display().to_string(),
            database,
            log_level: &self.log_level,
            body_limit: self.body_limit,
            cors_origins: &self.cors_origins,
            drain_seconds: self.drain_delay.as_secs(),
            sqlite_readers: self.sqlite_readers,
            pg_pool_size: self.pg_pool_size,
            database_read_url: self.database_read_url.as_ref().map(|u| format!("{u:?}")),
            read_your_writes_seconds: self.read_your_writes.as_secs(),
            pg_connect_timeout_seconds: self.pg_connect_timeout.as_secs(),
            pg_statement_timeout_seconds: self.pg_statement_timeout.as_secs(),
            config_file: self.config_file.as_ref().map(|p| p.display().to_string()),
            auth: &self.auth,
            models: if self.models.is_empty() {
                &defaults
            } else {
                &self.models
            },
        };
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Reads the config file named by flag or environment (which must exist), or `./plinth.toml`
/// if present.
fn read_file(
    args: &GlobalArgs,
    var: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(FileConfig, Option<PathBuf>, String)> {
    let named = args.config.clone().or_else(|| {
        var(env::CONFIG)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let path = match named {
        Some(p) => p,
        None if Path::new("plinth.toml").exists() => PathBuf::from("plinth.toml"),
        None => return Ok((FileConfig::default(), None, String::new())),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let file: FileConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((file, Some(path), text))
}

fn decl_errors(
    errors: &[DeclError],
    spans: &[toml::Spanned<ModelDecl>],
    path: Option<&Path>,
    text: &str,
) -> anyhow::Error {
    let file = path.map_or_else(|| "config".to_owned(), |p| p.display().to_string());
    let lines: Vec<String> = errors
        .iter()
        .map(|e| {
            let line = spans
                .get(e.model_index)
                .map(|s| text[..s.span().start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{file}:{line}: {}: {}", e.location, e.reason),
                None => format!("{file}: {}: {}", e.location, e.reason),
            }
        })
        .collect();
    anyhow::anyhow!("invalid model declarations:\n  {}", lines.join("\n  "))
}

#[cfg(test)]
mod tests;

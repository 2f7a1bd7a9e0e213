//! Every setting, declared once: its file key, environment variable, flag, type, default,
//! allowed range and help. Loading, validation, `plinth config`, the list of known
//! environment variables and the configuration reference are all derived from this table.

use super::layers::Layers;
use super::value::{Environment, LogFilter, Secret, SecretUrl, SettingValue, Span};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest body limit accepted: 64 MiB.
const MAX_BODY_LIMIT: u64 = 64 << 20;

/// What one setting is called where, and what it accepts.
#[derive(Debug)]
pub(crate) struct Setting {
    /// The key in `plinth.toml` (`table.key` inside a table); `None` for settings only the
    /// environment or a flag can give (secrets, the config file itself).
    pub(crate) key: Option<&'static str>,
    /// The environment variable.
    pub(crate) env: &'static str,
    /// The command-line flag, if there is one.
    pub(crate) flag: Option<&'static str>,
    /// The allowed values of a number, inclusive.
    pub(crate) range: Option<(u64, u64)>,
    /// What a valid value looks like.
    pub(crate) expected: &'static str,
    /// Never echoed in errors; masked by `plinth config`.
    pub(crate) secret: bool,
    pub(crate) help: &'static str,
}

impl Setting {
    /// The file key, or the environment variable for settings without one.
    pub(crate) fn name(&self) -> &'static str {
        self.key.unwrap_or(self.env)
    }
}

/// Declares every setting. Each entry gives the field of [`Settings`], its type and default,
/// then the names and the range. Also generates `env::NAME` constants and the `setting`
/// module of [`Setting`] descriptions, one per field.
macro_rules! settings {
    ($(
        $field:ident: $ty:ty = $default:expr;
            key: $key:expr, env: $env_const:ident = $env:literal, flag: $flag:expr,
            range: $range:expr,
            help: $help:literal;
    )*) => {
        /// Environment variable names, one per setting, for messages that name them.
        #[allow(dead_code, reason = "not every name appears in a message")]
        pub(crate) mod env {
            $(pub(crate) const $env_const: &str = $env;)*
        }

        /// The description of each setting, by field name.
        #[allow(non_upper_case_globals)]
        pub(crate) mod setting {
            use super::*;
            $(pub(crate) const $field: Setting = Setting {
                key: $key,
                env: $env,
                flag: $flag,
                range: $range,
                expected: <$ty as SettingValue>::EXPECTED,
                secret: <$ty as SettingValue>::SECRET,
                help: $help,
            };)*
        }

        /// Every setting, in reference order.
        pub(crate) const SETTINGS: &[&Setting] = &[$(&setting::$field),*];

        /// The value of every setting.
        #[derive(Debug, Clone)]
        pub(crate) struct Settings {
            $(#[doc = $help] pub(crate) $field: $ty,)*
        }

        impl Settings {
            /// Every setting at its default.
            pub(crate) fn defaults() -> Self {
                Self { $($field: $default,)* }
            }

            /// Each layer's value over the defaults; every refused value is added to
            /// `errors`, and leaves its default.
            pub(super) fn resolve(layers: &Layers<'_>, errors: &mut Vec<String>) -> Self {
                Self {
                    $($field: layers
                        .value(&setting::$field, errors)
                        .unwrap_or_else(|| $default),)*
                }
            }

            /// Each setting with its value as shown (secrets masked; `None` when unset).
            pub(crate) fn shown(&self) -> Vec<(&'static Setting, Option<toml::Value>)> {
                vec![$((&setting::$field, SettingValue::show(&self.$field)),)*]
            }
        }
    };
}

settings! {
    config: Option<PathBuf> = None;
        key: None, env: CONFIG = "PLINTH_CONFIG", flag: Some("--config"), range: None,
        help: "The config file; a file named this way must exist. Unset: `./plinth.toml` if it exists.";
    env: Environment = Environment::Development;
        key: Some("env"), env: ENV = "PLINTH_ENV", flag: None, range: None,
        help: "`development` or `production`. Production refuses to start without an explicit signing key, without explicit encryption keys, or with `auth.argon2_memory_kib` below 19456.";
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        key: Some("listen"), env: LISTEN = "PLINTH_LISTEN", flag: Some("--listen"), range: None,
        help: "The address `plinth serve` listens on: HTTPS with `tls.cert_file` and `tls.key_file`, else plain HTTP (then put TLS in front).";
    tls_cert_file: Option<PathBuf> = None;
        key: Some("tls.cert_file"), env: TLS_CERT_FILE = "PLINTH_TLS_CERT_FILE", flag: Some("--tls-cert"), range: None,
        help: "With `tls.key_file`, `plinth serve` serves HTTPS (TLS 1.2 and 1.3) with this PEM certificate chain, the server's certificate first. Reloaded when it changes or on SIGHUP.";
    tls_key_file: Option<PathBuf> = None;
        key: Some("tls.key_file"), env: TLS_KEY_FILE = "PLINTH_TLS_KEY_FILE", flag: Some("--tls-key"), range: None,
        help: "The PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls.cert_file`; set both or neither. Production refuses a key file readable by group or others.";
    tls_reload_interval_seconds: u64 = plinth_server::tls::DEFAULT_TLS_RELOAD_INTERVAL.as_secs();
        key: Some("tls.reload_interval_seconds"), env: TLS_RELOAD_INTERVAL_SECONDS = "PLINTH_TLS_RELOAD_INTERVAL_SECONDS", flag: None,
        range: Some((0, 3600)),
        help: "How often the certificate and key files' modification times are checked, to reload them when they change; 0 reloads on SIGHUP only. A reload that fails keeps the certificate in use.";
    tls_hsts_max_age_seconds: u64 = plinth_server::tls::DEFAULT_HSTS_MAX_AGE.as_secs();
        key: Some("tls.hsts_max_age_seconds"), env: TLS_HSTS_MAX_AGE_SECONDS = "PLINTH_TLS_HSTS_MAX_AGE_SECONDS", flag: None,
        range: Some((0, 2 * 31_536_000)),
        help: "With HTTPS, the `max-age` of the `Strict-Transport-Security` header on every answer, in seconds; 0 sends none.";
    tls_redirect_from: Option<SocketAddr> = None;
        key: Some("tls.redirect_from"), env: TLS_REDIRECT_FROM = "PLINTH_TLS_REDIRECT_FROM", flag: None, range: None,
        help: "With HTTPS, also listen on this address (such as 0.0.0.0:80) for plain HTTP and answer every request with `308` to the same path and query over HTTPS, on the host the request named and the port of `listen`. Unset: no plain-HTTP port.";
    data_dir: PathBuf = PathBuf::from("plinth-data");
        key: Some("data_dir"), env: DATA_DIR = "PLINTH_DATA_DIR", flag: Some("--data-dir"), range: None,
        help: "Directory for the SQLite database and the development signing key.";
    database_url: Option<SecretUrl> = None;
        key: Some("database_url"), env: DATABASE_URL = "DATABASE_URL", flag: None, range: None,
        help: "Unset: SQLite in `<data_dir>/plinth.db`. `sqlite://PATH` or `sqlite:PATH` names another SQLite file; `postgres://user[:password]@host[:port]/database` (or `postgresql://`) selects PostgreSQL, whose database must exist; `postgres://user@/database?host=/var/run/postgresql` reaches it over its Unix socket ([operations](operations.md#postgresql)). Any other scheme stops the start.";
    log_level: LogFilter = LogFilter::new("info");
        key: Some("log_level"), env: LOG_LEVEL = "LOG_LEVEL", flag: Some("--log-level"), range: None,
        help: "Log filter, such as `info` or `plinth=debug,info`.";
    log_access: bool = true;
        key: Some("log.access"), env: LOG_ACCESS = "PLINTH_LOG_ACCESS", flag: None, range: None,
        help: "Whether `plinth serve` writes one access line per request (target `plinth::access`); `false` turns only those off, other logs stay as `log_level` says.";
    log_dir: Option<PathBuf> = None;
        key: Some("log.dir"), env: LOG_DIR = "PLINTH_LOG_DIR", flag: None, range: None,
        help: "A directory `plinth serve` writes its logs to instead of stdout, one file per UTC day (`plinth.YYYY-MM-DD.log`, mode 0600), created if missing. Unset: stdout.";
    log_retention_days: u64 = 14;
        key: Some("log.retention_days"), env: LOG_RETENTION_DAYS = "PLINTH_LOG_RETENTION_DAYS", flag: None,
        range: Some((0, 36_500)),
        help: "With `log.dir`, how many days of log files are kept, today's included: older `plinth.YYYY-MM-DD.log` files there are deleted at start and when the day turns (no other file is touched); 0 keeps them all.";
    body_limit: usize = plinth_server::config::DEFAULT_BODY_LIMIT;
        key: Some("body_limit"), env: BODY_LIMIT = "PLINTH_BODY_LIMIT", flag: None,
        range: Some((1, MAX_BODY_LIMIT)),
        help: "The largest request body accepted, in bytes; larger ones answer 413.";
    batch_body_limit: usize = plinth_server::config::DEFAULT_BATCH_BODY_LIMIT;
        key: Some("batch_body_limit"), env: BATCH_BODY_LIMIT = "PLINTH_BATCH_BODY_LIMIT", flag: None,
        range: Some((1, MAX_BODY_LIMIT)),
        help: "The largest body of a batch write (`POST /api/v1/{model}/batch`), in bytes, instead of `body_limit`; larger ones answer 413.";
    compression_min_bytes: u32 = u32::from(plinth_server::config::DEFAULT_COMPRESSION_MIN_BYTES);
        key: Some("compression_min_bytes"), env: COMPRESSION_MIN_BYTES = "PLINTH_COMPRESSION_MIN_BYTES", flag: None,
        range: Some((0, 65_535)),
        help: "Answers at least this many bytes long are sent gzip-compressed to a client that accepts it (`Accept-Encoding: gzip`): JSON and text without an entity tag and not marked `no-store` (lists, the OpenAPI document; never a record with its `ETag`, nor an answer holding tokens or keys); 0 turns compression off.";
    cors_origins: Vec<String> = Vec::new();
        key: Some("cors_origins"), env: CORS_ORIGINS = "PLINTH_CORS_ORIGINS", flag: None, range: None,
        help: "Origins CORS allows (an array in the file, comma-separated in the environment); empty turns CORS off, `*` allows any origin.";
    trusted_proxies: Vec<String> = Vec::new();
        key: Some("trusted_proxies"), env: TRUSTED_PROXIES = "PLINTH_TRUSTED_PROXIES", flag: None, range: None,
        help: "Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR networks (an array in the file, comma-separated in the environment). A request from one of them is attributed to the rightmost `X-Forwarded-For` address that is not one of them; empty: the TCP peer, and `X-Forwarded-For` is ignored.";
    admin_console: bool = true;
        key: Some("admin_console"), env: ADMIN_CONSOLE = "PLINTH_ADMIN_CONSOLE", flag: None, range: None,
        help: "Whether the admin console is served at `/admin`; `false` answers every `/admin` path 404. The console only calls the public API, so turning it off takes no power from anyone.";
    sweep_interval_seconds: u64 = 300;
        key: Some("sweep_interval_seconds"), env: SWEEP_INTERVAL_SECONDS = "PLINTH_SWEEP_INTERVAL_SECONDS", flag: None,
        range: Some((0, 86_400)),
        help: "How often each instance deletes dead refresh-token families, idempotency keys past `idempotency_hours` and audit entries past `audit.retention_days`, in bounded batches; 0 turns sweeping off.";
    flags_reload_seconds: u64 = plinth_server::config::DEFAULT_FLAGS_RELOAD.as_secs();
        key: Some("flags.reload_seconds"), env: FLAGS_RELOAD_SECONDS = "PLINTH_FLAGS_RELOAD_SECONDS", flag: None,
        range: Some((1, 3600)),
        help: "How often each instance loads the feature flags again, in seconds, besides on every change: a change another instance announced but this one missed (its database connection lost quietly) is seen within this. A load that fails keeps the flags held and is retried sooner.";
    idempotency_hours: u64 = 24;
        key: Some("idempotency_hours"), env: IDEMPOTENCY_HOURS = "PLINTH_IDEMPOTENCY_HOURS", flag: None,
        range: Some((1, 24 * 365)),
        help: "How long an `Idempotency-Key` is remembered, in hours; older keys are swept and a retry after that creates a new record.";
    audit_retention_days: u64 = 0;
        key: Some("audit.retention_days"), env: AUDIT_RETENTION_DAYS = "PLINTH_AUDIT_RETENTION_DAYS", flag: None,
        range: Some((0, 36_500)),
        help: "How long audit entries are kept, in days; 0 keeps them forever. Older ones are pruned by the sweep (`sweep_interval_seconds`) behind a sealed checkpoint, so what remains still verifies.";
    realtime_max_per_principal: usize = 16;
        key: Some("realtime.max_per_principal"), env: REALTIME_MAX_PER_PRINCIPAL = "PLINTH_REALTIME_MAX_PER_PRINCIPAL", flag: None,
        range: Some((1, 100_000)),
        help: "The most change-feed streams (`GET /api/v1/{model}/events`, `/api/v1/events`) one user, API key's user or guest address holds open on one instance; more answer 429 with `Retry-After`.";
    realtime_max_total: usize = 10_000;
        key: Some("realtime.max_total"), env: REALTIME_MAX_TOTAL = "PLINTH_REALTIME_MAX_TOTAL", flag: None,
        range: Some((1, 1_000_000)),
        help: "The most change-feed streams one instance holds open; more answer 503 with `Retry-After`. Each stream is a connection: keep `http.max_connections` above it.";
    realtime_buffer: usize = 1024;
        key: Some("realtime.buffer"), env: REALTIME_BUFFER = "PLINTH_REALTIME_BUFFER", flag: None,
        range: Some((1, 1_000_000)),
        help: "How many changes a change-feed stream may fall behind the newest before the server ends it (`end` `slow_consumer`; the client resumes with `Last-Event-ID`). Each instance keeps this many changes in memory, whatever its streams' speeds.";
    realtime_heartbeat_seconds: u64 = 15;
        key: Some("realtime.heartbeat_seconds"), env: REALTIME_HEARTBEAT_SECONDS = "PLINTH_REALTIME_HEARTBEAT_SECONDS", flag: None,
        range: Some((1, 3600)),
        help: "The time between two `: heartbeat` comments on a quiet change-feed stream, in seconds: keep it below the idle timeout of proxies in front.";
    realtime_retention: Span = Span::hours(24);
        key: Some("realtime.retention"), env: REALTIME_RETENTION = "PLINTH_REALTIME_RETENTION", flag: None,
        range: Some((60, 31_536_000)),
        help: "How long the change log keeps a change (`90m`, `24h`, `7d`…), so a client can resume within it; the sweep (`sweep_interval_seconds`) prunes older ones, and a resume from before them gets `reset` `expired`.";
    files_dir: Option<PathBuf> = None;
        key: Some("files.dir"), env: FILES_DIR = "PLINTH_FILES_DIR", flag: None, range: None,
        help: "Where file fields' contents are kept (`blobs/`, by SHA-256) and uploads in progress are written (`tmp/`, also with a bucket). Unset: `<data_dir>/files`. Instances sharing a database share this directory, or a bucket.";
    files_upload_limit: u64 = plinth_server::files::DEFAULT_UPLOAD_LIMIT;
        key: Some("files.upload_limit"), env: FILES_UPLOAD_LIMIT = "PLINTH_FILES_UPLOAD_LIMIT", flag: None,
        range: Some((1, 1 << 40)),
        help: "The largest `multipart/form-data` body accepted, files included, in bytes; each file is also held to its field's `max_size`, and the `data` part to `body_limit`.";
    files_orphan_grace: Span = Span::seconds(600);
        key: Some("files.orphan_grace"), env: FILES_ORPHAN_GRACE = "PLINTH_FILES_ORPHAN_GRACE", flag: None,
        range: Some((0, 31_536_000)),
        help: "How long a content no record holds is kept after it was last written (`10m`, `1h`…), so an upload of the same content on another instance, written but not yet committed, keeps it; after a replace or purge older contents go at once, younger ones at a later sweep.";
    files_s3_bucket: Option<String> = None;
        key: Some("files.s3_bucket"), env: FILES_S3_BUCKET = "PLINTH_FILES_S3_BUCKET", flag: None, range: None,
        help: "Keep file contents in this S3-compatible bucket instead of `files.dir` (which then holds only uploads in progress). Needs `PLINTH_S3_ACCESS_KEY_ID` and `PLINTH_S3_SECRET_ACCESS_KEY`.";
    files_s3_endpoint: Option<String> = None;
        key: Some("files.s3_endpoint"), env: FILES_S3_ENDPOINT = "PLINTH_FILES_S3_ENDPOINT", flag: None, range: None,
        help: "The bucket service's URL (MinIO, Ceph, R2…); unset: AWS S3 in `files.s3_region`. Plain `http://` is refused in production.";
    files_s3_region: String = "us-east-1".to_owned();
        key: Some("files.s3_region"), env: FILES_S3_REGION = "PLINTH_FILES_S3_REGION", flag: None, range: None,
        help: "The bucket's region.";
    files_s3_prefix: String = String::new();
        key: Some("files.s3_prefix"), env: FILES_S3_PREFIX = "PLINTH_FILES_S3_PREFIX", flag: None, range: None,
        help: "Put before every key in the bucket (`plinth/`), so one bucket can serve several deployments.";
    s3_access_key_id: Option<Secret> = None;
        key: None, env: S3_ACCESS_KEY_ID = "PLINTH_S3_ACCESS_KEY_ID", flag: None, range: None,
        help: "The bucket's access key id. Never read from the file.";
    s3_secret_access_key: Option<Secret> = None;
        key: None, env: S3_SECRET_ACCESS_KEY = "PLINTH_S3_SECRET_ACCESS_KEY", flag: None, range: None,
        help: "The bucket's secret access key. Never read from the file.";
    realtime_poll_ms: u64 = 1000;
        key: Some("realtime.poll_ms"), env: REALTIME_POLL_MS = "PLINTH_REALTIME_POLL_MS", flag: None,
        range: Some((10, 60_000)),
        help: "The longest each instance goes without reading the change log, in milliseconds, besides reading it on every change it is told of: a notice that was missed delays a change by at most this, never loses it.";
    alerts_window_seconds: u64 = plinth_server::alerts::DEFAULT_WINDOW.as_secs();
        key: Some("alerts.window_seconds"), env: ALERTS_WINDOW_SECONDS = "PLINTH_ALERTS_WINDOW_SECONDS", flag: None,
        range: Some((1, 86_400)),
        help: "The rolling window over which each instance judges its own answers for the alerts `HighErrorRate` and `SlowResponse`, in seconds.";
    alerts_interval_seconds: u64 = plinth_server::alerts::DEFAULT_INTERVAL.as_secs();
        key: Some("alerts.interval_seconds"), env: ALERTS_INTERVAL_SECONDS = "PLINTH_ALERTS_INTERVAL_SECONDS", flag: None,
        range: Some((0, 3600)),
        help: "How often the alert rules are evaluated, in seconds; 0 turns the in-process alerts off.";
    alerts_error_rate_permille: u64 = 10;
        key: Some("alerts.error_rate_permille"), env: ALERTS_ERROR_RATE_PERMILLE = "PLINTH_ALERTS_ERROR_RATE_PERMILLE", flag: None,
        range: Some((1, 1000)),
        help: "`HighErrorRate` fires when more than this many thousandths of the window's answers have a status of 500 or more (10: 1 %).";
    alerts_p99_ms: u64 = 1000;
        key: Some("alerts.p99_ms"), env: ALERTS_P99_MS = "PLINTH_ALERTS_P99_MS", flag: None,
        range: Some((1, 600_000)),
        help: "`SlowResponse` fires when the window's p99 latency is above this, in milliseconds.";
    alerts_min_requests: u64 = 20;
        key: Some("alerts.min_requests"), env: ALERTS_MIN_REQUESTS = "PLINTH_ALERTS_MIN_REQUESTS", flag: None,
        range: Some((1, 1_000_000)),
        help: "Neither alert fires over a window with fewer answers than this, so one error among three requests is not an error rate.";
    alerts_keep_resolved: usize = plinth_server::alerts::DEFAULT_KEEP_RESOLVED;
        key: Some("alerts.keep_resolved"), env: ALERTS_KEEP_RESOLVED = "PLINTH_ALERTS_KEEP_RESOLVED", flag: None,
        range: Some((0, 1000)),
        help: "How many resolved alerts `GET /api/v1/alerts` keeps listing after the firing ones.";
    alerts_webhook_url: Option<Secret> = None;
        key: Some("alerts.webhook_url"), env: ALERTS_WEBHOOK_URL = "PLINTH_ALERTS_WEBHOOK_URL", flag: None, range: None,
        help: "An `http://` or `https://` URL that receives a JSON POST for each alert that fires or resolves (3 attempts, 5 s each). Masked by `plinth config`, since such URLs often hold a token. Unset: no webhook.";
    alerts_webhook_secret: Option<Secret> = None;
        key: None, env: ALERTS_WEBHOOK_SECRET = "PLINTH_ALERTS_WEBHOOK_SECRET", flag: None, range: None,
        help: "The key of the `X-Plinth-Signature` HMAC-SHA-256 signature on each webhook request. Never read from the file. Unset: requests are not signed.";
    alerts_webhook_ca_file: Option<PathBuf> = None;
        key: Some("alerts.webhook_ca_file"), env: ALERTS_WEBHOOK_CA_FILE = "PLINTH_ALERTS_WEBHOOK_CA_FILE", flag: None, range: None,
        help: "PEM certificates trusted for an `https://` webhook instead of the system's roots.";
    backup_dir: Option<PathBuf> = None;
        key: Some("backup.dir"), env: BACKUP_DIR = "PLINTH_BACKUP_DIR", flag: None, range: None,
        help: "With a directory, `plinth serve` takes a backup into it every `backup.interval_seconds` (the first one interval after the start), named `plinth-backup-<UTC time>.backup` with a `.sha256` sidecar, and deletes the oldest such files beyond `backup.keep`. Unset: no scheduled backups. The encryption keys are not in backups.";
    backup_interval_seconds: u64 = 86_400;
        key: Some("backup.interval_seconds"), env: BACKUP_INTERVAL_SECONDS = "PLINTH_BACKUP_INTERVAL_SECONDS", flag: None,
        range: Some((1, 31_536_000)),
        help: "The time between two scheduled backups, in seconds (86400: daily).";
    backup_keep: usize = 7;
        key: Some("backup.keep"), env: BACKUP_KEEP = "PLINTH_BACKUP_KEEP", flag: None,
        range: Some((1, 10_000)),
        help: "How many scheduled backups `backup.dir` keeps; after each backup the oldest beyond this are deleted (only files of the scheduled backups' own name pattern).";
    drain_seconds: u64 = 0;
        key: Some("drain_seconds"), env: DRAIN_SECONDS = "PLINTH_DRAIN_SECONDS", flag: None,
        range: Some((0, 300)),
        help: "After SIGTERM, how long `/readyz` answers 503 before the listener closes, so a load balancer notices first.";
    http_header_read_timeout_seconds: u64 = plinth_server::config::DEFAULT_HEADER_READ_TIMEOUT.as_secs();
        key: Some("http.header_read_timeout_seconds"), env: HTTP_HEADER_READ_TIMEOUT_SECONDS = "PLINTH_HTTP_HEADER_READ_TIMEOUT_SECONDS", flag: None,
        range: Some((1, 300)),
        help: "How long a client may take to send a request's line and headers, from when it connects or starts a later request on the connection; past it the connection is closed. Also how long a request body may pause with nothing arriving: past it the answer is 408 and the connection is closed.";
    http_keep_alive_timeout_seconds: u64 = plinth_server::config::DEFAULT_KEEP_ALIVE_TIMEOUT.as_secs();
        key: Some("http.keep_alive_timeout_seconds"), env: HTTP_KEEP_ALIVE_TIMEOUT_SECONDS = "PLINTH_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS", flag: None,
        range: Some((1, 3600)),
        help: "How long a kept-alive connection may wait idle for its next request before it is closed. Behind a load balancer, keep it above the balancer's idle timeout.";
    http_request_timeout_seconds: u64 = plinth_server::config::DEFAULT_REQUEST_TIMEOUT.as_secs();
        key: Some("http.request_timeout_seconds"), env: HTTP_REQUEST_TIMEOUT_SECONDS = "PLINTH_HTTP_REQUEST_TIMEOUT_SECONDS", flag: None,
        range: Some((1, 3600)),
        help: "How long a request may take from its headers to its answer, body included: past it the answer is 408 if the body was still arriving, else 503, and the work is abandoned.";
    http_max_connections: usize = plinth_server::config::DEFAULT_MAX_CONNECTIONS;
        key: Some("http.max_connections"), env: HTTP_MAX_CONNECTIONS = "PLINTH_HTTP_MAX_CONNECTIONS", flag: None,
        range: Some((1, 1_000_000)),
        help: "The most client connections served at once. Lowered at start, with a warning, to the open-files limit less 64 when it does not fit under it. At the cap a new connection closes the one idle the longest (or one trickling its body for longer than the header-read timeout), or waits until one ends.";
    sqlite_readers: usize = 4;
        key: Some("sqlite_readers"), env: SQLITE_READERS = "PLINTH_SQLITE_READERS", flag: None,
        range: Some((1, 64)),
        help: "Read-only SQLite connections (SQLite only).";
    sqlite_record_cache_mb: usize = 8;
        key: Some("sqlite_record_cache_mb"), env: SQLITE_RECORD_CACHE_MB = "PLINTH_SQLITE_RECORD_CACHE_MB", flag: None,
        range: Some((0, 4096)),
        help: "Megabytes of records `plinth serve` keeps in memory after a get by id, for the next get of the same record; 0 keeps none (SQLite only).";
    pg_pool_size: usize = 16;
        key: Some("pg_pool_size"), env: PG_POOL_SIZE = "PLINTH_PG_POOL_SIZE", flag: None,
        range: Some((1, 1000)),
        help: "The most PostgreSQL connections one instance holds in each pool (the primary's, and the replica's), so N instances may hold N times this many.";
    database_read_url: Option<SecretUrl> = None;
        key: Some("database_read_url"), env: DATABASE_READ_URL = "DATABASE_READ_URL", flag: None, range: None,
        help: "A `postgres://` URL of a streaming replica of the `DATABASE_URL` database: record gets and lists go there. Needs a PostgreSQL `DATABASE_URL`.";
    read_your_writes_seconds: u64 = 5;
        key: Some("read_your_writes_seconds"), env: READ_YOUR_WRITES_SECONDS = "PLINTH_READ_YOUR_WRITES_SECONDS", flag: None,
        range: Some((0, 3600)),
        help: "With a replica, how long after a user's last record write that user's gets and lists stay on the primary (per instance).";
    pg_connect_timeout_seconds: u64 = 5;
        key: Some("pg_connect_timeout_seconds"), env: PG_CONNECT_TIMEOUT_SECONDS = "PLINTH_PG_CONNECT_TIMEOUT_SECONDS", flag: None,
        range: Some((1, 300)),
        help: "Bounds opening a PostgreSQL connection and waiting for a free one in the pool; past it the request answers 503.";
    pg_statement_timeout_seconds: u64 = 30;
        key: Some("pg_statement_timeout_seconds"), env: PG_STATEMENT_TIMEOUT_SECONDS = "PLINTH_PG_STATEMENT_TIMEOUT_SECONDS", flag: None,
        range: Some((1, 3600)),
        help: "PostgreSQL `statement_timeout` of every connection; a statement the server cancels answers 503.";
    limits_query_timeout_ms: u64 = 5000;
        key: Some("limits.query_timeout_ms"), env: LIMITS_QUERY_TIMEOUT_MS = "PLINTH_LIMITS_QUERY_TIMEOUT_MS", flag: None,
        range: Some((10, 600_000)),
        help: "The time budget of one record list, in milliseconds, waiting for a database connection included; past it the query is stopped (SQLite interrupts it, PostgreSQL cancels it) and the list answers 503. On PostgreSQL `pg_statement_timeout_seconds` still bounds it from above.";
    limits_filter_value_max_chars: usize = plinth_core::QueryLimits::DEFAULT_VALUE_MAX_CHARS;
        key: Some("limits.filter_value_max_chars"), env: LIMITS_FILTER_VALUE_MAX_CHARS = "PLINTH_LIMITS_FILTER_VALUE_MAX_CHARS", flag: None,
        range: Some((1, 65_536)),
        help: "The longest value of a list filter (`eq`, `ne`, `lt`, `lte`, `gt`, `gte`, and each value of an `in`), in characters; a longer one answers 400.";
    limits_like_pattern_max_chars: usize = plinth_core::QueryLimits::DEFAULT_PATTERN_MAX_CHARS;
        key: Some("limits.like_pattern_max_chars"), env: LIMITS_LIKE_PATTERN_MAX_CHARS = "PLINTH_LIMITS_LIKE_PATTERN_MAX_CHARS", flag: None,
        range: Some((1, 10_000)),
        help: "The longest `like` pattern, and the longest text after a `~` or `!~` of a `filter` expression, in characters; a longer one answers 400. Matching costs up to the pattern's length times each value's, and one value's match cannot be interrupted, so this stays short.";
    limits_filter_max_chars: usize = plinth_core::QueryLimits::DEFAULT_FILTER_MAX_CHARS;
        key: Some("limits.filter_max_chars"), env: LIMITS_FILTER_MAX_CHARS = "PLINTH_LIMITS_FILTER_MAX_CHARS", flag: None,
        range: Some((1, 65_536)),
        help: "The longest `filter` expression of a list or stream, in characters; a longer one answers 400.";
    jwt_secret: Option<Secret> = None;
        key: None, env: JWT_SECRET = "PLINTH_JWT_SECRET", flag: None, range: None,
        help: "The token-signing key itself (base64 from `plinth keys generate`, or at least 32 raw bytes). Never read from the file.";
    auth_jwt_secret_file: Option<PathBuf> = None;
        key: Some("auth.jwt_secret_file"), env: JWT_SECRET_FILE = "PLINTH_JWT_SECRET_FILE", flag: None, range: None,
        help: "A file holding the token-signing key, used when `PLINTH_JWT_SECRET` is unset. Unset in development: a key generated into `<data_dir>/jwt.key`.";
    encryption_keys: Option<Secret> = None;
        key: None, env: ENCRYPTION_KEYS = "PLINTH_ENCRYPTION_KEYS", flag: None, range: None,
        help: "The keys that seal `pii` fields and account emails, as `id=<base64 of 32 bytes>` entries separated by commas or newlines: `index=` (the blind-index key, kept for good) and one or more sealing keys, the last listed sealing new values (`plinth keys encryption` prints a set). Never read from the file.";
    encryption_keys_file: Option<PathBuf> = None;
        key: Some("encryption.keys_file"), env: ENCRYPTION_KEYS_FILE = "PLINTH_ENCRYPTION_KEYS_FILE", flag: None, range: None,
        help: "A file holding the encryption keys (one entry per line), used when `PLINTH_ENCRYPTION_KEYS` is unset, re-read when it changes; `plinth keys rotate` and `plinth keys retire` edit it. Unset in development: keys generated into `<data_dir>/encryption.keys`.";
    auth_access_token_minutes: u64 = 15;
        key: Some("auth.access_token_minutes"), env: AUTH_ACCESS_TOKEN_MINUTES = "PLINTH_AUTH_ACCESS_TOKEN_MINUTES", flag: None,
        range: Some((1, 24 * 60)),
        help: "Access-token lifetime, in minutes.";
    auth_refresh_token_days: u64 = 30;
        key: Some("auth.refresh_token_days"), env: AUTH_REFRESH_TOKEN_DAYS = "PLINTH_AUTH_REFRESH_TOKEN_DAYS", flag: None,
        range: Some((1, 365)),
        help: "Refresh-token lifetime, in days: a session not refreshed for this long ends.";
    auth_session_max_days: u64 = 30;
        key: Some("auth.session_max_days"), env: AUTH_SESSION_MAX_DAYS = "PLINTH_AUTH_SESSION_MAX_DAYS", flag: None,
        range: Some((1, 3650)),
        help: "The longest a session (a login and all its refreshes) lasts, in days, however often it is refreshed; then the user logs in again.";
    auth_api_key_max_days: u64 = 0;
        key: Some("auth.api_key_max_days"), env: AUTH_API_KEY_MAX_DAYS = "PLINTH_AUTH_API_KEY_MAX_DAYS", flag: None,
        range: Some((0, 3650)),
        help: "Longest lifetime of an API key, in days; 0 lets keys live until revoked. When set, a key created without `expires_at` expires after this, and a later `expires_at` is refused.";
    auth_argon2_memory_kib: u32 = 19 * 1024;
        key: Some("auth.argon2_memory_kib"), env: AUTH_ARGON2_MEMORY_KIB = "PLINTH_AUTH_ARGON2_MEMORY_KIB", flag: None,
        range: Some((8, 4 << 20)),
        help: "argon2id memory per password hash, in KiB; at least 8 per lane. Production refuses less than 19456 (the OWASP minimum).";
    auth_argon2_iterations: u32 = 2;
        key: Some("auth.argon2_iterations"), env: AUTH_ARGON2_ITERATIONS = "PLINTH_AUTH_ARGON2_ITERATIONS", flag: None,
        range: Some((1, 64)),
        help: "argon2id iterations.";
    auth_argon2_parallelism: u32 = 1;
        key: Some("auth.argon2_parallelism"), env: AUTH_ARGON2_PARALLELISM = "PLINTH_AUTH_ARGON2_PARALLELISM", flag: None,
        range: Some((1, 64)),
        help: "argon2id lanes.";
    auth_login_attempts_per_account_address: u32 = 5;
        key: Some("auth.login_attempts_per_account_address"), env: AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT_ADDRESS = "PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT_ADDRESS", flag: None,
        range: Some((0, 1_000_000)),
        help: "Login attempts per account from one client address (an IPv6 address's /64) per 60 s; 0 turns the limit off.";
    auth_login_attempts_per_account: u32 = 100;
        key: Some("auth.login_attempts_per_account"), env: AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT = "PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT", flag: None,
        range: Some((0, 1_000_000)),
        help: "Login attempts per account from all addresses together per 60 s, a ceiling well above the per-address limit, which does not apply from an address the account logged in from recently; 0 turns the limit off.";
    auth_login_remember_days: u64 = 30;
        key: Some("auth.login_remember_days"), env: AUTH_LOGIN_REMEMBER_DAYS = "PLINTH_AUTH_LOGIN_REMEMBER_DAYS", flag: None,
        range: Some((0, 3650)),
        help: "Days after an account's last successful login from a client address (an IPv6 address's /64) during which that address is spared the per-account ceiling; 0 spares none.";
    auth_login_attempts_per_address: u32 = 20;
        key: Some("auth.login_attempts_per_address"), env: AUTH_LOGIN_ATTEMPTS_PER_ADDRESS = "PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ADDRESS", flag: None,
        range: Some((0, 1_000_000)),
        help: "Login attempts per client address (an IPv6 address's /64) per 60 s, for any accounts; 0 turns the limit off.";
    auth_requests_per_minute: u32 = 0;
        key: Some("auth.requests_per_minute"), env: AUTH_REQUESTS_PER_MINUTE = "PLINTH_AUTH_REQUESTS_PER_MINUTE", flag: None,
        range: Some((0, 1_000_000)),
        help: "Requests per principal (user id, or client address for guests) per minute; 0 turns the limit off.";
    auth_signup: plinth_server::auth::Signup = plinth_server::auth::Signup::Off;
        key: Some("auth.signup"), env: AUTH_SIGNUP = "PLINTH_AUTH_SIGNUP", flag: None, range: None,
        help: "Who may create an account: `off`, only an admin; `open`, anyone, as a `user`, through `POST /api/v1/auth/signup`.";
    auth_signup_domains: Vec<String> = Vec::new();
        key: Some("auth.signup_domains"), env: AUTH_SIGNUP_DOMAINS = "PLINTH_AUTH_SIGNUP_DOMAINS", flag: None, range: None,
        help: "With sign-up open, the email domains it accepts (`example.com`, exactly, case-insensitively); empty accepts any.";
    auth_require_mfa_for_admins: bool = false;
        key: Some("auth.require_mfa_for_admins"), env: AUTH_REQUIRE_MFA_FOR_ADMINS = "PLINTH_AUTH_REQUIRE_MFA_FOR_ADMINS", flag: None, range: None,
        help: "Whether an admin must have TOTP on to act as one: an admin signed in without it acts as a `user` (every admin-only route answers 403) until they enrol. API keys are not affected.";
    public_url: Option<String> = None;
        key: Some("public_url"), env: PUBLIC_URL = "PLINTH_PUBLIC_URL", flag: None, range: None,
        help: "The address clients reach this server at (`https://api.example.com`, optionally with a path), for the links in messages and OpenID Connect redirects. Production refuses one that is not `https`.";
    auth_require_verified_email: bool = false;
        key: Some("auth.require_verified_email"), env: AUTH_REQUIRE_VERIFIED_EMAIL = "PLINTH_AUTH_REQUIRE_VERIFIED_EMAIL", flag: None, range: None,
        help: "Whether a login needs a verified email address (a refused one gets a new verification message). Needs `PLINTH_SMTP_URL`.";
    auth_verify_email_hours: u64 = 24;
        key: Some("auth.verify_email_hours"), env: AUTH_VERIFY_EMAIL_HOURS = "PLINTH_AUTH_VERIFY_EMAIL_HOURS", flag: None,
        range: Some((1, 24 * 30)),
        help: "How long a mailed verification or email-change token works, in hours.";
    auth_password_reset_minutes: u64 = 30;
        key: Some("auth.password_reset_minutes"), env: AUTH_PASSWORD_RESET_MINUTES = "PLINTH_AUTH_PASSWORD_RESET_MINUTES", flag: None,
        range: Some((5, 24 * 60)),
        help: "How long a mailed password-reset token works, in minutes.";
    smtp_url: Option<SecretUrl> = None;
        key: None, env: SMTP_URL = "PLINTH_SMTP_URL", flag: None, range: None,
        help: "The SMTP relay for account mail: `smtp://user:password@host:587?tls=required` (STARTTLS; `tls=opportunistic` or `tls=none` also), `smtps://host:465` (TLS from the start). Without `tls`, plain to a loopback host, else `required`. Production refuses plain SMTP to any other host. Unset: no mail; verification, reset and email change answer 503. Never read from the file (it may hold a password).";
    smtp_from: Option<String> = None;
        key: Some("smtp.from"), env: SMTP_FROM = "PLINTH_SMTP_FROM", flag: None, range: None,
        help: "The sender of account mail, such as `Plinth <no-reply@example.com>`. Needed with `PLINTH_SMTP_URL`.";
    smtp_templates_dir: Option<PathBuf> = None;
        key: Some("smtp.templates_dir"), env: SMTP_TEMPLATES_DIR = "PLINTH_SMTP_TEMPLATES_DIR", flag: None, range: None,
        help: "A directory of templates overriding the built-in messages: `verify_email`, `password_reset`, `email_change`, `email_change_notice`, `signup_exists`, each as `.txt` and `.html`, with `{{link}}`, `{{token}}`, `{{email}}` and `{{minutes}}`.";
    admin_email: Option<String> = None;
        key: None, env: ADMIN_EMAIL = "PLINTH_ADMIN_EMAIL", flag: None, range: None,
        help: "With `PLINTH_ADMIN_PASSWORD`, the first admin, created at a start when no admin exists.";
    admin_password: Option<Secret> = None;
        key: None, env: ADMIN_PASSWORD = "PLINTH_ADMIN_PASSWORD", flag: None, range: None,
        help: "The first admin's password (see `PLINTH_ADMIN_EMAIL`).";
    metrics_enabled: bool = true;
        key: Some("metrics.enabled"), env: METRICS_ENABLED = "PLINTH_METRICS_ENABLED", flag: None, range: None,
        help: "Whether `/metrics` (Prometheus) and `/api/v1/metrics/series` (the console's charts) are served; `false` answers them 404 and stops counting and timing requests.";
    metrics_token: Option<Secret> = None;
        key: None, env: METRICS_TOKEN = "PLINTH_METRICS_TOKEN", flag: None, range: None,
        help: "The bearer token that opens `/metrics` to peers other than loopback (`Authorization: Bearer <token>`); unset: loopback peers only. Production refuses one shorter than 32 characters.";
    bench_token: Option<Secret> = None;
        key: None, env: BENCH_TOKEN = "PLINTH_BENCH_TOKEN", flag: None, range: None,
        help: "The credential `plinth bench --url` sends: an access token or API key that may create records.";
}

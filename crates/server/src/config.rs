//! The HTTP layer's settings, already validated by the binary.

use crate::alerts::AlertConfig;
use crate::metrics::MetricsAccess;
use crate::tls::TlsFiles;
use std::net::SocketAddr;
use std::time::Duration;

/// Default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Default size from which an answer is compressed: about one packet's payload, below which
/// compressing saves no packet.
pub const DEFAULT_COMPRESSION_MIN_BYTES: u16 = 1400;

/// Default body limit of a batch write (`POST /api/v1/{model}/batch`): 16 MiB.
pub const DEFAULT_BATCH_BODY_LIMIT: usize = 16 << 20;

/// Default time to send a request head: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default idle time of a kept-alive connection: 75 s, longer than the idle timeout of
/// common load balancers (60 s), so the balancer, not Plinth, closes pooled connections.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// Default time from a request's head to its answer: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Default time between sweeps: 5 minutes.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// How often each instance loads the feature flags again by default.
pub const DEFAULT_FLAGS_RELOAD: Duration = Duration::from_secs(30);

/// Default idempotency window: 24 hours.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Default retention of the change feed's log: 24 hours.
pub const DEFAULT_CHANGE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The change feed's settings (`realtime`): what each instance's hub and streams may hold
/// (how long the log keeps changes is `ServerConfig::change_retention`).
#[derive(Debug, Clone, Copy)]
pub struct RealtimeConfig {
    /// The most streams one principal (a user, or a guest's client address) may hold open
    /// on one instance.
    pub max_per_principal: usize,
    /// The most streams one instance holds open.
    pub max_total: usize,
    /// How many changes a stream may fall behind the newest before it is ended
    /// (`slow_consumer`): the bound on what an instance keeps for its slowest reader.
    pub buffer: usize,
    /// The time between two heartbeat comments on a quiet stream.
    pub heartbeat: Duration,
    /// The longest the hub waits before reading the change log again without a signal.
    pub poll: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            max_per_principal: 16,
            max_total: 10_000,
            buffer: 1024,
            heartbeat: Duration::from_secs(15),
            poll: Duration::from_millis(1000),
        }
    }
}

/// Scheduled backups (see `backups`): every `interval` into `dir`, keeping the newest
/// `keep`.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    /// The directory backups are written to (created if missing).
    pub dir: std::path::PathBuf,
    /// The time between two backups; the first is one interval after the start.
    pub interval: Duration,
    /// How many scheduled backups are kept; older ones are deleted after each backup.
    pub keep: usize,
}

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Largest accepted body of a batch write, in bytes (instead of `body_limit`).
    pub batch_body_limit: usize,
    /// Answers at least this long, in bytes, are compressed for a client that accepts
    /// gzip (see `compress`); 0 turns compression off.
    pub compression_min_bytes: u16,
    /// Origins allowed by CORS; empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// After a shutdown signal, how long `/readyz` reports 503 before the listener closes,
    /// so a load balancer notices before connections are refused.
    pub drain_delay: Duration,
    /// After the listener closes, how long in-flight requests may still run before they are
    /// abandoned and the process exits.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request's head (request line and headers),
    /// from when the connection opens or the first byte of a later request arrives; past it
    /// the connection is closed. Also how long a body may pause with nothing arriving while
    /// the application waits for it (then 408 and the connection closes).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait, idle, for its next request before it is
    /// closed.
    pub keep_alive_timeout: Duration,
    /// How long a request may take from its head to its answer, body read included: past it
    /// the client gets 408 (its body was still arriving) or 503 (the server was slow).
    pub request_timeout: Duration,
    /// The most connections served at once (lowered at start to fit under the open-files
    /// limit). At the cap, a new connection closes the one that has been idle the longest,
    /// or one whose body has been trickling for longer than `header_read_timeout`; with
    /// none, it waits until one ends.
    pub max_connections: usize,
    /// How often dead refresh-token families and old idempotency keys are deleted;
    /// `Duration::ZERO` turns sweeping off.
    pub sweep_interval: Duration,
    /// How often each instance loads the feature flags again, whatever notices it got, so
    /// a missed one (a connection lost quietly) is caught up within this.
    pub flags_reload: Duration,
    /// How long an idempotency key is remembered; the sweeper deletes older ones.
    pub idempotency_window: Duration,
    /// How long audit entries are kept; the sweeper prunes older ones behind a sealed
    /// checkpoint. `None` keeps them forever.
    pub audit_retention: Option<Duration>,
    /// How long the change feed's log keeps changes; the sweeper prunes older ones (a
    /// subscriber resuming from before them is told to list again).
    pub change_retention: Duration,
    /// Take backups on this schedule; `None`: no scheduled backups.
    pub backups: Option<BackupSchedule>,
    /// Serve HTTPS with these files; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// With `tls`, also listen on this address for plain HTTP and answer every request
    /// with a redirect to the same path over HTTPS.
    pub redirect_from: Option<SocketAddr>,
    /// The alerts evaluated inside the server.
    pub alerts: AlertConfig,
    /// Whether `/metrics` is served, and to whom.
    pub metrics: MetricsAccess,
    /// Whether the admin console is served at `/admin` (unrouted when not: the 404 of any
    /// unknown path).
    pub admin_console: bool,
    /// The change feed.
    pub realtime: RealtimeConfig,
    /// File fields' storage; `None`: uploads are refused (JSON writes still work).
    pub files: Option<crate::files::FilesConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: DEFAULT_BODY_LIMIT,
            batch_body_limit: DEFAULT_BATCH_BODY_LIMIT,
            compression_min_bytes: DEFAULT_COMPRESSION_MIN_BYTES,
            cors_origins: Vec::new(),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            flags_reload: DEFAULT_FLAGS_RELOAD,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            audit_retention: None,
            change_retention: DEFAULT_CHANGE_RETENTION,
            backups: None,
            tls: None,
            redirect_from: None,
            alerts: AlertConfig::default(),
            metrics: MetricsAccess::default(),
            admin_console: true,
            realtime: RealtimeConfig::default(),
            files: None,
        }
    }
}

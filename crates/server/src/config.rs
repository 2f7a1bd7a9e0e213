//! The HTTP layer's settings, already validated by the binary.

use std::net::SocketAddr;
use std::time::Duration;

/// Default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Default time between sweeps: 5 minutes.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// Default idempotency window: 24 hours.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Origins allowed by CORS; empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// After a shutdown signal, how long `/readyz` reports 503 before the listener closes,
    /// so a load balancer notices before connections are refused.
    pub drain_delay: Duration,
    /// After the listener closes, how long in-flight requests may still run before they are
    /// abandoned and the process exits.
    pub shutdown_timeout: Duration,
    /// How often dead refresh-token families and old idempotency keys are deleted;
    /// `Duration::ZERO` turns sweeping off.
    pub sweep_interval: Duration,
    /// How long an idempotency key is remembered; the sweeper deletes older ones.
    pub idempotency_window: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: DEFAULT_BODY_LIMIT,
            cors_origins: Vec::new(),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
        }
    }
}

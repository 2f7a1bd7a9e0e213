//! The HTTP layer's settings, already validated by the binary.

use std::net::SocketAddr;
use std::time::Duration;

/// Default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: DEFAULT_BODY_LIMIT,
            cors_origins: Vec::new(),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

//! `AppState`: the one piece of shared state handlers see.

use crate::auth::Auth;
use plinth_core::{ModelDef, Schema};
use plinth_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Shared state: cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    schema: Arc<Schema>,
    auth: Arc<Auth>,
    /// Set when shutdown begins; `/readyz` answers 503 from then on so load balancers stop
    /// sending traffic while in-flight requests finish.
    draining: AtomicBool,
    started: Instant,
}

impl AppState {
    /// State over a migrated store and the schema it was migrated to.
    pub fn new(store: Arc<dyn Store>, schema: Arc<Schema>, auth: Arc<Auth>) -> Self {
        Self(Arc::new(Inner {
            store,
            schema,
            auth,
            draining: AtomicBool::new(false),
            started: Instant::now(),
        }))
    }

    /// The storage engine.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// A served model by name.
    pub fn model(&self, name: &str) -> Option<&Arc<ModelDef>> {
        self.0.schema.model(name)
    }

    /// The served schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.0.schema
    }

    /// The authentication service.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.0.auth
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    /// Marks the start of shutdown.
    pub fn start_draining(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}

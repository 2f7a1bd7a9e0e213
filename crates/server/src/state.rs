//! `AppState`: the one piece of shared state handlers see.

use crate::alerts::Alerts;
use crate::alerts::recorder::Recorder;
use crate::auth::Auth;
use crate::extract::Caller;
use crate::flags::{Flags, REPLICA_READS};
use crate::metrics::{MeteredStore, Metrics, MetricsAccess};
use crate::realtime::Realtime;
use axum::body::Bytes;
use plinth_core::Principal;
use plinth_core::flags::Subject;
use plinth_core::{ModelDef, QueryLimits, Schema};
use plinth_store::{ReadFrom, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use std::time::Instant;
use uuid::Uuid;

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
    /// How long after a write a principal's reads go to the primary (read-your-own-writes
    /// when the store has a read replica).
    ryow_window: Duration,
    /// When each principal last wrote; only kept while the store has a replica. A short
    /// lock per request, never held across an await.
    recent_writers: Mutex<HashMap<Uuid, Instant>>,
    /// This instance's copy of the feature flags.
    flags: Arc<Flags>,
    /// How long list filter values may be.
    query_limits: QueryLimits,
    /// This instance's alerts, set once by the `Application` serving the state (unset:
    /// alerts are off).
    alerts: OnceLock<Arc<Alerts>>,
    /// The last ten minutes of answers for `GET /api/v1/metrics/series`, set once by the
    /// `Application` when metrics are on (unset: off).
    series: OnceLock<Arc<Recorder>>,
    /// The OpenAPI document, made on first request and served as these bytes after.
    openapi: OnceLock<Bytes>,
    /// What `/metrics` shows; the store above records into it.
    metrics: Arc<Metrics>,
    /// Whether `/metrics` is served, and to whom; set once by the `Application` (unset:
    /// not served).
    metrics_access: OnceLock<MetricsAccess>,
    /// The change feed, set once by the `Application` serving the state (unset: the
    /// streams answer 503).
    realtime: OnceLock<Arc<Realtime>>,
    /// File storage, set once by the `Application` serving the state (unset: no uploads).
    files: OnceLock<Arc<crate::files::Files>>,
    /// The largest body of a batch write, set once by the `Application` (unset: the
    /// default).
    batch_body_limit: OnceLock<usize>,
    /// Sends the account flows' messages (off without SMTP settings).
    mailer: crate::mail::Mailer,
}

/// Default read-your-own-writes window.
pub(crate) const DEFAULT_RYOW_WINDOW: Duration = Duration::from_secs(5);

/// Forget writers once the table holds this many (only expired entries are dropped).
const SWEEP_WRITERS_AT: usize = 10_000;

impl AppState {
    /// State over a migrated store and the schema it was migrated to.
    pub fn new(store: Arc<dyn Store>, schema: Arc<Schema>, auth: Arc<Auth>) -> Self {
        Self::with_ryow_window(store, schema, auth, DEFAULT_RYOW_WINDOW)
    }

    /// As [`Self::new`], with the read-your-own-writes window for stores with a replica.
    pub fn with_ryow_window(
        store: Arc<dyn Store>,
        schema: Arc<Schema>,
        auth: Arc<Auth>,
        ryow_window: Duration,
    ) -> Self {
        Self::configured(store, schema, auth, ryow_window, QueryLimits::default())
    }

    /// As [`Self::with_ryow_window`], with the bounds on list filter values.
    pub fn configured(
        store: Arc<dyn Store>,
        schema: Arc<Schema>,
        auth: Arc<Auth>,
        ryow_window: Duration,
        query_limits: QueryLimits,
    ) -> Self {
        let mailer =
            crate::mail::Mailer::new(auth.config().mail.clone(), auth.config().public_url.clone());
        let metrics = Arc::new(Metrics::new(auth.counters(), mailer.counters()));
        // Every store call is timed here, once, whoever makes it.
        let store: Arc<dyn Store> = Arc::new(MeteredStore::new(store, &metrics));
        Self(Arc::new(Inner {
            store,
            metrics,
            schema,
            auth,
            draining: AtomicBool::new(false),
            started: Instant::now(),
            ryow_window,
            recent_writers: Mutex::new(HashMap::new()),
            flags: Arc::default(),
            query_limits,
            alerts: OnceLock::new(),
            series: OnceLock::new(),
            openapi: OnceLock::new(),
            metrics_access: OnceLock::new(),
            realtime: OnceLock::new(),
            files: OnceLock::new(),
            batch_body_limit: OnceLock::new(),
            mailer,
        }))
    }

    /// Notes that `who` wrote: its reads go to the primary for the window.
    pub(crate) fn note_write(&self, who: &Principal) {
        let (Some(id), true) = (who.user_id(), self.0.store.has_read_replica()) else {
            return;
        };
        if let Ok(mut writers) = self.0.recent_writers.lock() {
            let now = Instant::now();
            if writers.len() >= SWEEP_WRITERS_AT {
                let window = self.0.ryow_window;
                writers.retain(|_, at| now.duration_since(*at) < window);
            }
            writers.insert(id, now);
        }
    }

    /// Where `who`'s reads go: the primary within the window after its last write, or
    /// when the flag `plinth.replica_reads` exists and is off for the caller, or before the
    /// flags have loaded once; else the replica (if the store has one).
    pub(crate) fn read_from(&self, caller: &Caller) -> ReadFrom {
        if !self.0.store.has_read_replica() {
            return ReadFrom::Primary;
        }
        let who = &caller.0;
        let subject = Subject::of(who, caller.1);
        let now = self.0.auth.now();
        if !self
            .0
            .flags
            .plinth_flag(REPLICA_READS, &subject, now, true, false)
        {
            return ReadFrom::Primary;
        }
        let recent = who.user_id().is_some_and(|id| {
            self.0.recent_writers.lock().is_ok_and(|w| {
                w.get(&id)
                    .is_some_and(|at| at.elapsed() < self.0.ryow_window)
            })
        });
        if recent {
            ReadFrom::Primary
        } else {
            ReadFrom::Replica
        }
    }

    /// The storage engine.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// This instance's copy of the feature flags.
    pub(crate) fn flags(&self) -> &Arc<Flags> {
        &self.0.flags
    }

    /// A served model by name.
    pub fn model(&self, name: &str) -> Option<&Arc<ModelDef>> {
        self.0.schema.model(name)
    }

    /// The served schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.0.schema
    }

    /// The bounds on list filter values.
    pub(crate) fn query_limits(&self) -> &QueryLimits {
        &self.0.query_limits
    }

    /// The OpenAPI document of this server and its schema, serialised (made once).
    pub(crate) fn openapi(&self) -> &Bytes {
        self.0
            .openapi
            .get_or_init(|| crate::openapi::document(&self.0.schema, &self.0.query_limits))
    }

    /// The metrics registry and its handles.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// How `/metrics` is served (`None`: not at all).
    pub(crate) fn metrics_access(&self) -> Option<&MetricsAccess> {
        self.0.metrics_access.get()
    }

    /// Sets how `/metrics` is served, once; a state served twice keeps the first.
    pub(crate) fn set_metrics_access(&self, access: MetricsAccess) {
        let _ = self.0.metrics_access.set(access);
    }

    /// This instance's change feed (`None` before an `Application` serves the state).
    pub(crate) fn realtime(&self) -> Option<&Arc<Realtime>> {
        self.0.realtime.get()
    }

    /// The file storage, when one is configured.
    pub(crate) fn files(&self) -> Option<&Arc<crate::files::Files>> {
        self.0.files.get()
    }

    /// Sets the file storage once; a state served twice keeps the first.
    pub(crate) fn set_files(&self, files: Arc<crate::files::Files>) {
        let _ = self.0.files.set(files);
    }

    /// Sets the change feed once; a state served twice keeps the first.
    pub(crate) fn set_realtime(&self, realtime: Arc<Realtime>) {
        let _ = self.0.realtime.set(realtime);
    }

    /// The largest body of a batch write.
    pub(crate) fn batch_body_limit(&self) -> usize {
        self.0
            .batch_body_limit
            .get()
            .copied()
            .unwrap_or(crate::config::DEFAULT_BATCH_BODY_LIMIT)
    }

    /// Sets the largest body of a batch write once; a state served twice keeps the first.
    pub(crate) fn set_batch_body_limit(&self, limit: usize) {
        let _ = self.0.batch_body_limit.set(limit);
    }

    /// The mailer of the account flows.
    pub fn mailer(&self) -> &crate::mail::Mailer {
        &self.0.mailer
    }

    /// The authentication service.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.0.auth
    }

    /// This instance's alerts (`None` when they are off).
    pub(crate) fn alerts(&self) -> Option<&Arc<Alerts>> {
        self.0.alerts.get()
    }

    /// Sets the alerts once; a state served twice keeps the first.
    pub(crate) fn set_alerts(&self, alerts: Arc<Alerts>) {
        let _ = self.0.alerts.set(alerts);
    }

    /// The recorder of this instance's recent answers (`None` when metrics are off).
    pub(crate) fn series(&self) -> Option<&Arc<Recorder>> {
        self.0.series.get()
    }

    /// Sets the series' recorder once; a state served twice keeps the first.
    pub(crate) fn set_series(&self, series: Arc<Recorder>) {
        let _ = self.0.series.set(series);
    }

    /// Whether shutdown has begun.
    pub(crate) fn draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    /// Marks the start of shutdown.
    pub(crate) fn start_draining(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }

    /// Seconds since start.
    pub(crate) fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}

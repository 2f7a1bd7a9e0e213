//! Prometheus metrics: what `/metrics` shows and how the request path records it.
//!
//! Layout:
//! - this file: [`Metrics`], the registry and its handles, and [`TrackLayer`], which
//!   counts and times every request by method, route template and status;
//! - `store`: `MeteredStore`, the `Store` decorator that times every call by operation
//!   (`accounts`: its `AccountStore` half);
//! - `sampled`: figures read at scrape time (the engine's writer or pool, the database's
//!   answer, the audit chain's length, the process's memory, CPU and descriptors);
//! - `histogram`: `Timing`, a histogram of atomics;
//! - `realtime`: `RealtimeMetrics`, the change feed's streams and events;
//! - `access`: who may scrape (`MetricsAccess`: loopback peers, or the metrics token).
//!
//! The hot path takes no lock: counters and histograms (`Timing`) are atomics, each
//! route's layer finds its handles in the families once per method and status (under the
//! family's lock) and keeps them, and the store's histograms are resolved once, at start.

mod access;
mod accounts;
mod files;
mod flags;
mod histogram;
mod mfa;
mod oidc;
mod realtime;
mod sampled;
mod sessions;
mod store;
mod tokens;

pub(crate) use access::decide;
pub use access::{MetricsAccess, MetricsToken};
pub(crate) use realtime::RealtimeMetrics;
pub(crate) use sampled::render;
pub(crate) use store::MeteredStore;

use crate::auth::AuthCounters;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use histogram::Timing;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// Request-duration buckets, in seconds: fine enough to read p50 and p99 from 0.5 ms to 2 s.
pub(crate) const DURATION_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];

/// The registry and the handles the request path records into.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Timing>,
    in_flight: Gauge,
    store: store::StoreOps,
    /// The change feed's series.
    pub(crate) realtime: RealtimeMetrics,
}

impl Metrics {
    /// Registers every metric; `auth`'s counters are shown as they are.
    pub(crate) fn new(auth: &AuthCounters, mail: &crate::mail::MailCounters) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Timing>::default();
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, by method and route template",
            durations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served now",
            in_flight.clone(),
        );
        let store = store::StoreOps::register(&mut registry);
        let realtime = RealtimeMetrics::register(&mut registry);
        auth.register(&mut registry);
        mail.register(&mut registry);
        let build = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        build
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register(
            "plinth_build_info",
            "Always 1, labelled with the version",
            build,
        );
        Self {
            registry,
            requests,
            durations,
            in_flight,
            store,
            realtime,
        }
    }

    /// The registered metrics, in the Prometheus text format.
    pub(crate) fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }
}

/// Counts and times every request by its route template (`unmatched` when no route
/// matched: never the raw path) and its final status, and keeps the in-flight gauge. A
/// layer of its own rather than `from_fn`, which would box a future and clone the route's
/// service on every request.
#[derive(Debug, Clone)]
pub(crate) struct TrackLayer(pub(crate) Arc<Metrics>);

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: Arc::clone(&self.0),
            handles: Arc::default(),
        }
    }
}

/// The statuses whose counters a route keeps at hand; others are looked up each time.
const COMMON_STATUSES: [u16; 16] = [
    200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 409, 412, 413, 429, 500, 503,
];

/// One route's handles by method, each found in the families once, so that counting a
/// request hashes nothing and takes no lock.
#[derive(Debug, Default)]
struct RouteHandles {
    by_method: [OnceLock<MethodHandles>; 8],
}

#[derive(Debug)]
struct MethodHandles {
    /// The route they were made for (a layer serves one route; checked all the same).
    route: Route,
    duration: Timing,
    by_status: [OnceLock<Counter>; COMMON_STATUSES.len()],
}

/// A route's service, counted and timed (see [`TrackLayer`]).
#[derive(Debug, Clone)]
pub(crate) struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
    handles: Arc<RouteHandles>,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let labels = RouteLabels {
            method: MethodLabel::of(req.method()),
            route: Route(req.extensions().get::<MatchedPath>().cloned()),
        };
        self.metrics.in_flight.inc();
        let pending = InFlight {
            metrics: Arc::clone(&self.metrics),
            handles: Arc::clone(&self.handles),
            labels,
            started: Instant::now(),
        };
        Tracked {
            inner: self.inner.call(req),
            pending: Some(pending),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered; counted when its answer is ready.
    pub(crate) struct Tracked<F> {
        #[pin]
        inner: F,
        pending: Option<InFlight>,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Some(pending), Ok(res)) = (this.pending.take(), &out) {
            pending.answered(res.status().as_u16());
        }
        Poll::Ready(out)
    }
}

/// One request in flight, until dropped: answered, or abandoned by its connection.
pub(crate) struct InFlight {
    metrics: Arc<Metrics>,
    handles: Arc<RouteHandles>,
    labels: RouteLabels,
    started: Instant,
}

impl InFlight {
    fn answered(self, status: u16) {
        let elapsed = self.started.elapsed();
        let m = &self.metrics;
        let labels = &self.labels;
        let looked_up = || {
            m.requests
                .get_or_create(&RequestLabels {
                    route: labels.clone(),
                    status,
                })
                .clone()
        };
        let handles =
            self.handles.by_method[labels.method as usize].get_or_init(|| MethodHandles {
                route: labels.route.clone(),
                duration: m.durations.get_or_create(labels).clone(),
                by_status: Default::default(),
            });
        if handles.route != labels.route {
            m.durations.get_or_create(labels).observe(elapsed);
            looked_up().inc();
            return;
        }
        handles.duration.observe(elapsed);
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(i) => handles.by_status[i].get_or_init(looked_up).inc(),
            None => looked_up().inc(),
        };
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteLabels {
    method: MethodLabel,
    route: Route,
}

impl EncodeLabelSet for RouteLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder<'_>,
    ) -> std::fmt::Result {
        ("method", self.method).encode(encoder.encode_label())?;
        ("route", &self.route).encode(encoder.encode_label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestLabels {
    route: RouteLabels,
    status: u16,
}

impl EncodeLabelSet for RequestLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder<'_>,
    ) -> std::fmt::Result {
        self.route.encode(encoder)?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

use prometheus_client::encoding::EncodeLabel as _;

/// The matched route's template, shared with the router (no copy per request).
#[derive(Debug, Clone)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for &Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// The request method; any other than the usual ones is `other`, so a client cannot make
/// label sets without end. Its value indexes `RouteHandles::by_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl MethodLabel {
    fn of(m: &Method) -> Self {
        match *m {
            Method::GET => Self::Get,
            Method::HEAD => Self::Head,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::PATCH => Self::Patch,
            Method::DELETE => Self::Delete,
            Method::OPTIONS => Self::Options,
            _ => Self::Other,
        }
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "other",
        })
    }
}

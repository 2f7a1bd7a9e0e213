//! The change feed: Server-Sent Events streams of record changes, policy-filtered and
//! resumable (`GET /api/v1/{model}/events`, `GET /api/v1/events?models=`).
//!
//! Each instance runs one [`Hub`] following the store's change log; each stream is a task
//! of its own ([`stream::Session`]) that first taps the hub, then reads where the log
//! stands, replays what the client missed from the store, says `ready`, and relays the
//! hub's changes from there, dropping any it already sent: no gap, no duplicate. Every
//! change is checked against the stream's [`Feed`] (models, ids, filters decided in memory
//! by `ListQuery::matches`, and the read policy per record) and written as the read endpoint
//! would show the record to the caller; a change's frame is made once per field access
//! and shared by the streams that send it.
//!
//! A stream also ends when the credential it was opened with is revoked or expires
//! (`Auth::watch_stream`), and is admitted only within the stream limits (`registry`).
//!
//! Layout: `hub` (the task following the log), `stream` (a stream's task and body),
//! `frame` (the SSE text, [`EndReason`]), `registry` (the open streams, counted and
//! limited).

mod frame;
mod hub;
mod registry;
mod stream;

pub(crate) use frame::EndReason;
pub(crate) use hub::Hub;

use crate::auth::StreamAuth;
use crate::config::RealtimeConfig;
use crate::error::ApiError;
use crate::metrics::RealtimeMetrics;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use plinth_core::policy::{self, Action};

use plinth_core::{ErrorCode, FieldAccess, ListQuery, ModelDef, Principal, RecordId};
use plinth_store::{Change, Store};
use registry::{Limits, Streams, principal_key};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How long a stream opened while the hub starts waits for it before it is refused (503).
const HUB_START_WAIT: Duration = Duration::from_secs(5);

/// This instance's change feed: its hub, its open streams and their settings.
#[derive(Debug)]
pub(crate) struct Realtime {
    config: RealtimeConfig,
    hub: Arc<Hub>,
    streams: Arc<Streams>,
    metrics: RealtimeMetrics,
}

/// A change as the hub hands it out, with its frames made at most once per field access.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) change: Change,
    /// Indexed by [`access_index`].
    frames: [OnceLock<Bytes>; 2],
}

impl Live {
    pub(crate) fn new(change: Change) -> Self {
        Self {
            change,
            frames: [OnceLock::new(), OnceLock::new()],
        }
    }
}

fn access_index(access: FieldAccess) -> usize {
    match access {
        FieldAccess::All => 0,
        FieldAccess::Public => 1,
    }
}

/// One model a stream follows, and which of its records.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) model: Arc<ModelDef>,
    /// The list filters and `filter=` expression a record must pass (after the write).
    pub(crate) query: Option<ListQuery>,
    /// Only these records (`id=`); `None`: any.
    pub(crate) ids: Option<HashSet<RecordId>>,
}

/// What a stream sends: changes to its targets' records that its principal may read.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) principal: Principal,
    pub(crate) targets: Vec<Target>,
}

impl Feed {
    /// The frame of `change` for this stream, or `None` when it is not for it. `live`
    /// holds the frames other streams made of the same change.
    fn frame(&self, change: &Change, live: Option<&Live>) -> Option<Bytes> {
        let target = self
            .targets
            .iter()
            .find(|t| t.model.name().as_str() == change.model)?;
        let record = &change.record;
        if target
            .ids
            .as_ref()
            .is_some_and(|ids| !ids.contains(&record.id))
        {
            return None;
        }
        if target.query.as_ref().is_some_and(|q| !q.matches(record)) {
            return None;
        }
        let policy = target.model.policy();
        policy::authorize(&self.principal, policy, Action::Read, Some(record.owner_id)).ok()?;
        let access = self.principal.field_access();
        let make = || frame::change(&target.model, change, access);
        Some(match live {
            Some(live) => live.frames[access_index(access)].get_or_init(make).clone(),
            None => make(),
        })
    }
}

impl Realtime {
    /// The feed of an instance with these settings, recording into `metrics`.
    pub(crate) fn new(config: RealtimeConfig, metrics: RealtimeMetrics) -> Self {
        Self {
            hub: Arc::new(Hub::new(config.buffer)),
            config,
            streams: Arc::default(),
            metrics,
        }
    }

    /// Starts the hub over `store`.
    pub(crate) fn spawn_hub(&self, store: Arc<dyn Store>) -> JoinHandle<()> {
        self.hub.spawn(store, self.config.poll)
    }

    /// Ends every stream (`shutdown`) and refuses new ones: the server stops serving.
    pub(crate) fn shut_down(&self) {
        self.hub.shut_down();
    }

    /// Opens a stream of `feed` for the caller `auth` authenticated (from `address`),
    /// resuming after `after` (`None`: from now), within the stream limits. The stream
    /// ends when `auth`'s credential is revoked or expires.
    pub(crate) async fn open(
        &self,
        state: &AppState,
        feed: Feed,
        auth: StreamAuth,
        address: &str,
        after: Option<i64>,
    ) -> Result<Response, ApiError> {
        if self.hub.is_shut_down() {
            return Err(
                ApiError::new(ErrorCode::Unavailable, "the server is shutting down")
                    .with_retry_after(Duration::from_secs(1)),
            );
        }
        let limits = Limits {
            per_principal: self.config.max_per_principal,
            total: self.config.max_total,
        };
        let who = principal_key(auth.principal(), address);
        let admission = self.streams.admit(who, limits, &self.metrics)?;
        let credential = Box::pin(state.auth().watch_stream(Arc::clone(state.store()), auth));
        // The hub's start first: changes up to it are never broadcast, so a replay goes at
        // least that far.
        let Some(hub_start) = self.hub.started(HUB_START_WAIT).await else {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the change feed is starting; try again shortly",
            )
            .with_retry_after(Duration::from_secs(1)));
        };
        // The tap next, then the log's state: every change after the head read below
        // reaches the tap, so replay and live meet with nothing missed.
        let tap = self.hub.tap();
        let mut window = state.store().change_window().await?;
        window.head = window.head.max(hub_start);
        let start = stream::Start::decide(after, window);
        let (outlet, body) = stream::channel();
        let session = stream::Session {
            feed,
            store: Arc::clone(state.store()),
            outlet,
            tap,
            buffer: self.config.buffer,
            heartbeat: self.config.heartbeat,
            metrics: self.metrics.clone(),
            admission,
            credential,
            reached: None,
        };
        tokio::spawn(session.run(start).in_current_span());
        let mut res = Response::new(Body::new(body));
        *res.status_mut() = StatusCode::OK;
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // Proxies that buffer answers (nginx) must pass each event on as it comes.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(res)
    }
}

#[cfg(test)]
mod tests;

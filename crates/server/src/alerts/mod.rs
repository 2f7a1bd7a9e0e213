//! Alerts evaluated inside Plinth: the two rules the seed ships for Prometheus
//! (`HighErrorRate`: more than 1 % of answers 5xx over 5 minutes, critical; `SlowResponse`:
//! p99 latency above 1 s over 5 minutes, warning), computed from what this instance served.
//!
//! Layout:
//! - `recorder`: [`recorder::Recorder`], fed once per request by the request middleware
//!   (lock-free buckets of counts and a latency histogram over the window). A second one,
//!   of ten minutes, is the series of `GET /api/v1/metrics/series` (kept in the state
//!   whenever metrics are on, alerts or not).
//! - `rules`: [`Thresholds`], the rules, and the `Board` of firing and resolved alerts.
//! - `webhook`: [`WebhookConfig`] and the delivery task (retries, signature).
//!
//! The evaluator ([`spawn`]) runs every interval: it reads the window, moves each rule
//! between inactive, firing and resolved, and for each change logs it (warn on fire, info
//! on resolve), appends `alert.fire` / `alert.resolve` to the audit trail as the system,
//! and queues a webhook notification. Each instance judges its own traffic.

pub(crate) mod recorder;
mod rules;
#[cfg(test)]
mod tests;
mod webhook;

pub use rules::Thresholds;
pub use webhook::{SIGNATURE_HEADER, WebhookConfig};

use crate::state::AppState;
use plinth_core::Principal;
use plinth_store::{AuditEvent, Event, WriteCtx};
use recorder::Recorder;
pub(crate) use rules::Alert;
use rules::{Board, Change};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use webhook::Notifier;

/// Default window: 5 minutes.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// Default time between evaluations: 5 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default number of resolved alerts kept for `GET /api/v1/alerts`.
pub const DEFAULT_KEEP_RESOLVED: usize = 20;

/// The request id of the audit entries the evaluator appends.
const AUDIT_REQUEST_ID: &str = "alerts";

/// How alerts are evaluated.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The rolling window the rules look at.
    pub window: Duration,
    /// How often the rules are evaluated; `Duration::ZERO` turns alerts off (nothing is
    /// recorded and `GET /api/v1/alerts` lists nothing).
    pub interval: Duration,
    /// What the rules compare against.
    pub thresholds: Thresholds,
    /// How many resolved alerts `GET /api/v1/alerts` keeps showing.
    pub keep_resolved: usize,
    /// Where state changes are POSTed, if anywhere.
    pub webhook: Option<WebhookConfig>,
}

impl AlertConfig {
    /// Checks the webhook settings (the URL's scheme and host, the CA file); a refusal
    /// says what is wrong, never the URL or the secret. `Application` checks again.
    pub fn check(&self) -> Result<(), String> {
        match &self.webhook {
            Some(hook) if !self.interval.is_zero() => webhook::check(hook),
            _ => Ok(()),
        }
    }
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            interval: DEFAULT_INTERVAL,
            thresholds: Thresholds::default(),
            keep_resolved: DEFAULT_KEEP_RESOLVED,
            webhook: None,
        }
    }
}

/// One instance's alerts: the recorder the middleware feeds and the rules' state.
#[derive(Debug)]
pub(crate) struct Alerts {
    recorder: Recorder,
    config: AlertConfig,
    /// The rules' state: written by the evaluator once per interval, read by
    /// `GET /api/v1/alerts`; never touched by other requests.
    board: Mutex<Board>,
}

impl Alerts {
    /// Alerts under `config`; `None` when they are turned off.
    pub(crate) fn new(config: &AlertConfig) -> Option<Self> {
        if config.interval.is_zero() {
            return None;
        }
        Some(Self {
            recorder: Recorder::new(config.window),
            board: Mutex::new(Board::new(config.keep_resolved)),
            config: config.clone(),
        })
    }

    /// Counts one answer, sent at `at`.
    pub(crate) fn record(&self, at: Instant, status: u16, latency: Duration) {
        self.recorder.record_at(at, status, latency);
    }

    /// Firing alerts, then the recently resolved, newest first.
    pub(crate) fn list(&self) -> Vec<Alert> {
        self.board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts()
    }
}

/// Starts the evaluator (and the webhook's delivery task) for `state`'s alerts; `None`
/// when alerts are off.
pub(crate) fn spawn(state: AppState) -> Option<JoinHandle<()>> {
    let alerts = Arc::clone(state.alerts()?);
    let notifier = match alerts.config.webhook.as_ref().map(Notifier::start) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            // Checked at start (`check`); a CA file removed since is reported here.
            tracing::error!(error = %e, "the alert webhook cannot be used; alerts are not sent");
            None
        }
    };
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(alerts.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let window = alerts.recorder.window();
            let changes = alerts
                .board
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .evaluate(
                    &window,
                    &alerts.config.thresholds,
                    alerts.config.window,
                    state.auth().now(),
                );
            for change in changes {
                report(&state, notifier.as_ref(), change).await;
            }
        }
    }))
}

/// Logs, audits and notifies one state change.
async fn report(state: &AppState, notifier: Option<&Notifier>, change: Change) {
    let (event, alert) = match &change {
        Change::Fired(a) => {
            tracing::warn!(
                alert = a.name,
                severity = a.severity,
                value = a.value,
                threshold = a.threshold,
                "alert firing: {}",
                a.summary
            );
            (Event::AlertFire, a)
        }
        Change::Resolved(a) => {
            tracing::info!(
                alert = a.name,
                severity = a.severity,
                value = a.value,
                threshold = a.threshold,
                "alert resolved: {}",
                a.summary
            );
            (Event::AlertResolve, a)
        }
    };
    let details = serde_json::json!({
        "alert": alert.name,
        "severity": alert.severity,
        "since": alert.since,
        "until": alert.until,
        "value": alert.value,
        "threshold": alert.threshold,
    });
    if let Some(notifier) = notifier {
        let body = serde_json::json!({"event": event.action(), "alert": alert});
        notifier.notify(body.to_string().into_bytes());
    }
    let ctx = WriteCtx::new(Principal::local_admin(), AUDIT_REQUEST_ID);
    let entry = AuditEvent {
        event,
        target: None,
        changes: details,
    };
    if let Err(e) = state.store().audit_event(&ctx, entry).await {
        tracing::error!(error = %e, alert = alert.name, "cannot append the alert to the audit trail");
    }
}

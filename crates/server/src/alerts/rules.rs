//! The rules and their state: each rule is inactive, or firing since a time; a firing rule
//! that stops breaching is resolved and kept among the recently resolved.

use super::recorder::Window;
use plinth_core::Timestamp;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// The thresholds the rules compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// `HighErrorRate` fires when more than this share of answers (0 to 1) are 5xx.
    pub error_rate: f64,
    /// `SlowResponse` fires when the p99 latency is above this.
    pub p99: Duration,
    /// Neither rule fires over a window with fewer answers than this: one error among
    /// three requests is not an error rate.
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            error_rate: 0.01,
            p99: Duration::from_secs(1),
            min_requests: 20,
        }
    }
}

/// A rule of Plinth's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The share of 5xx answers over the window is above its threshold.
    HighErrorRate,
    /// The p99 latency over the window is above its threshold.
    SlowResponse,
}

impl Rule {
    pub(crate) const ALL: [Rule; 2] = [Rule::HighErrorRate, Rule::SlowResponse];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::HighErrorRate => "HighErrorRate",
            Self::SlowResponse => "SlowResponse",
        }
    }

    pub(crate) fn severity(self) -> &'static str {
        match self {
            Self::HighErrorRate => "critical",
            Self::SlowResponse => "warning",
        }
    }

    /// The rule's measure over `w` (a share for the error rate, seconds for latency) and
    /// its threshold in the same unit; the measure is `None` under the minimum of answers.
    pub(crate) fn measure(self, w: &Window, t: &Thresholds) -> (Option<f64>, f64) {
        let enough = w.requests >= t.min_requests.max(1);
        match self {
            Self::HighErrorRate => (enough.then(|| w.error_rate()), t.error_rate),
            Self::SlowResponse => (
                w.p99().filter(|_| enough).map(|ms| ms / 1000.0),
                t.p99.as_secs_f64(),
            ),
        }
    }

    fn summary(self, value: f64, threshold: f64, window: Duration) -> String {
        let secs = window.as_secs_f64();
        match self {
            Self::HighErrorRate => format!(
                "{:.2} % of answers over the last {secs} s were 5xx (threshold {:.2} %)",
                value * 100.0,
                threshold * 100.0
            ),
            Self::SlowResponse => format!(
                "p99 latency over the last {secs} s was {value:.3} s (threshold {threshold:.3} s)"
            ),
        }
    }
}

/// An alert as `GET /api/v1/alerts` shows it and the webhook receives it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Alert {
    pub(crate) name: &'static str,
    pub(crate) severity: &'static str,
    /// `firing` or `resolved`.
    pub(crate) state: &'static str,
    pub(crate) since: String,
    /// When it resolved; `null` while firing.
    pub(crate) until: Option<String>,
    /// The measure when it fired (for a resolved alert: when it resolved, the last one
    /// measured while it fired).
    pub(crate) value: f64,
    pub(crate) threshold: f64,
    pub(crate) summary: String,
}

/// A state change, to log, audit and notify.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Fired(Alert),
    Resolved(Alert),
}

/// The rules' state.
#[derive(Debug)]
pub(crate) struct Board {
    firing: Vec<(Rule, Alert)>,
    /// Newest first, at most `keep_resolved`.
    resolved: VecDeque<Alert>,
    keep_resolved: usize,
}

impl Board {
    pub(crate) fn new(keep_resolved: usize) -> Self {
        Self {
            firing: Vec::new(),
            resolved: VecDeque::new(),
            keep_resolved,
        }
    }

    /// Evaluates every rule over `w` at `now`; the changes, in rule order.
    pub(crate) fn evaluate(
        &mut self,
        w: &Window,
        t: &Thresholds,
        window: Duration,
        now: Timestamp,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for rule in Rule::ALL {
            let (measure, threshold) = rule.measure(w, t);
            let breaching = measure.filter(|&v| v > threshold);
            let at = self.firing.iter().position(|(r, _)| *r == rule);
            match (breaching, at) {
                (Some(value), None) => {
                    let alert = Alert {
                        name: rule.name(),
                        severity: rule.severity(),
                        state: "firing",
                        since: now.to_string(),
                        until: None,
                        value,
                        threshold,
                        summary: rule.summary(value, threshold, window),
                    };
                    self.firing.push((rule, alert.clone()));
                    changes.push(Change::Fired(alert));
                }
                (Some(value), Some(i)) => {
                    // Still firing: the value shown is the latest.
                    let alert = &mut self.firing[i].1;
                    alert.value = value;
                    alert.summary = rule.summary(value, threshold, window);
                }
                (None, Some(i)) => {
                    let (_, mut alert) = self.firing.remove(i);
                    alert.state = "resolved";
                    alert.until = Some(now.to_string());
                    self.resolved.push_front(alert.clone());
                    self.resolved.truncate(self.keep_resolved);
                    changes.push(Change::Resolved(alert));
                }
                (None, None) => {}
            }
        }
        changes
    }

    /// Firing alerts, then the recently resolved, newest first.
    pub(crate) fn alerts(&self) -> Vec<Alert> {
        self.firing
            .iter()
            .map(|(_, a)| a.clone())
            .chain(self.resolved.iter().cloned())
            .collect()
    }
}

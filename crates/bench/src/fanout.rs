//! The fan-out workload: subscribers on the change feed, writes at a fixed rate, and how
//! long each write takes to reach every subscriber.
//!
//! Every subscriber opens `GET /api/v1/resource/events` and waits for `ready`. Then writes
//! (creates) are sent open loop by the fixed-rate scheduler of `rate`: the n-th at
//! `start + n / rate`, whether or not earlier ones were answered, so a slow server meets the load it was promised rather than a
//! politely slowed one. A write's send time is kept by the record id its answer names;
//! each subscriber keeps the time it first received each record id, and the difference
//! is that delivery's latency. Every subscriber must receive every write once: a write
//! some subscriber never got is missing, a second `created` for one record a duplicate,
//! and both count as errors.

use crate::rate::{Outcome, Recorder, open_loop};
use crate::sse::{SseEvent, SseParser};
use crate::{BenchError, Figures, Req, new_histogram};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};

/// How long subscribers may take to open and reach `ready`, all of them together.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the last write is answered subscribers may take to receive everything
/// (the feed reads its log at least every `realtime.poll_ms`, one second by default).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Writes in flight at most: far above what a server that keeps up holds.
const WRITES_IN_FLIGHT: usize = 100_000;

/// The fan-out workload's shape.
#[derive(Debug, Clone, Copy)]
pub struct FanoutOptions {
    /// Open streams, each receiving every write.
    pub subscribers: usize,
    /// Writes sent per second.
    pub write_rate: u32,
    /// How long writes are sent.
    pub duration: Duration,
}

impl FanoutOptions {
    /// Writes sent in all: the rate times the duration, at least one.
    pub fn writes(&self) -> u64 {
        let n = f64::from(self.write_rate) * self.duration.as_secs_f64();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = n.round() as u64;
        n.max(1)
    }
}

/// What the fan-out measured.
#[derive(Debug, Clone)]
pub struct FanoutFigures {
    /// The shape it ran with.
    pub options: FanoutOptions,
    /// The writes: answered per second, their latency, and failed ones as errors.
    pub writes: Figures,
    /// The deliveries: `requests` is events received, `elapsed` runs from the first write
    /// sent to the last event received, `errors` is missing plus duplicates plus streams
    /// that ended early.
    pub delivery: Figures,
    /// The slowest delivery.
    pub delivery_max: Duration,
    /// Events that should have arrived: successful writes times subscribers.
    pub expected: u64,
    /// Distinct (subscriber, record) events that did.
    pub received: u64,
    /// Expected events that never arrived.
    pub missing: u64,
    /// Events that arrived again for a record the subscriber already had.
    pub duplicates: u64,
    /// Why streams ended before they had everything (an `end` event, a reset, a lost
    /// connection), one entry per stream.
    pub stream_failures: Vec<String>,
    /// Why the first failed write failed.
    pub first_write_error: Option<String>,
}

impl fmt::Display for FanoutFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fan-out: {} subscribers, {} writes/s for {} s: {} events expected, {} received, \
             {} missing, {} duplicates, delivery max {:.3} ms",
            self.options.subscribers,
            self.options.write_rate,
            self.options.duration.as_secs_f64(),
            self.expected,
            self.received,
            self.missing,
            self.duplicates,
            self.delivery_max.as_secs_f64() * 1000.0
        )?;
        if let Some(first) = &self.first_write_error {
            writeln!(
                f,
                "fan-out: {} writes failed, the first: {first}",
                self.writes.errors
            )?;
        }
        if let Some(first) = self.stream_failures.first() {
            writeln!(
                f,
                "fan-out: {} streams ended early, the first: {first}",
                self.stream_failures.len()
            )?;
        }
        Ok(())
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Received {
    /// When each record id's `created` first arrived.
    first: HashMap<String, Instant>,
    duplicates: u64,
    /// Why the stream ended before the run told it to stop.
    failure: Option<String>,
}

/// The signals the run sends its subscribers.
#[derive(Debug, Clone)]
struct Control {
    /// The record ids of every successful write, once all are answered.
    want: watch::Receiver<Option<Arc<HashSet<String>>>>,
    /// Set when the run stops waiting.
    stop: watch::Receiver<bool>,
    /// Subscribers done (holding every wanted id, or failed), and a wake-up for the run.
    finished: Arc<(AtomicUsize, Notify)>,
}

impl Control {
    /// Tells the run this subscriber waits for nothing more.
    fn finished(&self) {
        let (count, notify) = &*self.finished;
        count.fetch_add(1, Ordering::AcqRel);
        notify.notify_one();
    }
}

/// Opens the subscribers, sends the writes and gathers the figures.
pub(crate) async fn run(
    client: &reqwest::Client,
    base: &str,
    opts: &FanoutOptions,
) -> Result<FanoutFigures, BenchError> {
    let url = format!("{base}/api/v1/resource/events");
    let (want_tx, want) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let control = Control {
        want,
        stop,
        finished: Arc::new((AtomicUsize::new(0), Notify::new())),
    };
    let (ready_tx, mut ready_rx) = mpsc::channel(opts.subscribers.max(1));
    let mut subscribers = Vec::with_capacity(opts.subscribers);
    for _ in 0..opts.subscribers {
        let (client, url, ready, control) = (
            client.clone(),
            url.clone(),
            ready_tx.clone(),
            control.clone(),
        );
        subscribers.push(tokio::spawn(subscribe(client, url, ready, control)));
    }
    drop(ready_tx);
    let ready_by = tokio::time::Instant::now() + READY_TIMEOUT;
    for _ in 0..opts.subscribers {
        match tokio::time::timeout_at(ready_by, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(why))) => {
                let _ = stop_tx.send(true);
                return Err(BenchError::Server(format!("a subscriber failed: {why}")));
            }
            Ok(None) | Err(_) => {
                let _ = stop_tx.send(true);
                return Err(BenchError::Server(format!(
                    "the subscribers were not all ready within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
        }
    }

    let (sent, writes, first_write_error) = write_open_loop(client, base, opts).await;
    let wanted: HashSet<String> = sent.keys().cloned().collect();
    let wanted_count = wanted.len();
    let _ = want_tx.send(Some(Arc::new(wanted)));
    let drain_by = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let (count, notify) = &*control.finished;
    while count.load(Ordering::Acquire) < opts.subscribers {
        let notified = notify.notified();
        if count.load(Ordering::Acquire) >= opts.subscribers {
            break;
        }
        if tokio::time::timeout_at(drain_by, notified).await.is_err() {
            break;
        }
    }
    let _ = stop_tx.send(true);

    let mut seen = Vec::with_capacity(opts.subscribers);
    for task in subscribers {
        seen.push(task.await.unwrap_or_else(|e| Received {
            failure: Some(format!("the subscriber task failed: {e}")),
            ..Received::default()
        }));
    }
    Ok(FanoutFigures {
        first_write_error,
        ..tally(opts, &sent, wanted_count, writes, &seen)
    })
}

/// Matches every subscriber's deliveries with the writes' send times.
fn tally(
    opts: &FanoutOptions,
    sent: &HashMap<String, Instant>,
    wanted: usize,
    writes: Figures,
    seen: &[Received],
) -> FanoutFigures {
    let mut hist = new_histogram();
    let (mut received, mut missing, mut duplicates) = (0u64, 0u64, 0u64);
    let first_sent = sent.values().min().copied();
    let mut last_received = first_sent;
    let mut stream_failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for sub in seen {
        duplicates += sub.duplicates;
        for (id, at) in &sub.first {
            if let Some(sent_at) = sent.get(id) {
                received += 1;
                let took = at.saturating_duration_since(*sent_at);
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                let _ = hist.record(micros.max(1));
                slowest = slowest.max(took);
                last_received = last_received.max(Some(*at));
            }
        }
        let got = sub.first.keys().filter(|id| sent.contains_key(*id)).count();
        missing += (wanted - got.min(wanted)) as u64;
        if let Some(why) = &sub.failure {
            stream_failures.push(why.clone());
        }
    }
    let elapsed = match (first_sent, last_received) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let expected = (wanted as u64) * opts.subscribers as u64;
    FanoutFigures {
        options: *opts,
        delivery: Figures {
            name: "fan_event",
            requests: received,
            errors: missing + duplicates + stream_failures.len() as u64,
            elapsed,
            p50: Duration::from_micros(hist.value_at_quantile(0.50)),
            p99: Duration::from_micros(hist.value_at_quantile(0.99)),
        },
        delivery_max: slowest,
        writes,
        expected,
        received,
        missing,
        duplicates,
        stream_failures,
        first_write_error: None,
    }
}

/// Sends `opts.writes()` creates through the fixed-rate scheduler (`rate::open_loop`: the
/// n-th at `start + n / rate`, each from a task of its own); answers the send time of each
/// created record, by id, the writes' figures and why the first failed write failed.
async fn write_open_loop(
    client: &reqwest::Client,
    base: &str,
    opts: &FanoutOptions,
) -> (HashMap<String, Instant>, Figures, Option<String>) {
    let total = opts.writes();
    let url = format!("{base}/api/v1/resource");
    let sent = Arc::new(Mutex::new((HashMap::new(), None::<String>)));
    let recorder = Arc::new(Mutex::new(Recorder::new(None)));
    let elapsed = open_loop(
        f64::from(opts.write_rate.max(1)),
        total,
        WRITES_IN_FLIGHT,
        &recorder,
        |n| {
            let (client, url, sent) = (client.clone(), url.clone(), Arc::clone(&sent));
            (Req::Create, async move {
                let body = format!(r#"{{"name":"fanout-{n}"}}"#);
                let sent_at = Instant::now();
                let answer = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let (outcome, id) = match answer {
                    Ok(res) => {
                        let status = res.status();
                        let body = res.json::<serde_json::Value>().await.unwrap_or_default();
                        match body["data"]["id"].as_str() {
                            Some(id) if status.is_success() => (Outcome::Ok, Ok(id.to_owned())),
                            _ => (
                                Outcome::Status,
                                Err(format!("HTTP {status}: {}", body["error"])),
                            ),
                        }
                    }
                    Err(e) => (Outcome::Transport, Err(e.to_string())),
                };
                let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
                match id {
                    Ok(id) => {
                        sent.0.insert(id, sent_at);
                    }
                    Err(why) => {
                        sent.1.get_or_insert(why);
                    }
                }
                outcome
            })
        },
    )
    .await;
    let writes = recorder
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .total()
        .writes
        .clone();
    let (sent, first_error) =
        std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    let first_error = first_error.or_else(|| {
        (writes.errors() > 0).then(|| {
            format!(
                "{} unanswered within {} s or over {WRITES_IN_FLIGHT} in flight",
                writes.transport_errors + writes.overflow,
                crate::REQUEST_TIMEOUT.as_secs()
            )
        })
    });
    let figures = Figures {
        name: "fan_write",
        requests: total,
        errors: writes.errors(),
        elapsed,
        p50: Duration::from_micros(writes.latency.value_at_quantile(0.50)),
        p99: Duration::from_micros(writes.latency.value_at_quantile(0.99)),
    };
    (sent, figures, first_error)
}

/// The data of a change event, as far as the bench reads it.
#[derive(Debug, serde::Deserialize)]
struct ChangeData {
    record: RecordRef,
}

#[derive(Debug, serde::Deserialize)]
struct RecordRef {
    id: String,
}

/// One subscriber: opens the stream, reports `ready` (or why not), then records every
/// `created` until it has every wanted id or the run stops it.
async fn subscribe(
    client: reqwest::Client,
    url: String,
    ready: mpsc::Sender<Result<(), String>>,
    mut control: Control,
) -> Received {
    let mut got = Received::default();
    let mut response = match client
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => res,
        Ok(res) => {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            let hint = if status.as_u16() == 429 {
                " (the server's realtime.max_per_principal must be at least --subscribers \
                 for the bench's credential)"
            } else {
                ""
            };
            let why = format!("HTTP {status}: {body}{hint}");
            let _ = ready.send(Err(why.clone())).await;
            got.failure = Some(why);
            return got;
        }
        Err(e) => {
            let why = format!("cannot open the stream: {e}");
            let _ = ready.send(Err(why.clone())).await;
            got.failure = Some(why);
            return got;
        }
    };
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    let mut is_ready = false;
    // Wanted ids this subscriber holds, counted once the run names them.
    let mut holding: Option<(Arc<HashSet<String>>, usize)> = None;
    loop {
        if let Some((want, have)) = &holding
            && *have >= want.len()
        {
            control.finished();
            return got;
        }
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            changed = control.want.changed() => {
                if changed.is_err() {
                    return got; // the run is gone
                }
                let want = control.want.borrow_and_update().clone();
                if let Some(want) = want {
                    let have = got.first.keys().filter(|id| want.contains(*id)).count();
                    holding = Some((want, have));
                }
                continue;
            }
            _ = control.stop.changed() => return got,
        };
        let at = Instant::now();
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                got.failure = Some("the server closed the stream".to_owned());
                break;
            }
            Err(e) => {
                got.failure = Some(format!("the stream failed: {e}"));
                break;
            }
        };
        parser.push(&bytes, &mut events);
        for SseEvent { event, data } in events.drain(..) {
            match event.as_str() {
                "created" => {
                    let Ok(change) = serde_json::from_str::<ChangeData>(&data) else {
                        got.failure = Some(format!("an event the bench cannot read: {data}"));
                        continue;
                    };
                    let id = change.record.id;
                    if got.first.contains_key(&id) {
                        got.duplicates += 1;
                        continue;
                    }
                    if let Some((want, have)) = &mut holding
                        && want.contains(&id)
                    {
                        *have += 1;
                    }
                    got.first.insert(id, at);
                }
                "ready" if !is_ready => {
                    is_ready = true;
                    let _ = ready.send(Ok(())).await;
                }
                "reset" | "end" => {
                    got.failure = Some(format!("event {event}: {data}"));
                }
                _ => {}
            }
        }
        if got.failure.is_some() {
            break;
        }
    }
    if !is_ready {
        let why = got.failure.clone().unwrap_or_default();
        let _ = ready.send(Err(why)).await;
    }
    control.finished();
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_missing_duplicate_and_foreign_events_apart() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let sent: HashMap<String, Instant> = [("a", ms(0)), ("b", ms(10)), ("c", ms(20))]
            .into_iter()
            .map(|(id, at)| (id.to_owned(), at))
            .collect();
        let got = |ids: &[(&str, u64)]| -> HashMap<String, Instant> {
            ids.iter()
                .map(|(id, at)| ((*id).to_owned(), ms(*at)))
                .collect()
        };
        let everything = Received {
            first: got(&[("a", 4), ("b", 12), ("c", 23)]),
            duplicates: 1,
            failure: None,
        };
        let cut = Received {
            first: got(&[("a", 5), ("b", 30), ("not-ours", 31)]),
            duplicates: 0,
            failure: Some("event end: {\"reason\":\"slow_consumer\"}".to_owned()),
        };
        let opts = FanoutOptions {
            subscribers: 2,
            write_rate: 3,
            duration: Duration::from_secs(1),
        };
        let writes = Figures {
            name: "fan_write",
            requests: 3,
            errors: 0,
            elapsed: Duration::from_secs(1),
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        };
        let f = tally(&opts, &sent, 3, writes, &[everything, cut]);
        assert_eq!(
            (f.expected, f.received, f.missing, f.duplicates),
            (6, 5, 1, 1)
        );
        assert_eq!(f.delivery.errors, 3, "missing + duplicate + one stream cut");
        assert_eq!(f.stream_failures.len(), 1);
        // From the first write sent to the last of our events received; the foreign one
        // neither counts nor stretches the window.
        assert_eq!(f.delivery.elapsed, Duration::from_millis(30));
        assert_eq!(f.delivery_max, Duration::from_millis(20));
    }
}

use super::recorder::{LATENCY_BOUNDS_MS, Recorder, Window};
use super::rules::{Board, Change, Thresholds};
use super::webhook::sign;
use plinth_core::Timestamp;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_micros(secs * 1_000_000).expect("a timestamp")
}

#[test]
fn the_recorder_counts_requests_errors_and_latency() {
    let r = Recorder::new(Duration::from_secs(60));
    for _ in 0..97 {
        r.record(200, ms(3));
    }
    r.record(500, ms(40));
    r.record(503, ms(40));
    r.record(404, ms(2000));
    let w = r.window();
    assert_eq!((w.requests, w.errors), (100, 2));
    assert_eq!(w.latency[0], 97);
    assert_eq!(w.latency[3], 2, "40 ms is in (25, 50]");
    assert_eq!(w.latency[8], 1, "2 s is in (1000, 2500]");
    assert!((w.error_rate() - 0.02).abs() < 1e-9);
}

#[test]
fn old_buckets_leave_the_window() {
    let r = Recorder::new(Duration::from_secs(60));
    r.record(500, ms(1));
    assert_eq!(r.window_ahead(Duration::from_secs(30)).requests, 1);
    assert_eq!(r.window_ahead(Duration::from_secs(62)).requests, 0);
}

#[test]
fn a_reused_slot_starts_from_zero() {
    // 61 slots of 1 s: a request 61 s later lands in the slot of the first.
    let r = Recorder::new(Duration::from_secs(60));
    r.record(500, ms(1));
    let later = Duration::from_secs(61);
    r.record_ahead(later, 200, ms(1));
    let w = r.window_ahead(later);
    assert_eq!((w.requests, w.errors), (1, 0));
}

#[test]
fn p99_is_estimated_within_its_bucket() {
    let mut w = Window::default();
    assert_eq!(w.p99(), None);
    w.latency[0] = 99;
    w.latency[8] = 1;
    w.requests = 100;
    // The 99th of 100 answers is the last of the fast bucket (0, 5].
    assert_eq!(w.p99(), Some(5.0));
    w.latency[0] = 98;
    w.latency[8] = 2;
    // Now it falls in (1000, 2500], halfway through its two answers.
    let p = w.p99().expect("a p99");
    assert!(p > 1000.0 && p <= 2500.0, "{p}");
    let mut slowest = Window::default();
    slowest.latency[LATENCY_BOUNDS_MS.len()] = 5;
    assert_eq!(slowest.p99(), Some(60_000.0));
}

fn window(requests: u64, errors: u64, slow: u64) -> Window {
    let mut w = Window {
        requests,
        errors,
        ..Window::default()
    };
    w.latency[0] = requests - slow;
    w.latency[9] = slow;
    w
}

#[test]
fn rules_fire_and_resolve() {
    let t = Thresholds::default();
    let mut board = Board::new(2);
    let span = Duration::from_secs(300);
    // 2 % errors, 2 % slower than 2.5 s.
    let changes = board.evaluate(&window(100, 2, 2), &t, span, at(10));
    let names: Vec<_> = changes
        .iter()
        .map(|c| match c {
            Change::Fired(a) => a.name,
            Change::Resolved(_) => panic!("nothing was firing"),
        })
        .collect();
    assert_eq!(names, ["HighErrorRate", "SlowResponse"]);
    // Still breaching: no change, the value follows.
    assert!(
        board
            .evaluate(&window(100, 5, 2), &t, span, at(15))
            .is_empty()
    );
    assert!((board.alerts()[0].value - 0.05).abs() < 1e-9);
    // Healthy again.
    let changes = board.evaluate(&window(100, 0, 0), &t, span, at(20));
    assert_eq!(changes.len(), 2);
    let alerts = board.alerts();
    assert!(alerts.iter().all(|a| a.state == "resolved"));
    assert_eq!(
        alerts[0].until.as_deref(),
        Some(at(20).to_string().as_str())
    );
    assert_eq!(alerts[0].since, at(10).to_string());
}

#[test]
fn nothing_fires_under_the_minimum_of_requests() {
    let t = Thresholds::default();
    let mut board = Board::new(2);
    let span = Duration::from_secs(300);
    // One error, one slow answer among three requests.
    assert!(board.evaluate(&window(3, 1, 1), &t, span, at(1)).is_empty());
    assert!(
        board
            .evaluate(&window(19, 1, 1), &t, span, at(2))
            .is_empty()
    );
    assert_eq!(board.evaluate(&window(20, 1, 1), &t, span, at(3)).len(), 2);
    // Exactly at the threshold is not above it.
    let mut board = Board::new(2);
    assert!(
        board
            .evaluate(&window(100, 1, 1), &t, span, at(4))
            .is_empty()
    );
}

#[test]
fn only_the_last_resolved_are_kept() {
    let t = Thresholds::default();
    let mut board = Board::new(2);
    let span = Duration::from_secs(300);
    for i in 0..5 {
        board.evaluate(&window(100, 50, 0), &t, span, at(i * 2));
        board.evaluate(&window(100, 0, 0), &t, span, at(i * 2 + 1));
    }
    let alerts = board.alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].until.as_deref(), Some(at(9).to_string().as_str()));
}

#[test]
fn the_signature_is_hmac_sha256_of_time_and_body() {
    // Expected value from Python's hmac module:
    // hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert_eq!(
        sign(b"Jefe", 1_700_000_000, br#"{"a":1}"#),
        "t=1700000000,v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
    );
}

/// The chart's recorder: 10 minutes in 10 s buckets.
fn chart() -> Recorder {
    Recorder::new(Duration::from_secs(600))
}

fn since_epoch(t: std::time::SystemTime) -> Duration {
    t.duration_since(std::time::UNIX_EPOCH).expect("after 1970")
}

#[test]
fn a_series_is_sixty_round_buckets_oldest_first_and_empty_ones_count_zero() {
    let r = chart();
    assert_eq!(r.bucket(), Duration::from_secs(10));
    let before = std::time::SystemTime::now();
    let points = r.series();
    let now = std::time::SystemTime::now();
    assert_eq!(points.len(), 60);
    for pair in points.windows(2) {
        assert_eq!(
            pair[1].at.duration_since(pair[0].at).ok(),
            Some(Duration::from_secs(10))
        );
    }
    let last = points.last().expect("a point");
    assert!(last.at <= now && last.at + ms(10_000) > before, "{last:?}");
    for p in &points {
        assert_eq!(since_epoch(p.at).as_nanos() % 10_000_000_000, 0, "{p:?}");
        assert_eq!((p.counts.requests, p.counts.errors), (0, 0));
        assert_eq!(p.counts.p99(), None);
    }
}

#[test]
fn a_series_counts_each_bucket_apart() {
    let r = chart();
    let recorded = std::time::SystemTime::now();
    let t = std::time::Instant::now();
    r.record_at(t, 200, ms(3));
    r.record_at(t, 500, ms(40));
    r.record_at(t, 404, ms(3));
    let now = r.series_at(t);
    let last = &now[59].counts;
    assert_eq!((last.requests, last.errors), (3, 1));
    assert!(
        last.p99().is_some_and(|p| p > 25.0 && p <= 50.0),
        "{last:?}"
    );
    assert!(now[..59].iter().all(|p| p.counts.requests == 0));

    // Half a minute on, with one more answer: two buckets hold something, the older where
    // it was recorded, and the window's bucket count is the same.
    let later = t + Duration::from_secs(30);
    r.record_at(later, 503, ms(1));
    let then = r.series_at(later);
    assert_eq!(then.len(), 60);
    let busy: Vec<_> = then.iter().filter(|p| p.counts.requests > 0).collect();
    assert_eq!(busy.len(), 2, "{busy:?}");
    assert!(busy[0].at <= recorded + ms(100) && recorded < busy[0].at + ms(10_000));
    assert_eq!((busy[0].counts.requests, busy[0].counts.errors), (3, 1));
    assert_eq!((busy[1].counts.requests, busy[1].counts.errors), (1, 1));
    assert_eq!(busy[1].at, then[59].at);
    assert_eq!(
        busy[1].at.duration_since(busy[0].at).ok(),
        Some(Duration::from_secs(30))
    );

    // 610 s on (the first answers' slot reused), they have left and the new bucket starts
    // from zero; the answer of half a minute on is still in the window.
    let gone = t + Duration::from_secs(610);
    r.record_at(gone, 200, ms(1));
    let after = r.series_at(gone);
    let counted: u64 = after.iter().map(|p| p.counts.requests).sum();
    assert_eq!(counted, 2);
    assert_eq!((after[59].counts.requests, after[59].counts.errors), (1, 0));
}

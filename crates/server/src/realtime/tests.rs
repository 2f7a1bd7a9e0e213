use super::frame::{self, EndReason, ResetReason};
use super::stream::Start;
use plinth_store::ChangeWindow;

fn window(pruned_through: i64, head: i64) -> ChangeWindow {
    ChangeWindow {
        pruned_through,
        head,
    }
}

#[test]
fn a_fresh_stream_starts_at_the_head() {
    let start = Start::decide(None, window(10, 50));
    assert_eq!((start.from, start.head, start.reset), (50, 50, None));
}

#[test]
fn a_resume_within_the_window_replays_from_there() {
    for after in [10, 11, 49, 50] {
        let start = Start::decide(Some(after), window(10, 50));
        assert_eq!((start.from, start.head, start.reset), (after, 50, None));
    }
    assert_eq!(Start::decide(Some(0), window(0, 0)).reset, None);
}

#[test]
fn a_resume_outside_the_window_is_reset_to_the_head() {
    let expired = Start::decide(Some(9), window(10, 50));
    assert_eq!(
        (expired.from, expired.reset),
        (50, Some(ResetReason::Expired))
    );
    let unknown = Start::decide(Some(51), window(10, 50));
    assert_eq!(
        (unknown.from, unknown.reset),
        (50, Some(ResetReason::Unknown))
    );
}

#[test]
fn control_frames() {
    assert_eq!(
        &frame::ready(42)[..],
        b"id: 42\nevent: ready\ndata: {\"position\":42}\n\n"
    );
    assert_eq!(
        &frame::reset(ResetReason::Expired, 7)[..],
        b"id: 7\nevent: reset\ndata: {\"reason\":\"expired\",\"position\":7}\n\n"
    );
    let names: Vec<String> = EndReason::ALL
        .iter()
        .map(|r| String::from_utf8_lossy(&frame::end(*r, None)).into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "event: end\ndata: {\"reason\":\"slow_consumer\"}\n\n",
            "event: end\ndata: {\"reason\":\"credential_revoked\"}\n\n",
            "event: end\ndata: {\"reason\":\"credential_expired\"}\n\n",
            "event: end\ndata: {\"reason\":\"shutdown\"}\n\n",
        ]
    );
}

#[test]
fn an_end_names_the_position_reached_when_there_is_one() {
    assert_eq!(
        &frame::end(EndReason::SlowConsumer, Some(42))[..],
        b"id: 42\nevent: end\ndata: {\"reason\":\"slow_consumer\"}\n\n"
    );
}

#[tokio::test]
async fn a_hub_not_started_has_no_position_to_open_streams_at() {
    let hub = super::hub::Hub::new(4);
    let waited = std::time::Instant::now();
    assert_eq!(
        hub.started(std::time::Duration::from_millis(50)).await,
        None
    );
    assert!(waited.elapsed() >= std::time::Duration::from_millis(50));
}

//! A small Server-Sent Events client over `reqwest`, for the change-feed tests: opens a
//! stream, parses its frames, and waits for events with a bound, so a missing event fails
//! the test instead of hanging it.

use super::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// How long a test waits for an event before calling the stream stuck.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// One frame of a stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// `id:`, when given.
    pub(crate) id: Option<String>,
    /// `event:`; `heartbeat` for a comment line.
    pub(crate) event: String,
    /// `data:` as JSON (`Null` for a comment).
    pub(crate) data: Value,
}

impl Event {
    /// The `id` as a number.
    pub(crate) fn seq(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an event without a numeric id: {self:?}"))
    }
}

/// An open stream.
#[derive(Debug)]
pub(crate) struct Sse {
    res: reqwest::Response,
    buf: Vec<u8>,
    /// Every byte received, for tests that look at the raw text.
    pub(crate) raw: Vec<u8>,
}

impl Sse {
    /// The next frame, or `None` once the server ended the stream; panics after `within`.
    pub(crate) async fn next_within(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Some(parse(&block[..end]));
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no event within {within:?}; received so far: {}",
                        String::from_utf8_lossy(&self.raw)
                    )
                });
            match chunk {
                Ok(Some(bytes)) => {
                    self.raw.extend_from_slice(&bytes);
                    self.buf.extend_from_slice(&bytes);
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next frame that is not a heartbeat; panics when the stream ends first.
    pub(crate) async fn next(&mut self) -> Event {
        loop {
            let event = self.next_within(WAIT).await.expect("the stream ended");
            if event.event != "heartbeat" {
                return event;
            }
        }
    }

    /// The frames before `ready` (a replay, a reset), and the position `ready` gave.
    pub(crate) async fn until_ready(&mut self) -> (Vec<Event>, i64) {
        let mut before = Vec::new();
        loop {
            let event = self.next().await;
            if event.event == "ready" {
                let position = event.data["position"].as_i64().expect("a position");
                assert_eq!(event.seq(), position, "ready's id is its position");
                return (before, position);
            }
            before.push(event);
        }
    }

    /// The next `n` change events (failing on a control event among them).
    pub(crate) async fn changes(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let event = self.next().await;
            assert!(
                ["created", "updated", "deleted", "restored", "purged"]
                    .contains(&event.event.as_str()),
                "not a change: {event:?}"
            );
            assert_eq!(event.data["type"].as_str(), Some(event.event.as_str()));
            assert_eq!(event.data["seq"].as_i64(), Some(event.seq()));
            events.push(event);
        }
        events
    }
}

fn parse(block: &[u8]) -> Event {
    let text = String::from_utf8_lossy(block);
    let mut event = Event {
        id: None,
        event: "message".to_owned(),
        data: Value::Null,
    };
    let mut data = String::new();
    for line in text.lines() {
        if line.starts_with(':') {
            event.event = "heartbeat".to_owned();
        } else if let Some(v) = line.strip_prefix("id: ") {
            event.id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("event: ") {
            v.clone_into(&mut event.event);
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push_str(v);
        } else {
            panic!("an unexpected line in a stream: {line:?}");
        }
    }
    if !data.is_empty() {
        event.data = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("data that is not JSON ({e}): {data}"));
    }
    event
}

impl TestApp {
    /// Opens the stream at `path` with `credential` (`None`: a guest), resuming after
    /// `last_event_id` when given; checks the answer is a stream.
    pub(crate) async fn subscribe_as(
        &self,
        path: &str,
        credential: Option<&str>,
        last_event_id: Option<i64>,
    ) -> Sse {
        let mut req = self.request_as(Method::GET, path, credential);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.expect("the server answers");
        assert_eq!(res.status(), StatusCode::OK, "{path}: {res:?}");
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
            "{path}"
        );
        Sse {
            res,
            buf: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// [`Self::subscribe_as`] the admin, waiting for `ready`; its position.
    pub(crate) async fn subscribe(&self, path: &str) -> (Sse, i64) {
        let mut sse = self.subscribe_as(path, Some(&self.admin_token), None).await;
        let (before, position) = sse.until_ready().await;
        assert!(before.is_empty(), "events before ready: {before:?}");
        (sse, position)
    }
}

//! One live subscriber on the change feed, held open while the workloads run (the
//! `--all-features` load): it counts the `created` events it receives and says why the
//! stream ended early, if it did.

use crate::BenchError;
use crate::sse::{SseEvent, SseParser};
use std::fmt;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long the stream may take to open and say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the subscriber saw.
#[derive(Debug, Clone, Default)]
pub struct LiveFigures {
    /// `created` events received.
    pub created: u64,
    /// Why the stream ended before the run did, if it did.
    pub failure: Option<String>,
}

impl fmt::Display for LiveFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => writeln!(
                f,
                "live subscriber: held for the whole run, {} created events received",
                self.created
            ),
            Some(why) => writeln!(
                f,
                "live subscriber: {} created events received, then the stream ended: {why}",
                self.created
            ),
        }
    }
}

/// An open subscriber; [`Live::close`] ends it and returns its figures.
#[derive(Debug)]
pub struct Live {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<LiveFigures>,
}

impl Live {
    /// Opens `GET {base}/api/v1/resource/events` with `credential` and waits for `ready`.
    ///
    /// # Errors
    /// The stream did not open or did not say `ready` in time.
    pub async fn open(base: &str, credential: Option<&str>) -> Result<Self, BenchError> {
        let mut req = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/resource/events",
                base.trim_end_matches('/')
            ))
            .header("accept", "text/event-stream");
        if let Some(c) = credential {
            req = req.bearer_auth(c);
        }
        let response = req
            .send()
            .await
            .map_err(|e| BenchError::Server(format!("cannot open the live subscriber: {e}")))?;
        if !response.status().is_success() {
            return Err(BenchError::Server(format!(
                "the live subscriber was refused: HTTP {}",
                response.status()
            )));
        }
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(follow(response, ready_tx, stopped));
        match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
            Ok(Ok(())) => Ok(Self { stop, task }),
            _ => {
                let _ = stop.send(true);
                let why = task.await.ok().and_then(|f| f.failure);
                Err(BenchError::Server(format!(
                    "the live subscriber did not become ready: {}",
                    why.unwrap_or_else(|| "no `ready` event in time".to_owned())
                )))
            }
        }
    }

    /// Ends the stream and returns what it received.
    pub async fn close(self) -> LiveFigures {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_else(|e| LiveFigures {
            created: 0,
            failure: Some(format!("the subscriber task failed: {e}")),
        })
    }
}

async fn follow(
    mut response: reqwest::Response,
    ready: oneshot::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) -> LiveFigures {
    let mut figures = LiveFigures::default();
    let mut ready = Some(ready);
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            _ = stopped.changed() => return figures,
        };
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                figures.failure = Some("the server closed the stream".to_owned());
                return figures;
            }
            Err(e) => {
                figures.failure = Some(format!("the stream failed: {e}"));
                return figures;
            }
        };
        parser.push(&bytes, &mut events);
        for SseEvent { event, data } in events.drain(..) {
            match event.as_str() {
                "created" => figures.created += 1,
                "ready" => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                "reset" | "end" => {
                    figures.failure = Some(format!("event {event}: {data}"));
                    return figures;
                }
                _ => {}
            }
        }
    }
}

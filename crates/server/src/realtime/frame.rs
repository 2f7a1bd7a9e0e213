//! The text of the stream: Server-Sent Events, one frame per event, each ending with a
//! blank line. Change events carry the change's `seq` as their `id`, so a reconnecting
//! browser sends it back as `Last-Event-ID`; control events carry no record.

use crate::routes::RecordJson;
use axum::body::Bytes;
use plinth_core::{FieldAccess, ModelDef};
use plinth_store::Change;
use serde::Serialize;

/// A comment line that keeps a quiet stream (and the proxies on its way) alive.
pub(crate) const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Why the server ends a stream (`event: end`); the client may reconnect with
/// `Last-Event-ID` and resume where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// More than `realtime.buffer` changes behind the newest.
    SlowConsumer,
    /// The credential the stream was opened with was revoked.
    CredentialRevoked,
    /// The credential the stream was opened with expired.
    CredentialExpired,
    /// The server is shutting down.
    Shutdown,
}

impl EndReason {
    /// Every reason, for the metrics' label values.
    pub(crate) const ALL: [Self; 4] = [
        Self::SlowConsumer,
        Self::CredentialRevoked,
        Self::CredentialExpired,
        Self::Shutdown,
    ];

    /// The name clients and metrics see.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SlowConsumer => "slow_consumer",
            Self::CredentialRevoked => "credential_revoked",
            Self::CredentialExpired => "credential_expired",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Why a resume cannot be served (`event: reset`): the client must list again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetReason {
    /// The position asked for is older than the change log's window.
    Expired,
    /// The position asked for is newer than anything the database holds.
    Unknown,
}

impl ResetReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }
}

/// `event: end`, then the server closes the stream; with `id: reached` when the stream
/// delivered everything up to `reached`, so a client resuming from it moves on.
pub(crate) fn end(reason: EndReason, reached: Option<i64>) -> Bytes {
    let id = reached.map(|p| format!("id: {p}\n")).unwrap_or_default();
    Bytes::from(format!(
        "{id}event: end\ndata: {{\"reason\":\"{}\"}}\n\n",
        reason.as_str()
    ))
}

/// `event: ready`: the stream is live at `position`.
pub(crate) fn ready(position: i64) -> Bytes {
    Bytes::from(format!(
        "id: {position}\nevent: ready\ndata: {{\"position\":{position}}}\n\n"
    ))
}

/// `event: reset`: the stream goes on live from `head`.
pub(crate) fn reset(reason: ResetReason, head: i64) -> Bytes {
    Bytes::from(format!(
        "id: {head}\nevent: reset\ndata: {{\"reason\":\"{}\",\"position\":{head}}}\n\n",
        reason.as_str()
    ))
}

/// A change event's data.
#[derive(Serialize)]
struct Data<'a> {
    seq: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    model: &'a str,
    at: String,
    record: RecordJson<'a>,
}

/// A change event, its record as the read endpoint shows it to a caller with `access`.
pub(crate) fn change(model: &ModelDef, change: &Change, access: FieldAccess) -> Bytes {
    let kind = change.kind.as_str();
    let data = Data {
        seq: change.seq,
        kind,
        model: model.name().as_str(),
        at: change.at.to_string(),
        record: RecordJson(model, &change.record, access),
    };
    // Serialising a record cannot fail: every map key is a string.
    let json = serde_json::to_string(&data).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: {kind}\ndata: {json}\n\n",
        change.seq
    ))
}

//! W3C Trace Context (`traceparent`): the trace a request belongs to, and this server's span
//! in it.
//!
//! A valid incoming `traceparent` (version `00`, a 32-hex trace id and a 16-hex parent id,
//! neither all zeros, lowercase hex, two hex flag digits) is continued: its trace id is kept
//! and a new span id is made for this server. Anything else (absent, too long, bad hex, another
//! version, text smuggled after it) is dropped whole and a new trace is started, so nothing a
//! client sends is ever echoed. The answer carries `traceparent` with the trace id and this
//! server's span id, so a client can find the server's log lines of its call.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::fmt::Write as _;

/// The header, read and written.
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const LEN: usize = 55;

/// The only bit of the flags Plinth knows: the caller may record this trace.
const SAMPLED: u8 = 0x01;

/// A request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    /// The trace: the caller's, or a new one.
    pub(crate) trace_id: [u8; 16],
    /// The caller's span, when it sent a valid `traceparent`.
    pub(crate) parent_id: Option<[u8; 8]>,
    /// This server's span for the request.
    pub(crate) span_id: [u8; 8],
    /// The caller's `sampled` flag (other bits dropped); `00` for a new trace.
    pub(crate) flags: u8,
}

impl TraceContext {
    /// Continues the trace of a valid `traceparent` in `headers`, or starts a new one. More
    /// than one `traceparent` header is invalid too (the trace would be ambiguous).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        let parsed = match (values.next(), values.next()) {
            (Some(v), None) => parse(v.as_bytes()),
            _ => None,
        };
        let mut random = fresh_ids();
        match parsed {
            Some(parent) => {
                random.trace_id = parent.trace_id;
                random.parent_id = parent.parent_id;
                random.flags = parent.flags;
                random
            }
            None => random,
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub(crate) fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// This server's span id as 16 lowercase hex digits.
    pub(crate) fn span_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The `traceparent` of this server's span: the trace id, this span and the flags.
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let text = format!(
            "00-{}-{}-{:02x}",
            self.trace_hex(),
            self.span_hex(),
            self.flags
        );
        HeaderValue::from_str(&text).ok()
    }
}

/// A new trace: random trace and span ids (never all zeros), flags `00`.
fn fresh_ids() -> TraceContext {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() || bytes.iter().all(|b| *b == 0) {
        // Never seen on a working system; a UUIDv7 is unique enough for a trace.
        let v7 = uuid::Uuid::now_v7();
        bytes[..16].copy_from_slice(v7.as_bytes());
        bytes[16..].copy_from_slice(&v7.as_bytes()[8..]);
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    trace_id.copy_from_slice(&bytes[..16]);
    span_id.copy_from_slice(&bytes[16..]);
    // A zero id is invalid in the standard; one nonzero byte makes it valid.
    trace_id[15] |= u8::from(trace_id.iter().all(|b| *b == 0));
    span_id[7] |= u8::from(span_id.iter().all(|b| *b == 0));
    TraceContext {
        trace_id,
        parent_id: None,
        span_id,
        flags: 0,
    }
}

/// Parses a version-`00` `traceparent`; `None` for anything not exactly that.
pub(crate) fn parse(value: &[u8]) -> Option<TraceContext> {
    if value.len() != LEN || !value.starts_with(b"00-") || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut parent = [0u8; 8];
    let mut flags = [0u8; 1];
    unhex(&value[3..35], &mut trace_id)?;
    unhex(&value[36..52], &mut parent)?;
    unhex(&value[53..55], &mut flags)?;
    if trace_id.iter().all(|b| *b == 0) || parent.iter().all(|b| *b == 0) {
        return None;
    }
    Some(TraceContext {
        trace_id,
        parent_id: Some(parent),
        span_id: [0; 8],
        flags: flags[0] & SAMPLED,
    })
}

/// Lowercase hex only, as the standard requires.
fn unhex(text: &[u8], out: &mut [u8]) -> Option<()> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                &TRACEPARENT,
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        h
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_span_of_our_own() {
        let parsed = parse(VALID.as_bytes()).expect("valid");
        assert_eq!(hex(&parsed.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            parsed.parent_id.map(|p| hex(&p)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(parsed.flags, 1);

        let ctx = TraceContext::from_headers(&headers(&[VALID]));
        assert_eq!(ctx.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_hex(), "00f067aa0ba902b7", "a span of its own");
        let answer = ctx.header_value().expect("header");
        let answer = answer.to_str().expect("ascii");
        assert_eq!(
            answer,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", ctx.span_hex())
        );
        assert!(
            parse(answer.as_bytes()).is_some(),
            "the answer is valid itself"
        );
        // Unknown flag bits are dropped.
        let flags = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff";
        assert_eq!(parse(flags.as_bytes()).map(|c| c.flags), Some(1));
    }

    #[test]
    fn anything_else_starts_a_new_trace() {
        let long = format!("{VALID}-extra");
        let hostile = [
            "",
            "00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            &long,
            "00-4bf92f3577b34da6a3ce929d0e0e47\"}-00f067aa0ba902b7-01",
        ];
        for value in hostile {
            assert_eq!(parse(value.as_bytes()), None, "{value:?} was accepted");
            let ctx = TraceContext::from_headers(&headers(&[value]));
            assert_eq!(ctx.parent_id, None, "{value:?}");
            assert_eq!(ctx.flags, 0, "{value:?}");
            assert_ne!(
                ctx.trace_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{value:?}"
            );
        }
        let twice = TraceContext::from_headers(&headers(&[VALID, VALID]));
        assert_eq!(
            twice.parent_id, None,
            "two traceparent headers are ambiguous"
        );
    }

    #[test]
    fn new_traces_are_distinct_and_well_formed() {
        let a = TraceContext::from_headers(&HeaderMap::new());
        let b = TraceContext::from_headers(&HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
        for ctx in [a, b] {
            assert_eq!(ctx.trace_hex().len(), 32);
            assert_eq!(ctx.span_hex().len(), 16);
            let value = ctx.header_value().expect("header");
            let parsed = parse(value.as_bytes()).expect("a valid traceparent");
            assert_eq!(parsed.trace_id, ctx.trace_id);
            assert_eq!(parsed.parent_id, Some(ctx.span_id));
            assert_eq!(parsed.flags, 0);
        }
    }
}

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
use std::cell::Cell;

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
        let span_id = nonzero(random_u64()).to_be_bytes();
        match parsed {
            Some(parent) => TraceContext { span_id, ..parent },
            None => {
                let high = random_u64().to_be_bytes();
                let low = nonzero(random_u64()).to_be_bytes();
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&high);
                trace_id[8..].copy_from_slice(&low);
                TraceContext {
                    trace_id,
                    parent_id: None,
                    span_id,
                    flags: 0,
                }
            }
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub(crate) fn trace_hex(&self) -> HexId<32> {
        HexId::of(&self.trace_id)
    }

    /// This server's span id as 16 lowercase hex digits.
    pub(crate) fn span_hex(&self) -> HexId<16> {
        HexId::of(&self.span_id)
    }

    /// The `traceparent` of this server's span: the trace id, this span and the flags.
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let mut text = [b'-'; LEN];
        text[..2].copy_from_slice(b"00");
        text[3..35].copy_from_slice(&self.trace_hex().0);
        text[36..52].copy_from_slice(&self.span_hex().0);
        text[53..].copy_from_slice(&HexId::<2>::of(&[self.flags]).0);
        HeaderValue::from_bytes(&text).ok()
    }
}

/// An id as lowercase hex digits, without allocating (the request span holds two).
#[derive(Clone, Copy)]
pub(crate) struct HexId<const N: usize>([u8; N]);

impl<const N: usize> HexId<N> {
    fn of(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; N];
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Display for HexId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> std::fmt::Debug for HexId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A zero id is invalid in the standard; a zero draw becomes 1.
fn nonzero(n: u64) -> u64 {
    n.max(1)
}

thread_local! {
    /// SplitMix64 state, seeded once per thread from the system's randomness. Trace and
    /// span ids must be unique, not secret: a draw costs nanoseconds where `getrandom`
    /// costs a system call per request.
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    // Never seen on a working system; a UUIDv7's random bits will do for ids.
    let v7 = uuid::Uuid::now_v7();
    let (high, low) = v7.as_u64_pair();
    high ^ low
}

pub(crate) fn random_u64() -> u64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex the slow, obvious way.
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

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
        assert_eq!(ctx.trace_hex().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            ctx.span_hex().as_str(),
            "00f067aa0ba902b7",
            "a span of its own"
        );
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
                ctx.trace_hex().as_str(),
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
            assert_eq!(ctx.trace_hex().as_str().len(), 32);
            assert_eq!(ctx.span_hex().as_str().len(), 16);
            assert_eq!(ctx.trace_hex().as_str(), hex(&ctx.trace_id));
            let value = ctx.header_value().expect("header");
            let parsed = parse(value.as_bytes()).expect("a valid traceparent");
            assert_eq!(parsed.trace_id, ctx.trace_id);
            assert_eq!(parsed.parent_id, Some(ctx.span_id));
            assert_eq!(parsed.flags, 0);
        }
    }
}

//! Compression of large answers, negotiated: a client that sends `Accept-Encoding: gzip`
//! gets a gzip body (and `Content-Encoding: gzip`, `Vary: accept-encoding`) when the answer
//! is at least `compression_min_bytes` long, is JSON or text, and is neither a record with
//! its entity tag nor marked `no-store`:
//!
//! - an `ETag` names the exact bytes of one representation (`If-Match` and `If-None-Match`
//!   compare it strongly), so an answer carrying one is sent as it is;
//! - `no-store` marks answers holding tokens, keys or account data: compressing a secret
//!   beside text an attacker chose lets the compressed length betray it (BREACH), so those
//!   are never compressed;
//! - the change feed's event stream and images are not (`text/event-stream` must flush each
//!   event; images are compressed already).
//!
//! The fastest level. It costs the server more than rendering a list (mostly setting up
//! the compressor for each answer) and saves the network nine bytes in ten; measured in
//! docs/PERFORMANCE.md. Shorter answers, and clients that do not ask, get the body as it is.

use axum::http::{HeaderMap, Response, header};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};

/// The layer; with `min_bytes` 0 it compresses nothing (the body's type stays the same, so
/// the stack around it does not change with the setting).
pub(crate) fn layer(min_bytes: u16) -> CompressionLayer<Compressible> {
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(Compressible(
            (min_bytes > 0).then(|| SizeAbove::new(min_bytes - 1)),
        ))
}

/// Which answers may be compressed (see the module): none without a size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compressible(Option<SizeAbove>);

impl Predicate for Compressible {
    fn should_compress<B: axum::body::HttpBody>(&self, res: &Response<B>) -> bool {
        self.0
            .is_some_and(|size| eligible(res.headers()) && size.should_compress(res))
    }
}

/// Whether headers allow compressing the body they describe.
fn eligible(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::ETAG)
        || headers
            .get(header::CACHE_CONTROL)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"no-store"))
    {
        return false;
    }
    let Some(kind) = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) else {
        return false;
    };
    let starts = |prefix: &[u8]| {
        kind.len() >= prefix.len() && kind[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    (starts(b"application/json")
        || starts(b"application/problem+json")
        || starts(b"application/javascript")
        || starts(b"image/svg+xml")
        || starts(b"text/"))
        && !starts(b"text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn json_text_and_scripts_are_eligible_unless_tagged_private_or_streamed() {
        use header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
        for kind in [
            "application/json",
            "application/json; charset=utf-8",
            "text/html; charset=utf-8",
            "text/css",
            "application/javascript",
            "image/svg+xml",
        ] {
            assert!(eligible(&headers(&[(CONTENT_TYPE, kind)])), "{kind}");
        }
        for (why, h) in [
            ("no type", headers(&[])),
            (
                "an event stream",
                headers(&[(CONTENT_TYPE, "text/event-stream")]),
            ),
            ("an image", headers(&[(CONTENT_TYPE, "image/png")])),
            (
                "a download",
                headers(&[(CONTENT_TYPE, "application/octet-stream")]),
            ),
            (
                "an entity tag",
                headers(&[(CONTENT_TYPE, "application/json"), (ETAG, "\"3\"")]),
            ),
            (
                "no-store",
                headers(&[
                    (CONTENT_TYPE, "application/json"),
                    (CACHE_CONTROL, "no-store"),
                ]),
            ),
        ] {
            assert!(!eligible(&h), "{why}");
        }
    }
}

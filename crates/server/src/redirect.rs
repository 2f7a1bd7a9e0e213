//! The plain-HTTP port that sends every request to HTTPS: `308 Permanent Redirect` to
//! `https://<host>[:port]<path and query>`, the host taken from the request (its `Host`
//! header, or the authority of an absolute-form target) and checked to be a DNS name or an
//! IP address, the port the HTTPS listener's. Anything else is `400 INVALID_INPUT`, so no
//! request can make it point at another scheme, a user-info trick or a header injection.
//! It serves through the same accept loop and middleware as the main listener (timeouts,
//! connection cap, head limits, request ids, the access log), and reads no body.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::ErrorCode;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest host name accepted (RFC 1035's 253 characters, plus IPv6's brackets).
const MAX_HOST: usize = 255;

/// The answer to `req` on the redirect port: 308 to the same path on HTTPS at `https_port`.
pub(crate) fn answer(req: &Request, https_port: u16) -> Response {
    match target(req, https_port) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn target(req: &Request, https_port: u16) -> Result<HeaderValue, ApiError> {
    // An absolute-form target's authority wins over `Host` (RFC 9112 §3.2.2).
    let authority = match req.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    };
    let host = authority
        .and_then(host_of)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "the request names no valid host"))?;
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "the request target is no path"))?;
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    HeaderValue::from_str(&location)
        .map_err(|_| ApiError::new(ErrorCode::InvalidInput, "the request target is no path"))
}

/// The host of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`), lowercased, if it
/// is a DNS name, an IPv4 address or a bracketed IPv6 address; `None` for anything else
/// (user info, an empty or bad port, other characters).
fn host_of(authority: &str) -> Option<String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (&authority[..v6.len() + 2], port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return None;
    }
    let valid = host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host);
    (valid && host.len() <= MAX_HOST).then(|| host.to_ascii_lowercase())
}

/// Letters, digits and hyphens in dot-separated labels of 1 to 63 characters, no label
/// starting or ending with a hyphen; one trailing dot allowed.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts_are_names_or_addresses() {
        for (authority, host) in [
            ("example.com", "example.com"),
            ("Example.COM:80", "example.com"),
            ("localhost", "localhost"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]", "[::1]"),
            ("[::1]:80", "[::1]"),
            ("a-b.c.", "a-b.c."),
        ] {
            assert_eq!(host_of(authority).as_deref(), Some(host), "{authority}");
        }
        for bad in [
            "",
            "user@example.com",
            "example.com:",
            "example.com:99999",
            "example.com:80x",
            "exa mple.com",
            "example.com/evil",
            "-example.com",
            "a..b",
            "[::1",
            "[nope]",
            "[::1]x",
            "ex\u{e4}mple.com",
            "evil.com\\@example.com",
            "javascript:alert(1)",
        ] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
        assert_eq!(host_of(&"a".repeat(64)), None);
    }
}

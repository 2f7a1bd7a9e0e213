//! Who may read `/metrics`: a loopback peer without a credential (a Prometheus beside the
//! process), anyone else only with the metrics token.

use crate::auth::TrustedProxies;
use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use plinth_core::ErrorCode;
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;

/// How `/metrics` is served.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    /// Whether `/metrics` is served at all (404 when not, and nothing is recorded).
    pub enabled: bool,
    /// The bearer token that opens `/metrics` to peers other than loopback; none: loopback
    /// only.
    pub token: Option<MetricsToken>,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self {
            enabled: true,
            token: None,
        }
    }
}

/// The metrics token, kept only as its SHA-256 digest; never shown.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// The token as configured.
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token (digests compared, so the time says nothing of
    /// the token).
    fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(****)")
    }
}

/// Whether a scrape from `peer` (the TCP peer, never a forwarded address) with `headers`
/// may read the metrics. A credential, when sent, must be the token, from any peer. With
/// none, a loopback peer may read, unless the request came through a proxy (it carries
/// `Forwarded` or `X-Forwarded-For`, or the peer is one of the `trusted` proxies): a proxy
/// on the same host would otherwise open the metrics to the world.
pub(crate) fn decide(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    token: Option<&MetricsToken>,
    trusted: &TrustedProxies,
) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "invalid or missing metrics token",
        )
    };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        return match token {
            Some(t) if t.matches(presented) => Ok(()),
            _ => Err(refused()),
        };
    }
    let proxied =
        headers.contains_key(header::FORWARDED) || headers.contains_key("x-forwarded-for");
    let loopback = peer.is_some_and(|p| {
        let ip = p.ip().to_canonical();
        ip.is_loopback() && !trusted.trusts(ip)
    });
    match (loopback && !proxied, token) {
        (true, _) => Ok(()),
        (false, Some(_)) => Err(refused()),
        (false, None) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "metrics are served to loopback peers only (no metrics token is configured)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("an address"), 40000))
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("a header value"));
        h
    }

    fn none_trusted() -> TrustedProxies {
        TrustedProxies::default()
    }

    fn status(r: Result<(), ApiError>) -> Option<StatusCode> {
        r.err().map(|e| e.into_response().status())
    }

    #[test]
    fn loopback_peers_read_without_a_credential() {
        let none = HeaderMap::new();
        for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                status(decide(peer(ip), &none, None, &none_trusted())),
                None,
                "{ip}"
            );
        }
    }

    #[test]
    fn other_peers_need_the_token() {
        let token = MetricsToken::new("a-long-enough-metrics-token-0123456789");
        let none = HeaderMap::new();
        let remote = peer("203.0.113.7");
        // No token configured: refused outright.
        assert_eq!(
            status(decide(remote, &none, None, &none_trusted())),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(decide(None, &none, None, &none_trusted())),
            Some(StatusCode::FORBIDDEN)
        );
        // A token configured, none sent.
        assert_eq!(
            status(decide(remote, &none, Some(&token), &none_trusted())),
            Some(StatusCode::UNAUTHORIZED)
        );
        // A wrong token, a token of another scheme, a prefix of the right one.
        for sent in [
            "Bearer nope",
            "Basic YTpi",
            "Bearer a-long-enough-metrics-token",
            "Bearer ",
            "a-long-enough-metrics-token-0123456789",
        ] {
            let h = with("authorization", sent);
            assert_eq!(
                status(decide(remote, &h, Some(&token), &none_trusted())),
                Some(StatusCode::UNAUTHORIZED),
                "{sent}"
            );
        }
        let right = with(
            "authorization",
            "Bearer a-long-enough-metrics-token-0123456789",
        );
        assert_eq!(
            status(decide(remote, &right, Some(&token), &none_trusted())),
            None
        );
        // A wrong token is refused from loopback too, and a token with none configured.
        let wrong = with("authorization", "Bearer nope");
        assert_eq!(
            status(decide(
                peer("127.0.0.1"),
                &wrong,
                Some(&token),
                &none_trusted()
            )),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(decide(peer("127.0.0.1"), &right, None, &none_trusted())),
            Some(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn a_proxied_request_is_not_a_loopback_one() {
        for (name, value) in [
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7"),
        ] {
            let h = with(name, value);
            assert_eq!(
                status(decide(peer("127.0.0.1"), &h, None, &none_trusted())),
                Some(StatusCode::FORBIDDEN),
                "{name}"
            );
        }
    }

    #[test]
    fn the_token_is_never_shown() {
        let t = MetricsToken::new("s3cret-token");
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn a_trusted_proxy_on_loopback_is_not_a_local_scraper() {
        let none = HeaderMap::new();
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).expect("proxies");
        assert_eq!(
            status(decide(peer("127.0.0.1"), &none, None, &proxies)),
            Some(StatusCode::FORBIDDEN)
        );
        let token = MetricsToken::new("a-metrics-token-long-enough-for-production");
        assert_eq!(
            status(decide(peer("127.0.0.1"), &none, Some(&token), &proxies)),
            Some(StatusCode::UNAUTHORIZED)
        );
        let right = with(
            "authorization",
            "Bearer a-metrics-token-long-enough-for-production",
        );
        assert_eq!(
            status(decide(peer("127.0.0.1"), &right, Some(&token), &proxies)),
            None
        );
        // Another loopback address, not the proxy, still reads.
        assert_eq!(
            status(decide(peer("127.0.0.2"), &none, None, &proxies)),
            None
        );
    }
}

//! The client's address: the one place a request's address is decided, for the rate limits
//! and the security log.
//!
//! Without trusted proxies it is the TCP peer, and `X-Forwarded-For` is ignored (anyone can
//! send it). With them, a request whose peer is a trusted proxy is attributed to the
//! rightmost `X-Forwarded-For` address that is not itself a trusted proxy: each proxy
//! appends the address it saw, so everything left of the first untrusted hop may be forged.
//! The header is read as bytes: a hop that is not UTF-8 is malformed like any other, and
//! does not hide the hops to its right.
//!
//! The login limits count an address by its bucket ([`address_bucket`]): an IPv4 address
//! on its own, an IPv6 address by its /64, the smallest network one subscriber gets.

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR network");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let net = addr
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| bad())?
            .to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses addresses and CIDR networks (`127.0.0.1`, `10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| Cidr::parse(e.as_ref().trim()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of the trusted proxies (a proxy's requests are not its own).
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the
    /// rightmost `X-Forwarded-For` hop that is not a trusted proxy. A malformed hop ends
    /// the walk at the hop that reported it; when every hop is trusted, the leftmost one.
    fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = std::str::from_utf8(hop).ok().and_then(parse_hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// What the login limits count `address` (a [`client_address`]) under: an IPv6 address's
/// /64 network (`2001:db8:1:2::/64`), which one subscriber may fill with addresses at will;
/// anything else as it is.
pub(crate) fn address_bucket(address: &str) -> Cow<'_, str> {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
            let net = Ipv6Addr::from(u128::from(ip) & !(u128::from(u64::MAX)));
            Cow::Owned(format!("{net}/64"))
        }
        _ => Cow::Borrowed(address),
    }
}

/// The client's address as text, by the TCP peer and `trusted` (see the module docs);
/// `unknown` when the server has no socket (tests that call the router directly).
pub(crate) fn client_address(parts: &Parts, trusted: &TrustedProxies) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |c| trusted.resolve(c.0.ip(), &parts.headers).to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        xff_bytes(&values.iter().map(|v| v.as_bytes()).collect::<Vec<_>>())
    }

    fn xff_bytes(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                "x-forwarded-for",
                HeaderValue::from_bytes(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn cidrs_parse_and_match() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "::1", "fd00::/8", "192.168.1.7/32"])
            .expect("valid");
        for yes in [
            "10.1.2.3",
            "::1",
            "fd12::1",
            "192.168.1.7",
            "::ffff:10.0.0.1",
        ] {
            assert!(t.trusts(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "::2", "fe80::1", "192.168.1.8"] {
            assert!(!t.trusts(ip(no)), "{no}");
        }
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0"])
                .expect("all")
                .trusts(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let t = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).expect("valid");
        let proxy = ip("127.0.0.1");
        let r = |h: &[&str]| t.resolve(proxy, &xff(h)).to_string();
        assert_eq!(r(&[]), "127.0.0.1", "no header: the proxy itself");
        assert_eq!(r(&["203.0.113.9"]), "203.0.113.9");
        assert_eq!(r(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]), "203.0.113.9");
        assert_eq!(r(&["1.1.1.1", "203.0.113.9:4711"]), "203.0.113.9");
        assert_eq!(r(&["[2001:db8::1]:80"]), "2001:db8::1");
        assert_eq!(
            r(&["10.0.0.3, 10.0.0.2"]),
            "10.0.0.3",
            "all trusted: leftmost"
        );
        assert_eq!(r(&["203.0.113.9, junk, 10.0.0.2"]), "10.0.0.2");
        // An untrusted peer's header is ignored.
        assert_eq!(
            t.resolve(ip("198.51.100.1"), &xff(&["203.0.113.9"]))
                .to_string(),
            "198.51.100.1"
        );
        // No trusted proxies: always the peer.
        assert_eq!(
            TrustedProxies::default()
                .resolve(proxy, &xff(&["203.0.113.9"]))
                .to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn hops_are_read_as_bytes_and_a_non_utf8_hop_stops_the_walk() {
        let t = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).expect("valid");
        let proxy = ip("127.0.0.1");
        let r = |h: &[&[u8]]| t.resolve(proxy, &xff_bytes(h)).to_string();
        // A proxy appends the real address to the client's own line: the bytes the client
        // put before it do not hide it.
        assert_eq!(r(&[b"\xff\x80junk, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            r(&[b"1.1.1.1, caf\xc3\xa9\xff, 203.0.113.9"]),
            "203.0.113.9"
        );
        assert_eq!(r(&[b"\xfe", b"203.0.113.9"]), "203.0.113.9", "across lines");
        // A bad hop to the right of the client's is malformed like any other: the client is
        // the last good hop to its right.
        assert_eq!(r(&[b"203.0.113.9, \xff, 10.0.0.2"]), "10.0.0.2");
        // With only the bad hop, the peer itself.
        assert_eq!(r(&[b"\x80\x81"]), "127.0.0.1");
    }

    #[test]
    fn ipv6_addresses_are_bucketed_by_their_64() {
        assert_eq!(
            address_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(address_bucket("2001:db8:1:3::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("::1"), "::/64");
        assert_eq!(address_bucket("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_bucket("unknown"), "unknown");
    }
}

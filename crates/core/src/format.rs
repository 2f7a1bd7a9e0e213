//! The checked string formats of `email` and `url` fields.

use crate::auth::Email;

/// A format a text field's values must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// An email address (a practical check, not all of RFC 5322): one `@`, a local part,
    /// a dotted domain, no spaces or control characters, at most 254 bytes.
    Email,
    /// An absolute `http` or `https` URL with a host, no spaces or control characters.
    Url,
}

impl TextFormat {
    /// Whether `s` has this format; the reason when it has not.
    pub fn check(self, s: &str) -> Result<(), String> {
        match self {
            // Stored as given: surrounding spaces are refused, not trimmed.
            Self::Email if s.trim() == s && Email::parse(s).is_ok() => Ok(()),
            Self::Email => Err("must be an email address such as ada@example.com".to_owned()),
            Self::Url if is_url(s) => Ok(()),
            Self::Url => Err(
                "must be an absolute http or https URL such as https://example.com/page".to_owned(),
            ),
        }
    }
}

/// `http://` or `https://` (any case), then a host (optionally `user@` before it and
/// `:port` after it), then optionally a path, query or fragment; no whitespace, control
/// characters or backslashes anywhere.
fn is_url(s: &str) -> bool {
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return false;
    }
    let scheme = |p: &[u8]| {
        s.as_bytes()
            .get(..p.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(p))
    };
    let rest = if scheme(b"https://") {
        &s[8..]
    } else if scheme(b"http://") {
        &s[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        // An IPv6 literal: `[…]`, then an optional port.
        let Some((h, after)) = v6.split_once(']') else {
            return false;
        };
        if !after.is_empty() && !after.starts_with(':') {
            return false;
        }
        (h, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && !host.starts_with('.')
        && !host.contains("..")
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::TextFormat::{Email, Url};

    #[test]
    fn emails() {
        for good in [
            "ada@example.com",
            "a.b+c@mail.example.org",
            "Ada@Example.COM",
        ] {
            assert_eq!(Email.check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@example..com",
            "ada @example.com",
            " ada@example.com",
            "ada@example.com\n",
            "ada@.example.com",
        ] {
            assert!(Email.check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        for good in [
            "https://example.com",
            "http://example.com/a/b?c=d#e",
            "HTTPS://EXAMPLE.COM/",
            "https://user@example.com:8443/x",
            "http://localhost:8080",
            "http://[::1]:8080/",
            "https://bücher.example/",
        ] {
            assert!(Url.check(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com/a b",
            "https://example.com:port/",
            "https://example.com:/",
            "https://..com",
            "http://[::1",
            "http:\\\\example.com",
            "//example.com",
        ] {
            assert!(Url.check(bad).is_err(), "{bad:?}");
        }
    }
}

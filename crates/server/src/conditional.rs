//! Conditional requests (RFC 9110 §13): the `If-Match`, `If-None-Match` and
//! `If-Modified-Since` extractors, and the validators they compare with: the entity tag
//! `"N"` of version N, and `Last-Modified`, a record's `updated_at` as an HTTP-date.
//!
//! Dates are the weak validator, and care is needed so that `If-Modified-Since` never
//! answers 304 for a record changed after the `Last-Modified` the client holds:
//!
//! - `If-Modified-Since` compares exactly: 304 only when `updated_at` (µs) is at or before
//!   the date. (At whole seconds, two changes in one second could not be told apart.)
//! - Once settled, `Last-Modified` is `updated_at` rounded *up* to the whole second, `L`, so
//!   a client sending it back gets 304 for the version it has. Settled means `L` is at
//!   least [`SETTLED`] before the answer is made (RFC 9110 §8.8.2.2 uses the same 60 s).
//! - Before that it is `updated_at` rounded *down*, `F`: the true second of the change,
//!   never later than the answer's `Date`. Sent back, it answers 304 only when
//!   `updated_at <= F`, which, as `F <= updated_at` of the version the client holds and
//!   versions only move forward, means the record is exactly that version.
//!
//! Why the settled date is safe: say an answer made at time `t` shows a version with
//! `Last-Modified` `L <= t - SETTLED`. Any later version was not yet visible at `t`, so its write committed
//! after `t`; it took its `updated_at` when it began, which is less than [`SETTLED`] before
//! its commit (the SQLite writer commits each batch as it runs it; a PostgreSQL write is
//! bounded by `pg_statement_timeout_seconds`, 30 s by default), so that `updated_at` is
//! after `t - SETTLED >= L`, and the comparison sends the full record. The argument needs
//! the instances' clocks to agree to well within that margin.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use plinth_core::{ErrorCode, Timestamp};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version named by an entity tag `"N"` as Plinth writes it (`"01"` is another tag).
pub(crate) fn parse_etag(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('"')?.strip_suffix('"')?;
    digits
        .parse()
        .ok()
        .filter(|v: &i64| *v >= 1 && v.to_string() == digits)
}

/// One entity tag of a list: whether it is weak, and its opaque tag with the quotes.
#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// Parses `#entity-tag` (RFC 9110 §8.8.3, §5.6.1): comma-separated tags, each `[W/]"…"`
/// with `etagc` characters inside the quotes (a comma among them). `None` when malformed
/// or empty.
fn entity_tags(s: &[u8]) -> Option<Vec<EntityTag<'_>>> {
    let mut tags = Vec::new();
    let mut i = 0;
    let skip_ows = |i: &mut usize| {
        while s.get(*i).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            *i += 1;
        }
    };
    loop {
        // Empty list elements are allowed: `, "1" ,, "2"`.
        skip_ows(&mut i);
        while s.get(i) == Some(&b',') {
            i += 1;
            skip_ows(&mut i);
        }
        if i == s.len() {
            break;
        }
        let weak = s[i..].starts_with(b"W/");
        if weak {
            i += 2;
        }
        let start = i;
        if s.get(i) != Some(&b'"') {
            return None;
        }
        i += 1;
        while let Some(&b) = s.get(i) {
            if b == b'"' {
                break;
            }
            if !(b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
                return None;
            }
            i += 1;
        }
        if s.get(i) != Some(&b'"') {
            return None;
        }
        i += 1;
        tags.push(EntityTag {
            weak,
            opaque: &s[start..i],
        });
        skip_ows(&mut i);
        match s.get(i) {
            None => break,
            Some(b',') => {}
            Some(_) => return None,
        }
    }
    (!tags.is_empty()).then_some(tags)
}

/// `If-Match` (RFC 9110 §13.1.1): absent or `*` allows any current version; a list of
/// entity tags allows the versions it names, compared strongly, so a weak tag, or a tag
/// Plinth never issued, names none. Only a malformed header is refused (400).
#[derive(Debug, Clone)]
pub(crate) enum IfMatch {
    /// No precondition on the version (the record must still exist).
    Any,
    /// The strong entity tags the client accepts, quotes included (possibly none).
    Tags(Vec<String>),
}

impl IfMatch {
    /// The version a write must find, given the record's `current` one: `None` for any,
    /// `Some(current)` when the header names it (the store then refuses the write if the
    /// record changed meanwhile), else 412.
    pub(crate) fn expect(&self, current: i64) -> Result<Option<i64>, ApiError> {
        self.expect_tag(&crate::reply::etag(current), current)
    }

    /// As [`Self::expect`], for what the entity tag `tag` names: `Some(current)` when the
    /// header names `tag`.
    pub(crate) fn expect_tag<T>(&self, tag: &str, current: T) -> Result<Option<T>, ApiError> {
        match self {
            Self::Any => Ok(None),
            Self::Tags(tags) if tags.iter().any(|t| t == tag) => Ok(Some(current)),
            Self::Tags(_) => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "the current version is not one named in If-Match",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::invalid(
                "If-Match",
                "must be * or entity tags as returned in ETag, e.g. \"3\" or \"3\", \"4\"",
            )
        };
        let mut tags = Vec::new();
        let mut any = false;
        let mut seen = false;
        for value in parts.headers.get_all(header::IF_MATCH) {
            seen = true;
            let bytes = value.as_bytes();
            if bytes.trim_ascii() == b"*" {
                any = true;
                continue;
            }
            for tag in entity_tags(bytes).ok_or_else(bad)? {
                let strong = std::str::from_utf8(tag.opaque).ok().filter(|_| !tag.weak);
                tags.extend(strong.map(str::to_owned));
            }
        }
        Ok(match (seen, any) {
            (false, _) | (true, true) => Self::Any,
            (true, false) => Self::Tags(tags),
        })
    }
}

/// `If-None-Match`: the versions the client already has (`*` matches any).
#[derive(Debug, Clone, Default)]
pub(crate) struct IfNoneMatch {
    present: bool,
    any: bool,
    versions: Vec<i64>,
}

impl IfNoneMatch {
    /// Whether the request carries the header (then `If-Modified-Since` is ignored).
    pub(crate) fn present(&self) -> bool {
        self.present
    }

    /// Whether the client's copy is current.
    pub(crate) fn matches(&self, version: i64) -> bool {
        self.any || self.versions.contains(&version)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut out = Self::default();
        for v in parts.headers.get_all(header::IF_NONE_MATCH) {
            out.present = true;
            let s = v
                .to_str()
                .map_err(|_| ApiError::invalid("If-None-Match", "is not valid text"))?;
            for tag in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if tag == "*" {
                    out.any = true;
                } else if let Some(v) = parse_etag(tag.strip_prefix("W/").unwrap_or(tag)) {
                    // Weak comparison, as RFC 9110 prescribes for If-None-Match.
                    out.versions.push(v);
                }
            }
        }
        Ok(out)
    }
}

/// How long before an answer the `Last-Modified` it carries must be (see the module
/// documentation): longer than any write takes from choosing its `updated_at` to commit.
const SETTLED: Duration = Duration::from_secs(60);

/// `If-Modified-Since`: an HTTP-date, or `None` when absent or not one valid date (which
/// RFC 9110 §13.1.3 says to ignore).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfModifiedSince(Option<SystemTime>);

impl IfModifiedSince {
    /// Whether a record last modified at `updated_at` is unchanged since the date: compared
    /// to the microsecond, never at the one-second precision of the date.
    pub(crate) fn unmodified(&self, updated_at: Timestamp) -> bool {
        let Some(since) = self.0 else {
            return false;
        };
        let since = Timestamp::from_system(since);
        updated_at <= since
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfModifiedSince {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(header::IF_MODIFIED_SINCE).iter();
        let date = match (values.next(), values.next()) {
            (Some(v), None) => v
                .to_str()
                .ok()
                .and_then(|s| httpdate::parse_http_date(s.trim()).ok()),
            _ => None,
        };
        Ok(Self(date))
    }
}

/// A timestamp at whole seconds, rounded up or down; `None` before 1970.
fn whole_seconds(t: Timestamp, up: bool) -> Option<SystemTime> {
    let micros = u64::try_from(t.as_micros()).ok()?;
    let secs = if up {
        micros.div_ceil(1_000_000)
    } else {
        micros / 1_000_000
    };
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// `Last-Modified` for a record last changed at `updated_at`, in an answer made `now`:
/// rounded up once [`SETTLED`], down before (see the module documentation); `None` only
/// before 1970.
pub(crate) fn last_modified(updated_at: Timestamp, now: SystemTime) -> Option<HeaderValue> {
    let up = whole_seconds(updated_at, true)?;
    let settled = up.checked_add(SETTLED).is_some_and(|t| t <= now);
    let at = if settled {
        up
    } else {
        whole_seconds(updated_at, false)?
    };
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Option<Vec<(bool, &str)>> {
        entity_tags(s.as_bytes()).map(|t| {
            t.into_iter()
                .map(|t| (t.weak, std::str::from_utf8(t.opaque).unwrap_or("?")))
                .collect()
        })
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap_or_else(|| panic!("a timestamp: {micros}"))
    }

    fn secs(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn last_modified_rounds_down_until_settled_then_up() {
        let u = at(1_000_000_250_000); // 1,000,000.25 s
        let fresh = last_modified(u, secs(1_000_060)).expect("a date");
        let date = httpdate::parse_http_date(fresh.to_str().unwrap_or_default());
        assert_eq!(date.ok(), Some(secs(1_000_000)));
        // Sent back, the rounded-down date is no 304 for that version, nor a later one.
        let since = IfModifiedSince(Some(secs(1_000_000)));
        assert!(!since.unmodified(u));
        let sent = last_modified(u, secs(1_000_061)).expect("settled");
        let date = httpdate::parse_http_date(sent.to_str().unwrap_or_default());
        assert_eq!(date.ok(), Some(secs(1_000_001)));
        // On a whole second it is that second.
        let whole = last_modified(at(1_000_000_000_000), secs(1_000_060)).expect("settled");
        let date = httpdate::parse_http_date(whole.to_str().unwrap_or_default());
        assert_eq!(date.ok(), Some(secs(1_000_000)));
    }

    #[test]
    fn if_modified_since_compares_to_the_microsecond() {
        let since = IfModifiedSince(Some(secs(1_000_001)));
        assert!(since.unmodified(at(1_000_000_250_000)));
        assert!(since.unmodified(at(1_000_001_000_000)));
        assert!(!since.unmodified(at(1_000_001_000_001)));
        assert!(!IfModifiedSince(None).unmodified(at(0)));
        // The date a client derives from a record seen at .25 s does not hide a change at
        // .75 s of the same second.
        let floor = IfModifiedSince(Some(secs(1_000_000)));
        assert!(!floor.unmodified(at(1_000_000_750_000)));
    }

    #[test]
    fn entity_tag_lists() {
        assert_eq!(tags("\"1\""), Some(vec![(false, "\"1\"")]));
        assert_eq!(
            tags(" \"2\", W/\"3\" ,,\"a,b\""),
            Some(vec![(false, "\"2\""), (true, "\"3\""), (false, "\"a,b\"")])
        );
        assert_eq!(tags("\"\""), Some(vec![(false, "\"\"")]));
        for bad in [
            "",
            " , ",
            "1",
            "\"1",
            "\"1\" \"2\"",
            "w/\"1\"",
            "\"a b\"",
            "\"1\"x",
        ] {
            assert_eq!(tags(bad), None, "{bad:?}");
        }
    }
}

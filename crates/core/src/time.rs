//! Timestamps: microseconds since the Unix epoch, UTC, rendered as RFC 3339.

use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time with microsecond precision (what both SQLite integers and PostgreSQL
/// `timestamptz` hold exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Earliest accepted instant: 0001-01-01T00:00:00Z.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// Latest accepted instant: 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    /// From microseconds since the epoch; `None` outside years 1–9999.
    pub fn from_micros(micros: i64) -> Option<Self> {
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(Self(micros))
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2026-01-02T03:04:05Z`, offsets allowed); sub-microsecond digits are
    /// truncated.
    pub fn parse(s: &str) -> Result<Self, String> {
        let dt = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| "must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z".to_owned())?;
        let micros = dt.unix_timestamp_nanos().div_euclid(1000);
        i64::try_from(micros)
            .ok()
            .and_then(Self::from_micros)
            .ok_or_else(|| "date-time is out of range (years 1 to 9999)".to_owned())
    }

    /// The current wall-clock time.
    pub fn from_system(now: std::time::SystemTime) -> Self {
        let micros = match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(MAX_MICROS),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(-MIN_MICROS),
        };
        Self(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    /// The next representable instant (used to keep creation times strictly increasing).
    pub fn next(self) -> Self {
        Self((self.0 + 1).min(MAX_MICROS))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with exactly six fractional digits, e.g. `2026-11-27T20:26:22.123456Z`,
    /// so that the text sorts like the instant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.microsecond()
            ),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Timestamp::parse("2026-11-27T20:26:22.123456Z").expect("parse");
        assert_eq!(t.to_string(), "2026-11-27T20:26:22.123456Z");
        let offset = Timestamp::parse("2026-11-27T21:26:22.123456789+01:00").expect("parse");
        assert_eq!(offset, t);
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z").map(Timestamp::as_micros),
            Ok(0)
        );
        assert_eq!(
            Timestamp::from_micros(-1).map(|t| t.to_string()).as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
    }

    #[test]
    fn system_times_and_successors() {
        use std::time::{Duration, UNIX_EPOCH};
        let micros = |t: std::time::SystemTime| Timestamp::from_system(t).as_micros();
        assert_eq!(
            micros(UNIX_EPOCH + Duration::from_micros(1_500_000)),
            1_500_000
        );
        assert_eq!(
            micros(UNIX_EPOCH - Duration::from_micros(1_500_000)),
            -1_500_000
        );
        // Beyond what microseconds in an i64 hold: clamped to the representable range.
        let far = Duration::from_secs(1 << 50);
        let first = Timestamp::parse("0001-01-01T00:00:00Z").expect("year 1");
        let last = Timestamp::parse("9999-12-31T23:59:59.999999Z").expect("year 9999");
        let past = UNIX_EPOCH
            .checked_sub(far)
            .expect("a system time 35M years ago");
        assert_eq!(Timestamp::from_system(past), first);
        let future = UNIX_EPOCH
            .checked_add(far)
            .expect("a system time 35M years ahead");
        assert_eq!(Timestamp::from_system(future), last);
        let t = Timestamp::parse("2026-11-27T20:26:22.123456Z").expect("parse");
        assert_eq!(t.next().as_micros(), t.as_micros() + 1);
        assert_eq!(last.next(), last);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Timestamp::from_micros(i64::MAX).is_none());
    }
}

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

impl Timestamp {
    /// The RFC 3339 text of [`fmt::Display`], made on the stack: every response carries
    /// timestamps, and formatting them through `write!` cost more than reading the row.
    pub fn text(self) -> TimestampText {
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        let nanos = i128::from(self.0) * 1000;
        // In range by construction (years 1 to 9999), so this always holds.
        if let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            let (year, month, day) = dt.to_calendar_date();
            let (hour, minute, second, micro) = dt.to_hms_micro();
            let fields: [(usize, usize, u32); 7] = [
                (0, 4, year.unsigned_abs()),
                (5, 2, u32::from(u8::from(month))),
                (8, 2, u32::from(day)),
                (11, 2, u32::from(hour)),
                (14, 2, u32::from(minute)),
                (17, 2, u32::from(second)),
                (20, 6, micro),
            ];
            for (at, width, mut n) in fields {
                for b in buf[at..at + width].iter_mut().rev() {
                    *b = b'0' + (n % 10) as u8;
                    n /= 10;
                }
            }
        }
        TimestampText(buf)
    }
}

/// A timestamp's RFC 3339 text ([`Timestamp::text`]).
#[derive(Debug, Clone, Copy)]
pub struct TimestampText([u8; 27]);

impl TimestampText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("0000-00-00T00:00:00.000000Z")
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with exactly six fractional digits, e.g. `2026-11-27T20:26:22.123456Z`,
    /// so that the text sorts like the instant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl serde::Serialize for Timestamp {
    /// As its RFC 3339 text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
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
    fn the_text_is_the_time_crates_own_formatting_across_the_range() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let mut micros = vec![MIN_MICROS, MAX_MICROS, -1, 0, 1, 951_782_400_000_000];
        // A spread of instants over the whole range, leap years and negative years-from-epoch.
        let mut n: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            let span = (MAX_MICROS - MIN_MICROS) as u64;
            micros.push(MIN_MICROS + (n % span) as i64);
        }
        for m in micros {
            let t = Timestamp::from_micros(m).expect("in range");
            let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).expect("dt");
            let want = dt.format(&format).expect("format");
            assert_eq!(t.text().as_str(), want, "{m}");
            assert_eq!(t.to_string(), want);
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::String(want))
            );
            assert_eq!(Timestamp::parse(t.text().as_str()), Ok(t));
        }
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

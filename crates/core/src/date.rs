//! Calendar dates (`date` fields): `YYYY-MM-DD`, years 0001 to 9999, with no time of day
//! and no time zone.

use std::fmt;
use time::Month;

/// A validated calendar date. Ordered as the calendar is; its text form sorts the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(time::Date);

const SHAPE: &str = "must be a date such as 2026-01-31 (YYYY-MM-DD)";

impl Date {
    /// Parses exactly `YYYY-MM-DD` (four-digit year 0001 to 9999, a day the month has).
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) {
            return Err(SHAPE.to_owned());
        }
        if !digits(5..7) || !digits(8..10) {
            return Err(SHAPE.to_owned());
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<i32>().map_err(|_| SHAPE.to_owned());
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if year < 1 {
            return Err("must be a date from 0001-01-01 to 9999-12-31".to_owned());
        }
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| format!("{s} is not a date: there is no month {month}"))?;
        let day = u8::try_from(day).map_err(|_| SHAPE.to_owned())?;
        time::Date::from_calendar_date(year, month, day)
            .map(Self)
            .map_err(|_| format!("{s} is not a date: that month has no day {day}"))
    }

    /// From a `time` date (what PostgreSQL's `DATE` reads as); `None` outside years 1–9999.
    pub fn from_time(d: time::Date) -> Option<Self> {
        (1..=9999).contains(&d.year()).then_some(Self(d))
    }

    /// As a `time` date (what PostgreSQL's `DATE` binds from).
    pub fn as_time(self) -> time::Date {
        self.0
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        for s in ["0001-01-01", "2024-02-29", "2026-11-30", "9999-12-31"] {
            assert_eq!(Date::parse(s).map(|d| d.to_string()).as_deref(), Ok(s));
        }
        let a = Date::parse("2026-09-30").expect("a date");
        let b = Date::parse("2026-10-01").expect("a date");
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(Date::from_time(b.as_time()), Some(b));
    }

    #[test]
    fn refuses_what_is_not_a_calendar_date() {
        for bad in [
            "",
            "2026-1-01",
            "2026/01/01",
            "26-01-01",
            "0000-01-01",
            "2026-13-01",
            "2026-00-10",
            "2025-02-29",
            "2026-04-31",
            "2026-01-01T00:00:00Z",
            "+2026-01-01",
            "2026-01-0a",
            "１２３４-01-01",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Date::parse("2025-02-29").is_err_and(|e| e.contains("no day 29")));
    }
}

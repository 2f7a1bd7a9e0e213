//! Exact decimals (`decimal` fields): a whole number of units of 10^-scale, so `12.50` at
//! scale 2 is 1250 units. Stored as that 64-bit integer, so both engines compare and sort
//! decimals numerically and exactly.

use std::cmp::Ordering;
use std::fmt;

/// Largest declared `scale` (digits after the point).
pub const MAX_SCALE: u8 = 9;
/// Most digits a decimal holds in all (integer and fraction digits at its scale).
pub const MAX_DIGITS: u32 = 18;
/// Largest number of units: eighteen nines.
const MAX_UNITS: i64 = 999_999_999_999_999_999;

/// An exact decimal with a fixed number of digits after the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    units: i64,
    scale: u8,
}

/// 10^n.
fn pow10(n: u8) -> i64 {
    10_i64.pow(u32::from(n))
}

impl Decimal {
    /// From a count of units at `scale`; `None` past [`MAX_DIGITS`] digits or
    /// [`MAX_SCALE`].
    pub fn from_units(units: i64, scale: u8) -> Option<Self> {
        (scale <= MAX_SCALE && (-MAX_UNITS..=MAX_UNITS).contains(&units))
            .then_some(Self { units, scale })
    }

    /// The count of units (what is stored).
    pub fn units(self) -> i64 {
        self.units
    }

    /// Digits after the point.
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// Parses `-123.45`-shaped text at `scale`: an optional minus sign, digits, and
    /// optionally a point followed by at most `scale` digits (fewer are padded with zeros;
    /// more are refused, never rounded). No exponent, no spaces, no `+`.
    pub fn parse(s: &str, scale: u8) -> Result<Self, String> {
        if scale > MAX_SCALE {
            return Err(format!("a scale is at most {MAX_SCALE}"));
        }
        let shape = || {
            format!(
                "must be a decimal number as a string, such as \"{}\"",
                Self {
                    units: 1250 * pow10(scale) / 100,
                    scale,
                }
            )
        };
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return Err(shape());
        }
        let frac = frac.unwrap_or("");
        if frac.len() > usize::from(scale) {
            return Err(match scale {
                0 => "must be a whole number (no decimal places)".to_owned(),
                1 => "has at most 1 decimal place".to_owned(),
                n => format!("has at most {n} decimal places"),
            });
        }
        let too_big = || format!("is out of range: at most {MAX_DIGITS} digits in all");
        let mut units: i64 = 0;
        let padded = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(usize::from(scale));
        for b in int.bytes().chain(padded) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .filter(|u| *u <= MAX_UNITS)
                .ok_or_else(too_big)?;
        }
        Ok(Self {
            units: if negative { -units } else { units },
            scale,
        })
    }

    /// The same value at another scale: `None` when it does not fit (a digit would be lost,
    /// or it would pass [`MAX_DIGITS`] digits).
    pub fn rescale(self, scale: u8) -> Option<Self> {
        if scale > MAX_SCALE {
            None
        } else if scale >= self.scale {
            let units = self.units.checked_mul(pow10(scale - self.scale))?;
            Self::from_units(units, scale)
        } else {
            let f = pow10(self.scale - scale);
            (self.units % f == 0).then(|| Self {
                units: self.units / f,
                scale,
            })
        }
    }

    /// Numeric order, whatever the two scales.
    pub fn cmp_value(self, other: Self) -> Ordering {
        let widen = |d: Self, to: u8| i128::from(d.units) * i128::from(pow10(to - d.scale));
        let to = self.scale.max(other.scale);
        widen(self, to).cmp(&widen(other, to))
    }
}

impl fmt::Display for Decimal {
    /// Exactly `scale` digits after the point: `12.50`, `-0.05`, `7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let p = 10_u64.pow(u32::from(self.scale));
        let width = usize::from(self.scale);
        write!(f, "{sign}{}.{:0width$}", abs / p, abs % p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str, scale: u8) -> Decimal {
        Decimal::parse(s, scale).expect("a decimal")
    }

    #[test]
    fn parses_pads_and_prints_exactly() {
        assert_eq!(d("12.5", 2).units(), 1250);
        assert_eq!(d("12.5", 2).to_string(), "12.50");
        assert_eq!(d("12", 2).to_string(), "12.00");
        assert_eq!(d("-0.05", 2).to_string(), "-0.05");
        assert_eq!(d("-0", 2).to_string(), "0.00");
        assert_eq!(d("007", 0).to_string(), "7");
        assert_eq!(d("0.123456789", 9).to_string(), "0.123456789");
        assert_eq!(d("999999999999999999", 0).units(), MAX_UNITS);
        assert_eq!(d("9999999999999999.99", 2).units(), MAX_UNITS);
    }

    #[test]
    fn refuses_rounding_overflow_and_odd_shapes() {
        assert_eq!(
            Decimal::parse("1.005", 2),
            Err("has at most 2 decimal places".to_owned())
        );
        assert!(Decimal::parse("1.5", 0).is_err_and(|e| e.contains("whole number")));
        assert!(Decimal::parse("99999999999999999.99", 2).is_err_and(|e| e.contains("18 digits")));
        assert!(Decimal::parse("9223372036854775808", 0).is_err());
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", " 1", "1 ", "1.2.3", "0x10", "1,5", "--1", "١",
        ] {
            assert!(Decimal::parse(bad, 2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compares_numerically_and_rescales_exactly() {
        assert_eq!(d("9.50", 2).cmp_value(d("10.00", 2)), Ordering::Less);
        assert_eq!(d("-1", 2).cmp_value(d("0.5", 1)), Ordering::Less);
        assert_eq!(d("1.5", 1).cmp_value(d("1.50", 2)), Ordering::Equal);
        assert_eq!(d("1.5", 1).rescale(3), Some(d("1.500", 3)));
        assert_eq!(d("1.50", 2).rescale(1), Some(d("1.5", 1)));
        assert_eq!(d("1.55", 2).rescale(1), None);
        assert_eq!(d("999999999999999999", 0).rescale(1), None);
        assert_eq!(Decimal::from_units(MAX_UNITS + 1, 0), None);
        assert_eq!(Decimal::from_units(1, MAX_SCALE + 1), None);
    }
}

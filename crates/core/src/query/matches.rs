//! Filters decided in memory, over a record already at hand (the change feed's records),
//! with the outcome the store's SQL gives for the same filter over the same row:
//!
//! - A missing value (`NULL`) satisfies no comparison but `ne` (the SQL is `IS DISTINCT
//!   FROM`, so a missing value differs from every value) and an expression's `= null`.
//! - Text compares by its bytes (SQLite's `BINARY` collation; PostgreSQL under the `C`
//!   collation); `like` lowercases both sides with Unicode rules (`plinth_fold` on SQLite,
//!   `ILIKE` on PostgreSQL) and `*` stands for any run of characters, every other character
//!   (SQL's `%` and `_` included) standing for itself; `contains` (`~`) folds the same way
//!   and has no wildcard.
//! - Numbers compare by value (an integer column against a float value as SQL does),
//!   timestamps by their microseconds, booleans and ids by equality only (the parser
//!   refuses ordering them), dates by the calendar and decimals by value (as their stored
//!   text and units order). An array `has` a value when an item equals it. A pii value
//!   compares as its plain text: the store compares blind indexes, which are equal exactly
//!   when the texts are.

use super::{Filter, Op};
use crate::record::{Record, Value};
use std::cmp::Ordering;

impl Filter {
    /// Whether `record` passes this filter, as the store's list would decide it.
    pub fn matches(&self, record: &Record) -> bool {
        let value = self.column.value_of(record);
        let first = self.values.first().unwrap_or(&Value::Null);
        match self.op {
            Op::Eq => match (&value, first) {
                // `= null` of an expression: `IS NULL`.
                (Value::Null, Value::Null) => true,
                _ => compare(&value, first) == Some(Ordering::Equal),
            },
            Op::Ne => match (&value, first) {
                (Value::Null, Value::Null) => false,
                (Value::Null, _) | (_, Value::Null) => true,
                _ => compare(&value, first) != Some(Ordering::Equal),
            },
            Op::Lt => compare(&value, first) == Some(Ordering::Less),
            Op::Lte => matches!(
                compare(&value, first),
                Some(Ordering::Less | Ordering::Equal)
            ),
            Op::Gt => compare(&value, first) == Some(Ordering::Greater),
            Op::Gte => matches!(
                compare(&value, first),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Like => match (&value, first) {
                (Value::Text(text), Value::Text(pattern)) => like(text, pattern),
                _ => false,
            },
            Op::Contains => match (&value, first) {
                (Value::Text(text), Value::Text(part)) => {
                    text.to_lowercase().contains(&part.to_lowercase())
                }
                _ => false,
            },
            Op::In => self
                .values
                .iter()
                .any(|v| compare(&value, v) == Some(Ordering::Equal)),
            Op::Has | Op::HasAny => match &value {
                Value::Array(items) => self.values.iter().any(|v| items.contains(v)),
                _ => false,
            },
        }
    }
}

/// How two values order in SQL; `None` when either is missing (SQL's unknown) or they
/// cannot be compared.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        #[allow(clippy::cast_precision_loss, reason = "as SQL compares them")]
        (Value::Integer(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        #[allow(clippy::cast_precision_loss, reason = "as SQL compares them")]
        (Value::Float(a), Value::Integer(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Boolean(a), Value::Boolean(b)) => Some(a.cmp(b)),
        (Value::Datetime(a), Value::Datetime(b)) => Some(a.cmp(b)),
        (Value::Reference(a), Value::Reference(b)) => Some(a.cmp(b)),
        (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
        (Value::Decimal(a), Value::Decimal(b)) => Some(a.cmp_value(*b)),
        _ => None,
    }
}

/// `text` against a `like` pattern: case-insensitive (Unicode lowercase on both sides),
/// `*` any run of characters, the rest literal.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    // The classic wildcard walk: on a mismatch, go back to the last `*` and let it take one
    // more character. Linear in practice, at worst text × pattern, as the engines are.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;

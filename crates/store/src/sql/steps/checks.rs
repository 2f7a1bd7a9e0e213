//! What a migration checks against stored values, and the literals its statements spell:
//! the conditions a value breaking a tighter rule meets, a decimal's rescale, and declared
//! defaults and bounds written as SQL.

use super::{NAMED, Stmt};
use crate::sql::Dialect;
use plinth_core::migrate::Rule;
use plinth_core::schema::{Bound, FieldDef};
use plinth_core::{ModelDef, Value};

/// The first records of `model` matching `condition`, with the count of all.
pub(super) fn offenders(model: &ModelDef, condition: &str) -> String {
    format!(
        "SELECT \"id\", count(*) OVER () FROM \"{}\" WHERE {condition} ORDER BY \"id\" LIMIT {NAMED}",
        model.name()
    )
}

/// What an operator can do when stored values break a tighter constraint.
pub(super) const NARROW_ADVICE: &str = "Change or purge those records, or keep the old constraint";

/// A decimal's scale change: a check that every value fits, then the units multiplied or
/// divided by the power of ten between the scales.
pub(super) fn rescale(model: &ModelDef, f: &FieldDef, from: u8, to: u8) -> Vec<Stmt> {
    let (m, c) = (model.name(), format!("\"{}\"", f.name()));
    let factor = 10_i64.pow(u32::from(from.abs_diff(to)));
    let (broken, why, op) = if to > from {
        let most = 999_999_999_999_999_999 / factor;
        (
            format!("({c} > {most} OR {c} < -{most})"),
            format!("at most {} digits", plinth_core::decimal::MAX_DIGITS),
            "*",
        )
    } else {
        (
            format!("{c} % {factor} <> 0"),
            format!("exact with {to} decimal places"),
            "/",
        )
    };
    vec![
        Stmt::Check {
            sql: offenders(model, &broken),
            head: format!(
                "cannot change the scale of {m}.{} from {from} to {to}: every value must be {why}",
                f.name()
            ),
            advice: "Change or purge those records, or keep the old scale",
        },
        Stmt::Run(format!(
            "UPDATE \"{m}\" SET {c} = {c} {op} {factor} WHERE {c} IS NOT NULL"
        )),
    ]
}

/// The condition a value of column `c` breaking `rule` meets (NULL meets none); `None`
/// for a rule SQL cannot check (a text format, checked by [`Stmt::Scan`]).
pub(super) fn breaks(d: Dialect, c: &str, rule: &Rule) -> Option<String> {
    let len = match d {
        Dialect::Sqlite => "length",
        Dialect::Postgres => "char_length",
    };
    Some(match rule {
        Rule::MaxLength(n) => format!("{len}({c}) > {n}"),
        Rule::MinLength(n) => format!("{len}({c}) < {n}"),
        Rule::Values(values) => {
            let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
            format!("{c} NOT IN ({})", values.join(", "))
        }
        Rule::Min(b) => format!("{c} < {}", bound(b)),
        Rule::Max(b) => format!("{c} > {}", bound(b)),
        Rule::ExactInFloat => {
            let most = plinth_core::migrate::EXACT_IN_FLOAT;
            format!("({c} < -{most} OR {c} > {most})")
        }
        Rule::Integral => match d {
            // Out of range, the cast saturates and differs too.
            Dialect::Sqlite => format!("{c} <> CAST({c} AS INTEGER)"),
            Dialect::Postgres => format!(
                "({c} <> trunc({c}) OR {c} < -9223372036854775808 OR {c} >= 9223372036854775808)"
            ),
        },
        Rule::AtLeast(v) => format!("{c} < {}", literal(d, v)),
        Rule::AtMost(v) => format!("{c} > {}", literal(d, v)),
        Rule::Format(_) => return None,
        Rule::MaxItems(n) => match d {
            Dialect::Sqlite => format!("json_array_length({c}) > {n}"),
            Dialect::Postgres => format!("jsonb_array_length({c}) > {n}"),
        },
        Rule::ItemMaxLength(n) => match d {
            Dialect::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each({c}) WHERE length(\"value\") > {n})")
            }
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text({c}) AS e WHERE char_length(e) > {n})"
            ),
        },
    })
}

pub(super) fn bound(b: &Bound) -> String {
    match b {
        Bound::Int(i) => i.to_string(),
        Bound::Float(x) => format!("{x:?}"),
        Bound::Text(t) => quote(t),
    }
}

/// A text literal. Names and declared values only: request data is always bound. A
/// standard literal: PostgreSQL runs migrations with `standard_conforming_strings` on.
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A declared default as a literal of the column's type in `d`.
pub(super) fn literal(d: Dialect, v: &Value) -> String {
    match (d, v) {
        (_, Value::Null) => "NULL".to_owned(),
        (_, Value::Text(s)) => quote(s),
        (_, Value::Integer(i)) => i.to_string(),
        (_, Value::Float(x)) => format!("{x:?}"),
        (Dialect::Sqlite, Value::Boolean(b)) => i32::from(*b).to_string(),
        (Dialect::Postgres, Value::Boolean(b)) => b.to_string().to_uppercase(),
        (Dialect::Sqlite, Value::Datetime(t)) => t.as_micros().to_string(),
        (Dialect::Postgres, Value::Datetime(t)) => {
            format!("{}::timestamptz", quote(&t.to_string()))
        }
        (Dialect::Sqlite, Value::Json(j)) => quote(&j.to_string()),
        (Dialect::Postgres, Value::Json(j)) => format!("{}::jsonb", quote(&j.to_string())),
        (Dialect::Sqlite, Value::Reference(id)) => quote(&id.to_string()),
        (Dialect::Postgres, Value::Reference(id)) => format!("{}::uuid", quote(&id.to_string())),
        (Dialect::Sqlite, Value::Date(day)) => quote(&day.to_string()),
        (Dialect::Postgres, Value::Date(day)) => format!("{}::date", quote(&day.to_string())),
        (_, Value::Decimal(x)) => x.units().to_string(),
        (Dialect::Sqlite, v @ Value::Array(_)) => quote(&v.to_json().to_string()),
        (Dialect::Postgres, v @ Value::Array(_)) => {
            format!("{}::jsonb", quote(&v.to_json().to_string()))
        }
    }
}

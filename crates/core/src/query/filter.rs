//! One `field[op]=value` filter, parsed and checked against its column.

use super::{Column, Filter, MAX_IN_VALUES, Op, QueryLimits};
use crate::error::FieldError;
use crate::policy::FieldAccess;
use crate::record::Value;
use crate::schema::{ModelDef, ValueKind};

/// Parses the filter `key=value` (`key` is `field` or `field[op]`).
pub(super) fn parse_filter(
    model: &ModelDef,
    key: &str,
    value: &str,
    access: FieldAccess,
    limits: &QueryLimits,
) -> Result<Filter, FieldError> {
    let shown: String = key.chars().take(64).collect();
    let (name, op) = match key.split_once('[') {
        None => (key, Op::Eq),
        Some((name, rest)) => {
            let op = rest.strip_suffix(']').and_then(Op::parse).ok_or_else(|| {
                FieldError::new(
                    shown.clone(),
                    "unknown operator; use eq, ne, lt, lte, gt, gte, like, in, has or has_any",
                )
            })?;
            (name, op)
        }
    };
    let column = Column::resolve(model, name, access)
        .ok_or_else(|| FieldError::new(shown.clone(), "unknown field"))?;
    let bad = |reason: String| FieldError::new(shown.clone(), reason);
    let array = matches!(column.kind, ValueKind::Array(_));
    if array != matches!(op, Op::Has | Op::HasAny) {
        return Err(bad(if array {
            format!("{name} is an array: only has and has_any apply to it")
        } else {
            "has and has_any apply to array fields only".to_owned()
        }));
    }
    if column.pii && !matches!(op, Op::Eq | Op::Ne | Op::In) {
        return Err(bad(format!(
            "{name} is pii (stored encrypted): only eq, ne and in apply to it"
        )));
    }
    let values = match op {
        Op::Like => {
            if column.kind != ValueKind::Text {
                return Err(bad("like applies to text fields only".to_owned()));
            }
            if value.contains('\0') {
                // SQLite would end the pattern at the NUL (matching far more than asked)
                // and PostgreSQL text cannot hold one: refused alike on both. (An `eq`
                // value may hold NUL: SQLite compares it whole, PostgreSQL refuses it as
                // text it cannot store.)
                return Err(bad(
                    "a like pattern must not contain NUL (\\u0000)".to_owned()
                ));
            }
            let max = limits.pattern_max_chars;
            if value.chars().count() > max {
                return Err(bad(format!("a like pattern is at most {max} characters")));
            }
            vec![Value::Text(value.to_owned())]
        }
        Op::In | Op::HasAny => {
            let parts: Vec<&str> = value.split(',').collect();
            if parts.len() > MAX_IN_VALUES {
                return Err(bad(format!(
                    "{} takes at most {MAX_IN_VALUES} values",
                    if op == Op::In { "in" } else { "has_any" }
                )));
            }
            let max = limits.value_max_chars;
            if parts.iter().any(|p| p.chars().count() > max) {
                return Err(bad(format!("each value is at most {max} characters")));
            }
            parts
                .iter()
                .map(|p| column.parse_value(p))
                .collect::<Result<_, _>>()
                .map_err(bad)?
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte
            if matches!(column.kind, ValueKind::Boolean | ValueKind::Uuid) =>
        {
            return Err(bad(
                "ordering comparisons do not apply to this field".to_owned()
            ));
        }
        _ => {
            let max = limits.value_max_chars;
            if value.chars().count() > max {
                return Err(bad(format!("a filter value is at most {max} characters")));
            }
            vec![column.parse_value(value).map_err(bad)?]
        }
    };
    Ok(Filter { column, op, values })
}

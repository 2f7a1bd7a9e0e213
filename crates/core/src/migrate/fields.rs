//! The steps that bring one applied model's fields to the declared ones: renames, drops,
//! additions, conversions between `integer` and `float`, checks of tighter constraints and
//! index changes.

use super::{IndexKind, Rule, Step};
use crate::date::Date;
use crate::decimal::Decimal;
use crate::record::Value;
use crate::schema::{
    Bound, DEFAULT_EMAIL_MAX, DEFAULT_MAX_ITEMS, DEFAULT_STRING_MAX, DEFAULT_TEXT_MAX,
    DEFAULT_URL_MAX, FieldDecl, FieldDef, FieldKind, FieldType, ModelDecl, ModelDef, ValueKind,
};
use std::sync::Arc;

/// Where a declared field's values come from.
enum Source<'a> {
    /// A new field.
    New,
    /// The applied field of the same name, or of its old name (`renamed`).
    Kept { old: &'a FieldDecl, renamed: bool },
    /// A rename the plan cannot make.
    Refused(String),
}

pub(super) fn plan_fields(old: &ModelDecl, model: &Arc<ModelDef>, steps: &mut Vec<Step>) {
    let name = model.name().as_str();
    let applied = |n: &str| old.fields.iter().find(|f| f.name == n);
    let sources: Vec<Source<'_>> = model
        .fields()
        .iter()
        .map(|new| {
            let field = new.name().as_str();
            let Some(from) = new.renamed_from().map(|f| f.as_str()) else {
                return applied(field).map_or(Source::New, |old| Source::Kept {
                    old,
                    renamed: false,
                });
            };
            match (applied(from), applied(field)) {
                (Some(old), None) => Source::Kept { old, renamed: true },
                // Renamed by an earlier migration: the declaration may stay.
                (None, Some(old)) => Source::Kept {
                    old,
                    renamed: false,
                },
                (Some(_), Some(_)) => Source::Refused(format!(
                    "renamed_from names {from:?}, but both {from:?} and {field:?} exist. Drop one \
                     of them first (remove renamed_from and the field it names), or remove renamed_from"
                )),
                (None, None) => Source::Refused(format!(
                    "renamed_from names {from:?}, which model {name} does not have. Remove \
                     renamed_from to add {field:?} as a new field"
                )),
            }
        })
        .collect();
    let kept_as = |f: &FieldDecl| {
        model
            .fields()
            .iter()
            .zip(&sources)
            .any(|(new, source)| match source {
                Source::Kept { old, .. } => old.name == f.name && convertible(old, new),
                // Both names exist: neither is dropped by a plan that is refused anyway.
                Source::Refused(_) => {
                    new.name().as_str() == f.name
                        || new.renamed_from().is_some_and(|r| r.as_str() == f.name)
                }
                Source::New => false,
            })
    };
    for f in &old.fields {
        if !kept_as(f) {
            steps.push(Step::DropField {
                model: name.to_owned(),
                field: f.name.clone(),
                pii: f.pii,
            });
        }
    }
    for (index, (new, source)) in model.fields().iter().zip(sources).enumerate() {
        let field = new.name().as_str();
        let require = |added| Step::RequireField {
            model: name.to_owned(),
            field: field.to_owned(),
            added,
        };
        match source {
            Source::Refused(reason) => steps.push(Step::Refused {
                model: name.to_owned(),
                field: field.to_owned(),
                reason,
            }),
            Source::Kept { renamed: true, old } if old.pii || new.pii() => {
                steps.push(Step::Refused {
                    model: name.to_owned(),
                    field: field.to_owned(),
                    reason: format!(
                        "a pii field cannot be renamed in place: its sealed values are bound to \
                         its name. Declare {field:?} as a new field, copy the values over \
                         through the API, then drop {:?}",
                        old.name
                    ),
                });
            }
            Source::Kept { old, renamed } if convertible(old, new) => {
                if renamed {
                    steps.push(Step::RenameField {
                        model: Arc::clone(model),
                        index,
                        from: old.name.clone(),
                        pii: old.pii,
                    });
                }
                if old.pii != new.pii() {
                    steps.push(Step::ChangePii {
                        model: name.to_owned(),
                        field: field.to_owned(),
                        pii: new.pii(),
                    });
                }
                if let (ValueKind::Decimal(from), ValueKind::Decimal(to)) =
                    (old.value_kind(), new.value_kind())
                    && from != to
                {
                    steps.push(Step::Rescale {
                        model: Arc::clone(model),
                        index,
                        from,
                    });
                }
                let rules = tighter(old, new);
                if !rules.is_empty() && new.pii() {
                    steps.push(Step::Refused {
                        model: name.to_owned(),
                        field: field.to_owned(),
                        reason: "its stored values are sealed, so tighter length limits or a \
                                 format cannot be checked in place. Keep the old limits and type, \
                                 or declare a new field"
                            .to_owned(),
                    });
                } else if !rules.is_empty() {
                    steps.push(Step::Narrow {
                        model: Arc::clone(model),
                        index,
                        rules,
                    });
                }
                if is_retype(old.value_kind(), new.value_kind()) {
                    steps.push(Step::ChangeType {
                        model: Arc::clone(model),
                        index,
                        from: old.kind,
                    });
                }
                let from = IndexKind::of(old.unique, old.unique_among, old.indexed);
                // A rename builds the declared index under the new name.
                if !renamed && from != IndexKind::of_field(new) {
                    steps.push(Step::Reindex {
                        model: Arc::clone(model),
                        index,
                        from,
                    });
                }
                if new.required() && !old.required {
                    steps.push(require(false));
                }
            }
            Source::New | Source::Kept { .. } => {
                steps.push(Step::AddField {
                    model: Arc::clone(model),
                    index,
                });
                if new.required() {
                    steps.push(require(true));
                }
            }
        }
    }
}

/// Whether an applied field can become the declared one keeping its values: the same
/// storage class (and referenced model), `integer` ↔ `float`, or a `decimal` of another
/// scale.
fn convertible(old: &FieldDecl, new: &FieldDef) -> bool {
    let (from, to) = (old.value_kind(), new.value_kind());
    let decimals = matches!((from, to), (ValueKind::Decimal(_), ValueKind::Decimal(_)));
    (from == to || is_retype(from, to) || decimals)
        && (old.kind != FieldKind::Reference || old.model.as_deref() == reference_target(new))
}

/// Whether the column changes type between `integer` and `float`.
fn is_retype(from: ValueKind, to: ValueKind) -> bool {
    let numeric = |k: ValueKind| matches!(k, ValueKind::Integer | ValueKind::Float);
    from != to && numeric(from) && numeric(to)
}

fn reference_target(f: &FieldDef) -> Option<&str> {
    match f.ty() {
        FieldType::Reference { model } => Some(model.as_str()),
        _ => None,
    }
}

/// The constraints of `new` that existing values of `old` may break.
fn tighter(old: &FieldDecl, new: &FieldDef) -> Vec<Rule> {
    let mut rules = Vec::new();
    match new.ty() {
        FieldType::Text {
            min_length,
            max_length,
            format,
            ..
        } => {
            if let Some(format) = format
                && old.kind != new.kind()
            {
                rules.push(Rule::Format(*format));
            }
            let old_max = old.max_length.unwrap_or(match old.kind {
                FieldKind::String => DEFAULT_STRING_MAX,
                // Enum values are at most 255 characters.
                FieldKind::Enum => 255,
                FieldKind::Email => DEFAULT_EMAIL_MAX,
                FieldKind::Url => DEFAULT_URL_MAX,
                _ => DEFAULT_TEXT_MAX,
            });
            if *max_length < old_max {
                rules.push(Rule::MaxLength(*max_length));
            }
            if *min_length > old.min_length.unwrap_or(0) {
                rules.push(Rule::MinLength(*min_length));
            }
        }
        FieldType::Enum { values } => {
            let within = old.kind == FieldKind::Enum
                && old.values.iter().flatten().all(|v| values.contains(v));
            if !within {
                rules.push(Rule::Values(values.clone()));
            }
        }
        FieldType::Integer { min, max } => {
            if old.kind == FieldKind::Float {
                rules.push(Rule::Integral);
            }
            bounds(old, min.map(Bound::Int), max.map(Bound::Int), &mut rules);
        }
        FieldType::Float { min, max } => {
            if old.kind == FieldKind::Integer {
                rules.push(Rule::ExactInFloat);
            }
            bounds(
                old,
                min.map(Bound::Float),
                max.map(Bound::Float),
                &mut rules,
            );
        }
        FieldType::Date { min, max } => {
            let old_date = |b: &Option<Bound>| b.as_ref().and_then(|b| Date::parse(&b.text()).ok());
            if let Some(lo) = min
                && old_date(&old.min).is_none_or(|o| *lo > o)
            {
                rules.push(Rule::AtLeast(Value::Date(*lo)));
            }
            if let Some(hi) = max
                && old_date(&old.max).is_none_or(|o| *hi < o)
            {
                rules.push(Rule::AtMost(Value::Date(*hi)));
            }
        }
        FieldType::Decimal { min, max, .. } => {
            let old_scale = match old.value_kind() {
                ValueKind::Decimal(s) => s,
                _ => 0,
            };
            let old_dec = |b: &Option<Bound>| {
                b.as_ref()
                    .and_then(|b| Decimal::parse(&b.text(), old_scale).ok())
            };
            if let Some(lo) = min
                && old_dec(&old.min).is_none_or(|o| lo.cmp_value(o).is_gt())
            {
                rules.push(Rule::AtLeast(Value::Decimal(*lo)));
            }
            if let Some(hi) = max
                && old_dec(&old.max).is_none_or(|o| hi.cmp_value(o).is_lt())
            {
                rules.push(Rule::AtMost(Value::Decimal(*hi)));
            }
        }
        FieldType::Array {
            max_items,
            max_length,
            ..
        } => {
            if *max_items < old.max_items.unwrap_or(DEFAULT_MAX_ITEMS) {
                rules.push(Rule::MaxItems(*max_items));
            }
            if *max_length < old.max_length.unwrap_or(DEFAULT_STRING_MAX) {
                rules.push(Rule::ItemMaxLength(*max_length));
            }
        }
        _ => {}
    }
    rules
}

/// A new or raised `min`, a new or lowered `max`.
fn bounds(old: &FieldDecl, min: Option<Bound>, max: Option<Bound>, rules: &mut Vec<Rule>) {
    let above = |a: &Bound, b: &Bound| match (a, b) {
        (Bound::Int(a), Bound::Int(b)) => a > b,
        _ => a.as_f64() > b.as_f64(),
    };
    if let Some(lo) = min
        && old.min.as_ref().is_none_or(|o| above(&lo, o))
    {
        rules.push(Rule::Min(lo));
    }
    if let Some(hi) = max
        && old.max.as_ref().is_none_or(|o| above(o, &hi))
    {
        rules.push(Rule::Max(hi));
    }
}

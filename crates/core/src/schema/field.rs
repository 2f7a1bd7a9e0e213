//! One declared field checked into a [`FieldDef`]: attributes that fit its type, bounds,
//! patterns, enum values, references and flags.

use super::{
    Bound, DEFAULT_EMAIL_MAX, DEFAULT_MAX_ITEMS, DEFAULT_SCALE, DEFAULT_STRING_MAX,
    DEFAULT_TEXT_MAX, DEFAULT_URL_MAX, FieldDecl, FieldDef, FieldKind, FieldType, ItemKind,
    MAX_ENUM_VALUES, MAX_ITEMS_CAP, Pattern, UniqueAmong,
};
use crate::date::Date;
use crate::decimal::{Decimal, MAX_SCALE};
use crate::format::TextFormat;
use crate::names::{FieldName, ModelName};
use crate::record::Value;

pub(super) fn field_def(f: &FieldDecl, models: &[&str]) -> Result<FieldDef, String> {
    let name = FieldName::parse(&f.name)?;
    let kind = f.kind;
    let text_like = kind.text_like();
    let string_items = kind == FieldKind::Array && f.items == Some(ItemKind::String);
    let bounded = matches!(
        kind,
        FieldKind::Integer | FieldKind::Float | FieldKind::Decimal | FieldKind::Date
    );
    let misplaced = [
        ("min_length", f.min_length.is_some() && !text_like),
        (
            "max_length",
            f.max_length.is_some() && !text_like && !string_items,
        ),
        (
            "pattern",
            f.pattern.is_some()
                && !matches!(kind, FieldKind::String | FieldKind::Email | FieldKind::Url),
        ),
        ("min", f.min.is_some() && !bounded),
        ("max", f.max.is_some() && !bounded),
        ("values", f.values.is_some() && kind != FieldKind::Enum),
        ("model", f.model.is_some() && kind != FieldKind::Reference),
        ("scale", f.scale.is_some() && kind != FieldKind::Decimal),
        ("items", f.items.is_some() && kind != FieldKind::Array),
        (
            "max_items",
            f.max_items.is_some() && kind != FieldKind::Array,
        ),
        (
            "unique_among",
            f.unique_among != UniqueAmong::All && !f.unique.is_some(),
        ),
    ];
    if let Some((attr, _)) = misplaced.iter().find(|(_, bad)| *bad) {
        if *attr == "max_length" && kind == FieldKind::Array {
            return Err("max_length applies to an array of strings only".to_owned());
        }
        if *attr == "unique_among" {
            return Err("unique_among applies to a unique field only".to_owned());
        }
        return Err(format!(
            "{attr:?} does not apply to a field of type {}",
            kind_name(kind)
        ));
    }
    if matches!(kind, FieldKind::Json | FieldKind::Array) && (f.unique.is_some() || f.indexed) {
        let what = if kind == FieldKind::Json {
            "a json"
        } else {
            "an array"
        };
        return Err(format!("{what} field cannot be unique or indexed"));
    }
    if f.pii && !text_like {
        return Err(format!(
            "pii applies to string, text, email and url fields, not to a field of type {}",
            kind_name(kind)
        ));
    }
    if f.pii && f.indexed {
        return Err(
            "a pii field cannot be indexed: it cannot be sorted, and its equality lookups \
             always use its blind index"
                .to_owned(),
        );
    }
    if f.admin_only && f.required {
        return Err(
            "an admin_only field cannot be required: users could not create records".to_owned(),
        );
    }
    let ty = match kind {
        FieldKind::String | FieldKind::Text | FieldKind::Email | FieldKind::Url => text(f)?,
        FieldKind::Integer => {
            let int = |b: &Option<Bound>, attr: &str| match b {
                None => Ok(None),
                Some(Bound::Int(i)) => Ok(Some(*i)),
                Some(_) => Err(format!("{attr} of an integer field must be an integer")),
            };
            let (min, max) = (int(&f.min, "min")?, int(&f.max, "max")?);
            ordered(min, max)?;
            FieldType::Integer { min, max }
        }
        FieldKind::Float => {
            let num = |b: &Option<Bound>| match b {
                None => Ok(None),
                Some(b) => match b.as_f64() {
                    Some(x) if x.is_finite() => Ok(Some(x)),
                    _ => Err("min and max must be finite numbers".to_owned()),
                },
            };
            let (min, max) = (num(&f.min)?, num(&f.max)?);
            ordered(min, max)?;
            FieldType::Float { min, max }
        }
        FieldKind::Boolean => FieldType::Boolean,
        FieldKind::Datetime => FieldType::Datetime,
        FieldKind::Json => FieldType::Json,
        FieldKind::Enum => {
            let values = f.values.clone().unwrap_or_default();
            if values.is_empty() || values.len() > MAX_ENUM_VALUES {
                return Err(format!(
                    "an enum field needs between 1 and {MAX_ENUM_VALUES} values"
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.is_empty() || v.chars().count() > 255 || v.chars().any(char::is_control) {
                    return Err(format!(
                        "enum value {v:?} must be 1 to 255 printable characters"
                    ));
                }
                if values[..i].contains(v) {
                    return Err(format!("enum value {v:?} is listed twice"));
                }
            }
            FieldType::Enum { values }
        }
        FieldKind::Reference => {
            let target = f
                .model
                .as_deref()
                .ok_or("a reference field needs `model`, the model it points to")?;
            if !models.contains(&target) {
                return Err(format!(
                    "references model {target:?}, which is not declared"
                ));
            }
            FieldType::Reference {
                model: ModelName::parse(target)?,
            }
        }
        FieldKind::Date => {
            let date = |b: &Option<Bound>, attr: &str| match b {
                None => Ok(None),
                Some(Bound::Text(t)) => Date::parse(t).map(Some).map_err(|e| format!("{attr} {e}")),
                Some(_) => Err(format!(
                    "{attr} of a date field must be a \"YYYY-MM-DD\" string"
                )),
            };
            let (min, max) = (date(&f.min, "min")?, date(&f.max, "max")?);
            ordered(min, max)?;
            FieldType::Date { min, max }
        }
        FieldKind::Decimal => {
            let scale = match f.scale {
                None => DEFAULT_SCALE,
                Some(s) => u8::try_from(s)
                    .ok()
                    .filter(|s| *s <= MAX_SCALE)
                    .ok_or_else(|| format!("scale must be between 0 and {MAX_SCALE}"))?,
            };
            let dec = |b: &Option<Bound>, attr: &str| match b {
                None => Ok(None),
                Some(b) => Decimal::parse(&b.text(), scale)
                    .map(Some)
                    .map_err(|e| format!("{attr} {e}")),
            };
            let (min, max) = (dec(&f.min, "min")?, dec(&f.max, "max")?);
            ordered(min.map(Decimal::units), max.map(Decimal::units))?;
            FieldType::Decimal { scale, min, max }
        }
        FieldKind::Array => {
            let items = f
                .items
                .ok_or("an array field needs `items`: \"string\" or \"integer\"")?;
            let max_items = f.max_items.unwrap_or(DEFAULT_MAX_ITEMS);
            if max_items == 0 || max_items > MAX_ITEMS_CAP {
                return Err(format!("max_items must be between 1 and {MAX_ITEMS_CAP}"));
            }
            let max_length = f.max_length.unwrap_or(DEFAULT_STRING_MAX);
            if max_length == 0 || max_length > DEFAULT_TEXT_MAX {
                return Err(format!(
                    "max_length (of each item) must be between 1 and {DEFAULT_TEXT_MAX}"
                ));
            }
            FieldType::Array {
                items,
                max_items,
                max_length,
            }
        }
    };
    let renamed_from = match &f.renamed_from {
        None => None,
        Some(old) if *old == f.name => {
            return Err("renamed_from names the field itself".to_owned());
        }
        Some(old) => Some(FieldName::parse_former(old).map_err(|e| format!("renamed_from: {e}"))?),
    };
    let mut def = FieldDef {
        name,
        kind,
        ty,
        required: f.required,
        unique: f.unique,
        unique_among: f.unique_among,
        indexed: f.indexed,
        admin_only: f.admin_only,
        pii: f.pii,
        default: None,
        renamed_from,
    };
    if let Some(value) = &f.default {
        def.default = Some(default_value(&def, value)?);
    }
    Ok(def)
}

/// `string`, `text`, `email` and `url`: lengths, pattern and format.
fn text(f: &FieldDecl) -> Result<FieldType, String> {
    let (default_max, format) = match f.kind {
        FieldKind::String => (DEFAULT_STRING_MAX, None),
        FieldKind::Email => (DEFAULT_EMAIL_MAX, Some(TextFormat::Email)),
        FieldKind::Url => (DEFAULT_URL_MAX, Some(TextFormat::Url)),
        _ => (DEFAULT_TEXT_MAX, None),
    };
    let max_length = f.max_length.unwrap_or(default_max);
    let min_length = f.min_length.unwrap_or(0);
    if max_length == 0 || max_length > DEFAULT_TEXT_MAX {
        return Err(format!(
            "max_length must be between 1 and {DEFAULT_TEXT_MAX}"
        ));
    }
    if min_length > max_length {
        return Err("min_length is greater than max_length".to_owned());
    }
    let pattern = match &f.pattern {
        None => None,
        Some(p) => Some(Pattern(
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("pattern is not a valid regular expression: {e}"))?,
        )),
    };
    Ok(FieldType::Text {
        min_length,
        max_length,
        pattern,
        format,
    })
}

fn ordered<T: PartialOrd>(min: Option<T>, max: Option<T>) -> Result<(), String> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err("min is greater than max".to_owned()),
        _ => Ok(()),
    }
}

/// A declared `default`, checked as a create's value would be.
fn default_value(def: &FieldDef, value: &serde_json::Value) -> Result<Value, String> {
    if def.kind == FieldKind::Reference {
        return Err("a reference field cannot have a default".to_owned());
    }
    if def.pii {
        return Err("a pii field cannot have a default: stored values are sealed".to_owned());
    }
    if def.unique.is_some() {
        return Err("a unique field cannot have a default: records would share it".to_owned());
    }
    crate::input::validate_value(def, value).map_err(|e| format!("default {e}"))
}

/// The `plinth.toml` spelling of a kind.
pub fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::String => "string",
        FieldKind::Text => "text",
        FieldKind::Integer => "integer",
        FieldKind::Float => "float",
        FieldKind::Boolean => "boolean",
        FieldKind::Datetime => "datetime",
        FieldKind::Enum => "enum",
        FieldKind::Json => "json",
        FieldKind::Reference => "reference",
        FieldKind::Date => "date",
        FieldKind::Decimal => "decimal",
        FieldKind::Array => "array",
        FieldKind::Email => "email",
        FieldKind::Url => "url",
    }
}

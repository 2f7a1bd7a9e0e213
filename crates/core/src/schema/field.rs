//! One declared field checked into a [`FieldDef`]: attributes that fit its type, bounds,
//! patterns, enum values, references and flags.

use super::{
    Bound, DEFAULT_STRING_MAX, DEFAULT_TEXT_MAX, FieldDecl, FieldDef, FieldKind, FieldType,
    MAX_ENUM_VALUES, Pattern,
};
use crate::names::{FieldName, ModelName};
use crate::record::Value;

pub(super) fn field_def(f: &FieldDecl, models: &[&str]) -> Result<FieldDef, String> {
    let name = FieldName::parse(&f.name)?;
    let kind = f.kind;
    let text_like = matches!(kind, FieldKind::String | FieldKind::Text);
    let numeric = matches!(kind, FieldKind::Integer | FieldKind::Float);
    let misplaced = [
        ("min_length", f.min_length.is_some() && !text_like),
        ("max_length", f.max_length.is_some() && !text_like),
        ("pattern", f.pattern.is_some() && kind != FieldKind::String),
        ("min", f.min.is_some() && !numeric),
        ("max", f.max.is_some() && !numeric),
        ("values", f.values.is_some() && kind != FieldKind::Enum),
        ("model", f.model.is_some() && kind != FieldKind::Reference),
        ("max_size", f.max_size.is_some() && kind != FieldKind::File),
        (
            "mime_types",
            f.mime_types.is_some() && kind != FieldKind::File,
        ),
        ("multiple", f.multiple && kind != FieldKind::File),
        (
            "max_files",
            f.max_files.is_some() && kind != FieldKind::File,
        ),
    ];
    if let Some((attr, _)) = misplaced.iter().find(|(_, bad)| *bad) {
        return Err(format!(
            "{attr:?} does not apply to a field of type {}",
            kind_name(kind)
        ));
    }
    if kind == FieldKind::Json && (f.unique.is_some() || f.indexed) {
        return Err("a json field cannot be unique or indexed".to_owned());
    }
    if kind == FieldKind::File {
        // Checked before the generic rules, so the message names the file rule.
        super::file::file_rules(f)?;
    }
    if f.pii && !text_like {
        return Err(format!(
            "pii applies to string and text fields, not to a field of type {}",
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
        FieldKind::String | FieldKind::Text => {
            let default_max = if kind == FieldKind::String {
                DEFAULT_STRING_MAX
            } else {
                DEFAULT_TEXT_MAX
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
            FieldType::Text {
                min_length,
                max_length,
                pattern,
            }
        }
        FieldKind::Integer => {
            let int = |b: Option<Bound>, attr: &str| match b {
                None => Ok(None),
                Some(Bound::Int(i)) => Ok(Some(i)),
                Some(Bound::Float(_)) => {
                    Err(format!("{attr} of an integer field must be an integer"))
                }
            };
            let (min, max) = (int(f.min, "min")?, int(f.max, "max")?);
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err("min is greater than max".to_owned());
            }
            FieldType::Integer { min, max }
        }
        FieldKind::Float => {
            let (min, max) = (f.min.map(Bound::as_f64), f.max.map(Bound::as_f64));
            if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
                return Err("min and max must be finite numbers".to_owned());
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err("min is greater than max".to_owned());
            }
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
        FieldKind::File => FieldType::File(super::file::file_rules(f)?),
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
        FieldKind::File => "file",
    }
}

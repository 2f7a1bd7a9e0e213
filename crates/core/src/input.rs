//! Validation of write bodies (create, PUT, PATCH) against a model definition.
//!
//! Every problem in a body is collected, so one 400 names every invalid field.

use crate::date::Date;
use crate::decimal::Decimal;
use crate::error::{Error, FieldError};
use crate::names::BASE_FIELDS;
use crate::policy::FieldAccess;
use crate::record::{RecordId, Status, Value};
use crate::schema::{FieldDef, FieldType, ItemKind, ModelDef};
use crate::time::Timestamp;
use serde_json::{Map, Value as Json};

/// Longest `name`, in characters.
pub const NAME_MAX_CHARS: usize = 255;

/// A complete set of client-settable values: the body of a create or a PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The base `name`.
    pub name: String,
    /// `active` unless the client said `inactive`.
    pub status: Status,
    /// One value per declared field, in declaration order (`Value::Null` when absent).
    pub fields: Vec<Value>,
}

/// A partial change: `None` leaves a value as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    /// New `name`.
    pub name: Option<String>,
    /// New status (`active` or `inactive`).
    pub status: Option<Status>,
    /// Per declared field, in declaration order.
    pub fields: Vec<Option<Value>>,
}

impl Patch {
    /// Leaves the fields the caller cannot see as they are (a non-admin's PUT does not clear
    /// `admin_only` fields).
    pub fn keep_hidden(mut self, model: &ModelDef, access: FieldAccess) -> Self {
        for (f, change) in model.fields().iter().zip(self.fields.iter_mut()) {
            if !f.visible_to(access) {
                *change = None;
            }
        }
        self
    }

    /// The declared fields the patch sets, with their positions.
    pub fn changes(&self) -> impl Iterator<Item = (usize, &Value)> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v.as_ref()?)))
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.status.is_none() && self.fields.iter().all(Option::is_none)
    }
}

impl From<Draft> for Patch {
    /// A full replacement expressed as a patch that sets everything.
    fn from(d: Draft) -> Self {
        Self {
            name: Some(d.name),
            status: Some(d.status),
            fields: d.fields.into_iter().map(Some).collect(),
        }
    }
}

/// Validates the body of a create (or of a PUT, which replaces every settable value).
///
/// A field the body leaves out takes its declared default, if any (an explicit `null` does
/// not). Fields the caller cannot see (`admin_only` for non-admins) are unknown to it: their
/// default, or null, in the draft; see [`Patch::keep_hidden`] for a PUT.
pub fn validate_draft(model: &ModelDef, body: &Json, access: FieldAccess) -> Result<Draft, Error> {
    let obj = as_object(body)?;
    let mut errors = Vec::new();
    check_keys(model, obj, access, &mut errors);
    let name = match obj.get("name") {
        None | Some(Json::Null) => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(v) => collect(&mut errors, "name", validate_name(v)),
    };
    let status = match obj.get("status") {
        None => Some(Status::Active),
        Some(v) => collect(&mut errors, "status", validate_status(v)),
    };
    let mut fields = Vec::with_capacity(model.fields().len());
    for f in model.fields() {
        let default = || f.default().cloned().unwrap_or(Value::Null);
        if !f.visible_to(access) {
            fields.push(default());
            continue;
        }
        let key = f.name().as_str();
        let value = match obj.get(key) {
            None if f.default().is_some() => default(),
            None | Some(Json::Null) if f.required() => {
                errors.push(FieldError::new(key, "is required"));
                Value::Null
            }
            None | Some(Json::Null) => Value::Null,
            Some(v) => collect(&mut errors, key, validate_value(f, v)).unwrap_or(Value::Null),
        };
        fields.push(value);
    }
    match (name, status) {
        (Some(name), Some(status)) if errors.is_empty() => Ok(Draft {
            name,
            status,
            fields,
        }),
        _ => Err(summary(errors)),
    }
}

/// Validates the body of a PATCH: only the keys present change; `null` clears an optional
/// field.
pub fn validate_patch(model: &ModelDef, body: &Json, access: FieldAccess) -> Result<Patch, Error> {
    let obj = as_object(body)?;
    let mut errors = Vec::new();
    check_keys(model, obj, access, &mut errors);
    let mut patch = Patch {
        name: obj
            .get("name")
            .and_then(|v| collect(&mut errors, "name", validate_name(v))),
        status: obj
            .get("status")
            .and_then(|v| collect(&mut errors, "status", validate_status(v))),
        fields: Vec::with_capacity(model.fields().len()),
    };
    for f in model.fields() {
        let key = f.name().as_str();
        let change = match obj.get(key) {
            _ if !f.visible_to(access) => None,
            None => None,
            Some(Json::Null) if f.required() => {
                errors.push(FieldError::new(key, "is required and cannot be null"));
                None
            }
            Some(Json::Null) => Some(Value::Null),
            Some(v) => collect(&mut errors, key, validate_value(f, v)),
        };
        patch.fields.push(change);
    }
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(summary(errors))
    }
}

fn as_object(body: &Json) -> Result<&Map<String, Json>, Error> {
    body.as_object()
        .ok_or_else(|| Error::invalid_field("body", "must be a JSON object"))
}

fn check_keys(
    model: &ModelDef,
    obj: &Map<String, Json>,
    access: FieldAccess,
    errors: &mut Vec<FieldError>,
) {
    for key in obj.keys() {
        let known = model.field(key).is_some_and(|(_, f)| f.visible_to(access));
        if key == "name" || key == "status" || known {
            continue;
        }
        let reason = if BASE_FIELDS.contains(&key.as_str()) {
            "is set by the server"
        } else {
            "unknown field"
        };
        errors.push(FieldError::new(truncate(key), reason));
    }
}

/// Keeps an echoed, client-supplied key to a sane size.
fn truncate(key: &str) -> String {
    key.chars().take(64).collect()
}

fn collect<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, String>) -> Option<T> {
    r.map_err(|reason| errors.push(FieldError::new(field, reason)))
        .ok()
}

fn summary(errors: Vec<FieldError>) -> Error {
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    Error::invalid(format!("invalid fields: {}", fields.join(", ")), errors)
}

fn validate_name(v: &Json) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    let n = s.chars().count();
    if n == 0 || n > NAME_MAX_CHARS {
        return Err(format!("must be 1 to {NAME_MAX_CHARS} characters long"));
    }
    Ok(s.to_owned())
}

fn validate_status(v: &Json) -> Result<Status, String> {
    match v.as_str().map(str::parse::<Status>) {
        Some(Ok(Status::Deleted)) => Err("cannot be set to deleted; use DELETE".to_owned()),
        Some(Ok(s)) => Ok(s),
        _ => Err("must be active or inactive".to_owned()),
    }
}

/// Validates one JSON value against a declared field.
pub fn validate_value(f: &FieldDef, v: &Json) -> Result<Value, String> {
    match f.ty() {
        FieldType::Text {
            min_length,
            max_length,
            pattern,
            format,
        } => {
            let s = v.as_str().ok_or("must be a string")?;
            let n = s.chars().count();
            if n < *min_length as usize || n > *max_length as usize {
                return Err(format!(
                    "must be {min_length} to {max_length} characters long"
                ));
            }
            if let Some(format) = format {
                format.check(s)?;
            }
            if let Some(p) = pattern
                && !p.is_match(s)
            {
                return Err("does not match the required pattern".to_owned());
            }
            Ok(Value::Text(s.to_owned()))
        }
        FieldType::Integer { min, max } => {
            let i = v
                .as_i64()
                .filter(|_| v.is_i64() || v.is_u64())
                .ok_or("must be an integer (64-bit)")?;
            check_range(i, *min, *max)?;
            Ok(Value::Integer(i))
        }
        FieldType::Float { min, max } => {
            let x = v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or("must be a number")?;
            check_range(x, *min, *max)?;
            Ok(Value::Float(x))
        }
        FieldType::Boolean => v
            .as_bool()
            .map(Value::Boolean)
            .ok_or_else(|| "must be true or false".to_owned()),
        FieldType::Datetime => {
            let s = v.as_str().ok_or("must be an RFC 3339 date-time string")?;
            Timestamp::parse(s).map(Value::Datetime)
        }
        FieldType::Enum { values } => match v.as_str() {
            Some(s) if values.iter().any(|x| x == s) => Ok(Value::Text(s.to_owned())),
            _ => Err(format!("must be one of {}", values.join(", "))),
        },
        FieldType::Json => Ok(Value::Json(v.clone())),
        FieldType::Reference { model } => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("must be the id of a record of model {model}"))?;
            RecordId::parse(s).map(Value::Reference)
        }
        FieldType::Date { min, max } => {
            let s = v
                .as_str()
                .ok_or("must be a date string such as 2026-01-31")?;
            let d = Date::parse(s)?;
            check_range(d, *min, *max)?;
            Ok(Value::Date(d))
        }
        FieldType::Decimal { scale, min, max } => {
            let s = v.as_str().ok_or_else(|| {
                format!(
                    "must be a decimal as a string, such as \"{}\" (a JSON number is not exact)",
                    Decimal::from_units(1250 * 10_i64.pow(u32::from(*scale)) / 100, *scale)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                )
            })?;
            let d = Decimal::parse(s, *scale)?;
            check_range(d.units(), min.map(Decimal::units), max.map(Decimal::units))
                .map_err(|_| decimal_range(*min, *max))?;
            Ok(Value::Decimal(d))
        }
        FieldType::Array {
            items,
            max_items,
            max_length,
        } => {
            let list = v.as_array().ok_or(match items {
                ItemKind::String => "must be an array of strings",
                ItemKind::Integer => "must be an array of integers",
            })?;
            if list.len() > *max_items as usize {
                return Err(format!("has at most {max_items} items"));
            }
            list.iter()
                .enumerate()
                .map(|(i, item)| match items {
                    ItemKind::String => match item.as_str() {
                        Some(s) if s.chars().count() <= *max_length as usize => {
                            Ok(Value::Text(s.to_owned()))
                        }
                        Some(_) => Err(format!(
                            "item {i} must be at most {max_length} characters long"
                        )),
                        None => Err(format!("item {i} must be a string")),
                    },
                    ItemKind::Integer => item
                        .as_i64()
                        .filter(|_| item.is_i64() || item.is_u64())
                        .map(Value::Integer)
                        .ok_or_else(|| format!("item {i} must be an integer (64-bit)")),
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
    }
}

fn decimal_range(min: Option<Decimal>, max: Option<Decimal>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("must be between {lo} and {hi}"),
        (Some(lo), None) => format!("must be at least {lo}"),
        (None, Some(hi)) => format!("must be at most {hi}"),
        (None, None) => String::new(),
    }
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    x: T,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), String> {
    match (min, max) {
        (Some(lo), Some(hi)) if x < lo || x > hi => Err(format!("must be between {lo} and {hi}")),
        (Some(lo), None) if x < lo => Err(format!("must be at least {lo}")),
        (None, Some(hi)) if x > hi => Err(format!("must be at most {hi}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;

//! Records: the base fields every model shares, and the typed values of declared fields.

use crate::date::Date;
use crate::decimal::Decimal;
use crate::schema::{ItemKind, ValueKind};
use crate::time::Timestamp;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A record id: a UUID, version 7 for records Plinth creates, so ids sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(Uuid);

impl RecordId {
    /// A fresh UUIDv7.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the hyphenated form only (`xxxxxxxx-xxxx-…`), which is all Plinth ever emits.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() != 36 {
            return Err("must be a UUID such as 0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d".to_owned());
        }
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| "must be a UUID such as 0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d".to_owned())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Wraps a UUID read back from storage.
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl serde::Serialize for RecordId {
    /// As its hyphenated text, made on the stack.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
    }
}

/// The lifecycle status of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Live (the default).
    Active,
    /// Kept but switched off by its owner.
    Inactive,
    /// Soft-deleted: hidden from default lists, restorable by an admin.
    Deleted,
}

impl Status {
    /// Every status, in a stable order.
    pub const ALL: [Status; 3] = [Status::Active, Status::Inactive, Status::Deleted];

    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Deleted => "deleted",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            "deleted" => Ok(Self::Deleted),
            _ => Err("must be one of active, inactive, deleted".to_owned()),
        }
    }
}

/// A typed value of a field, as validated and as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent (an optional field with no value).
    Null,
    /// `string`, `text`, `enum`, `email` and `url` fields.
    Text(String),
    /// `integer` fields.
    Integer(i64),
    /// `float` fields (always finite).
    Float(f64),
    /// `boolean` fields.
    Boolean(bool),
    /// `datetime` fields.
    Datetime(Timestamp),
    /// `json` fields, kept as the client sent them.
    Json(serde_json::Value),
    /// `reference` fields: the id of a record of another model.
    Reference(RecordId),
    /// `date` fields.
    Date(Date),
    /// `decimal` fields: exact, at the field's scale.
    Decimal(Decimal),
    /// `array` fields: items all [`Value::Text`] or all [`Value::Integer`].
    Array(Vec<Value>),
}

impl serde::Serialize for Value {
    /// The JSON form of [`Value::to_json`], written straight to the serializer: a response
    /// serializes its record's values without building a `serde_json::Value` for each.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Text(t) => s.serialize_str(t),
            Self::Integer(i) => s.serialize_i64(*i),
            Self::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Self::Float(_) => s.serialize_unit(),
            Self::Boolean(b) => s.serialize_bool(*b),
            Self::Datetime(t) => t.serialize(s),
            Self::Json(v) => v.serialize(s),
            Self::Reference(id) => id.serialize(s),
            Self::Date(d) => s.collect_str(d),
            Self::Decimal(d) => s.collect_str(d),
            Self::Array(items) => s.collect_seq(items),
        }
    }
}

impl Value {
    /// The JSON form of the value, as the API returns it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Text(s) => J::String(s.clone()),
            Self::Integer(i) => J::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Self::Boolean(b) => J::Bool(*b),
            Self::Datetime(t) => J::String(t.to_string()),
            Self::Json(v) => v.clone(),
            Self::Reference(id) => J::String(id.to_string()),
            Self::Date(d) => J::String(d.to_string()),
            Self::Decimal(d) => J::String(d.to_string()),
            Self::Array(items) => J::Array(items.iter().map(Self::to_json).collect()),
        }
    }

    /// A value of storage class `kind` back from its JSON form ([`Value::to_json`]), as
    /// stored in logs, cursors and exports; `None` when the JSON does not have that form.
    /// No constraint is checked (values were valid when written).
    pub fn from_json(kind: ValueKind, v: &serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        Some(match (kind, v) {
            (_, J::Null) => Self::Null,
            (ValueKind::Text, J::String(s)) => Self::Text(s.clone()),
            (ValueKind::Integer, v) => Self::Integer(v.as_i64()?),
            (ValueKind::Float, v) => Self::Float(v.as_f64()?),
            (ValueKind::Boolean, J::Bool(b)) => Self::Boolean(*b),
            (ValueKind::Datetime, J::String(s)) => Self::Datetime(Timestamp::parse(s).ok()?),
            (ValueKind::Json, v) => Self::Json(v.clone()),
            (ValueKind::Uuid, J::String(s)) => Self::Reference(RecordId::parse(s).ok()?),
            (ValueKind::Date, J::String(s)) => Self::Date(Date::parse(s).ok()?),
            (ValueKind::Decimal(scale), J::String(s)) => {
                Self::Decimal(Decimal::parse(s, scale).ok()?)
            }
            (ValueKind::Array(items), J::Array(list)) => Self::Array(
                list.iter()
                    .map(|item| match (items, item) {
                        (ItemKind::String, J::String(s)) => Some(Self::Text(s.clone())),
                        (ItemKind::Integer, v) => v.as_i64().map(Self::Integer),
                        _ => None,
                    })
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        })
    }
}

/// A stored record of some model: the base fields plus the declared fields' values in the
/// model's declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Server-assigned UUIDv7.
    pub id: RecordId,
    /// The base `name` field (1–255 characters).
    pub name: String,
    /// Lifecycle status.
    pub status: Status,
    /// Set once, by the server, when the record is created.
    pub created_at: Timestamp,
    /// Set by the server on every write.
    pub updated_at: Timestamp,
    /// The user who created the record; `None` for records made by the local admin.
    pub owner_id: Option<Uuid>,
    /// Starts at 1, bumped by exactly one on every write; the basis of the ETag.
    pub version: i64,
    /// Declared fields, in declaration order.
    pub fields: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_id_is_its_uuid() {
        let text = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
        let id = RecordId::parse(text).expect("an id");
        assert_eq!(id.as_uuid(), &Uuid::parse_str(text).expect("a UUID"));
        assert_eq!(id.to_string(), text);
        assert_eq!(serde_json::to_value(id).ok(), Some(serde_json::json!(text)));
    }

    #[test]
    fn a_value_serializes_to_its_json_form() {
        let id = RecordId::parse("0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d").expect("an id");
        let values = [
            Value::Null,
            Value::Text("a \"quoted\" \u{e9}\n".to_owned()),
            Value::Integer(-42),
            Value::Float(2.5),
            Value::Float(f64::NAN),
            Value::Boolean(true),
            Value::Datetime(Timestamp::parse("2026-11-27T20:26:22.123456Z").expect("t")),
            Value::Json(serde_json::json!({"a": [1, null, "x"]})),
            Value::Reference(id),
            Value::Date(Date::parse("2026-02-28").expect("a date")),
            Value::Decimal(Decimal::parse("-10.50", 2).expect("a decimal")),
            Value::Array(vec![
                Value::Text("x".to_owned()),
                Value::Text("y".to_owned()),
            ]),
            Value::Array(vec![Value::Integer(1), Value::Integer(2)]),
            Value::Array(Vec::new()),
        ];
        for v in values {
            assert_eq!(serde_json::to_value(&v).ok(), Some(v.to_json()), "{v:?}");
        }
    }

    #[test]
    fn record_ids() {
        let id = RecordId::new_v7();
        assert_eq!(RecordId::parse(&id.to_string()), Ok(id));
        for bad in [
            "",
            "1",
            "not-a-uuid",
            "0192f1c47a1e7c3a9b2d3f4e5a6b7c8d",
            "' OR 1=1 --",
            "{0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d}",
        ] {
            assert!(RecordId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("Active".parse::<Status>().is_err());
    }
}

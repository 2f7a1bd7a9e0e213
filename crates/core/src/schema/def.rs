//! Validated field definitions: a [`FieldType`] with its constraints, and a [`FieldDef`].

use super::FieldKind;
use super::{ItemKind, Unique, UniqueAmong, ValueKind};
use crate::date::Date;
use crate::decimal::Decimal;
use crate::format::TextFormat;
use crate::names::FieldName;
use crate::names::ModelName;
use crate::policy::FieldAccess;
use crate::record::Value;

/// A compiled `pattern` constraint.
#[derive(Debug, Clone)]
pub struct Pattern(pub(super) regex::Regex);

impl Pattern {
    /// Whether `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }

    /// The expression as declared.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A validated field type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// `string` / `text` / `email` / `url`: length in characters, optional pattern, and
    /// the format an `email` or `url` has.
    Text {
        /// Shortest accepted length.
        min_length: u32,
        /// Longest accepted length.
        max_length: u32,
        /// Optional regular expression.
        pattern: Option<Pattern>,
        /// `email` / `url`: the checked format.
        format: Option<TextFormat>,
    },
    /// `integer` with optional bounds.
    Integer {
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
    /// `float` with optional bounds.
    Float {
        /// Smallest accepted value.
        min: Option<f64>,
        /// Largest accepted value.
        max: Option<f64>,
    },
    /// `boolean`.
    Boolean,
    /// `datetime`.
    Datetime,
    /// `enum` with its values.
    Enum {
        /// The accepted values.
        values: Vec<String>,
    },
    /// `json`.
    Json,
    /// `reference` to another model.
    Reference {
        /// The referenced model.
        model: ModelName,
    },
    /// `date` with optional bounds.
    Date {
        /// Earliest accepted date.
        min: Option<Date>,
        /// Latest accepted date.
        max: Option<Date>,
    },
    /// `decimal` with its scale and optional bounds (at that scale).
    Decimal {
        /// Digits after the point.
        scale: u8,
        /// Smallest accepted value.
        min: Option<Decimal>,
        /// Largest accepted value.
        max: Option<Decimal>,
    },
    /// `array` of strings or integers.
    Array {
        /// What the items are.
        items: ItemKind,
        /// Longest accepted list.
        max_items: u32,
        /// Longest accepted string item, in characters.
        max_length: u32,
    },
}

/// A validated field definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub(super) name: FieldName,
    pub(super) kind: FieldKind,
    pub(super) ty: FieldType,
    pub(super) required: bool,
    pub(super) unique: Unique,
    pub(super) unique_among: UniqueAmong,
    pub(super) indexed: bool,
    pub(super) admin_only: bool,
    pub(super) pii: bool,
    pub(super) default: Option<Value>,
    pub(super) renamed_from: Option<FieldName>,
}

impl FieldDef {
    /// Field name.
    pub fn name(&self) -> &FieldName {
        &self.name
    }
    /// Declared kind.
    pub fn kind(&self) -> FieldKind {
        self.kind
    }
    /// Type with constraints.
    pub fn ty(&self) -> &FieldType {
        &self.ty
    }
    /// Must be present and non-null.
    pub fn required(&self) -> bool {
        self.required
    }
    /// Which records may not share a value.
    pub fn unique(&self) -> Unique {
        self.unique
    }
    /// Which records `unique` counts (all, or live ones only).
    pub fn unique_among(&self) -> UniqueAmong {
        self.unique_among
    }
    /// Backed by an index (unique fields are indexed too).
    pub fn indexed(&self) -> bool {
        self.indexed || self.unique.is_some()
    }
    /// Seen and set by admins only.
    pub fn admin_only(&self) -> bool {
        self.admin_only
    }
    /// Personal data: sealed at rest, redacted in logs and audit diffs, and compared by
    /// equality only (no range, pattern or sort).
    pub fn pii(&self) -> bool {
        self.pii
    }
    /// The value stored when a create or PUT omits the field.
    pub fn default(&self) -> Option<&Value> {
        self.default.as_ref()
    }
    /// The name the field had before, if it was renamed.
    pub fn renamed_from(&self) -> Option<&FieldName> {
        self.renamed_from.as_ref()
    }
    /// Whether a caller with `access` sees this field.
    pub fn visible_to(&self, access: FieldAccess) -> bool {
        access == FieldAccess::All || !self.admin_only
    }
    /// Storage class.
    pub fn value_kind(&self) -> ValueKind {
        match &self.ty {
            FieldType::Text { .. } | FieldType::Enum { .. } => ValueKind::Text,
            FieldType::Integer { .. } => ValueKind::Integer,
            FieldType::Float { .. } => ValueKind::Float,
            FieldType::Boolean => ValueKind::Boolean,
            FieldType::Datetime => ValueKind::Datetime,
            FieldType::Json => ValueKind::Json,
            FieldType::Reference { .. } => ValueKind::Uuid,
            FieldType::Date { .. } => ValueKind::Date,
            FieldType::Decimal { scale, .. } => ValueKind::Decimal(*scale),
            FieldType::Array { items, .. } => ValueKind::Array(*items),
        }
    }
    /// May be used as a sort key.
    pub fn sortable(&self) -> bool {
        self.indexed() && !matches!(self.value_kind(), ValueKind::Json | ValueKind::Array(_))
    }
}

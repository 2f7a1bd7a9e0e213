//! Model declarations (what `plinth.toml` says) and validated model definitions.
//!
//! A [`ModelDecl`] is the plain, serialisable form; [`ModelDef`] is what the rest of Plinth
//! uses, built only through [`Schema::from_decls`], so every definition in use has passed
//! validation (names, types, constraints, references).

use crate::names::ModelName;
use crate::policy::{ModelPolicy, ReadScope};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod def;
mod field;
mod unique;
pub use def::{FieldDef, FieldType, Pattern};
use field::field_def;
pub use field::kind_name;
pub use unique::{Unique, UniqueAmong};

/// Default `max_length` of a `string` field.
pub const DEFAULT_STRING_MAX: u32 = 255;
/// Default `max_length` of a `text` field (the request body limit caps it too).
pub const DEFAULT_TEXT_MAX: u32 = 1_048_576;
/// Default `max_length` of an `email` field (the longest address Plinth accepts).
pub const DEFAULT_EMAIL_MAX: u32 = 254;
/// Default `max_length` of a `url` field.
pub const DEFAULT_URL_MAX: u32 = 2048;
/// Default `scale` of a `decimal` field: two digits after the point.
pub const DEFAULT_SCALE: u8 = 2;
/// Default `max_items` of an `array` field.
pub const DEFAULT_MAX_ITEMS: u32 = 100;
/// Largest `max_items` an `array` field may declare.
pub const MAX_ITEMS_CAP: u32 = 1000;
/// Most values an `enum` field may declare.
const MAX_ENUM_VALUES: usize = 256;
/// Most fields a model may declare.
const MAX_FIELDS: usize = 200;

/// The type of a declared field, as spelled in `plinth.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// Short text, 255 characters unless `max_length` says otherwise.
    String,
    /// Long text.
    Text,
    /// 64-bit signed integer.
    Integer,
    /// 64-bit float (finite).
    Float,
    /// true / false.
    Boolean,
    /// RFC 3339 instant, stored with microsecond precision.
    Datetime,
    /// One of the declared `values`.
    Enum,
    /// Any JSON document.
    Json,
    /// The id of a record of the model named by `model`.
    Reference,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An exact decimal with `scale` digits after the point, a JSON string such as `"12.50"`.
    Decimal,
    /// A list of strings or of integers (`items`), at most `max_items` long.
    Array,
    /// An email address (checked text).
    Email,
    /// An absolute http or https URL (checked text).
    Url,
}

impl FieldKind {
    /// Whether values are text with lengths (and a pattern, and pii).
    pub fn text_like(self) -> bool {
        matches!(self, Self::String | Self::Text | Self::Email | Self::Url)
    }
}

/// What the items of an `array` field are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// Strings (each at most `max_length` characters).
    String,
    /// 64-bit signed integers.
    Integer,
}

/// How a value is stored; two field kinds with the same storage class can change into each
/// other without touching data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Text.
    Text,
    /// 64-bit integer.
    Integer,
    /// 64-bit float.
    Float,
    /// Boolean.
    Boolean,
    /// Microsecond timestamp.
    Datetime,
    /// JSON document.
    Json,
    /// UUID.
    Uuid,
    /// Calendar date.
    Date,
    /// Exact decimal stored as a count of units of 10^-scale, with that scale.
    Decimal(u8),
    /// List of strings or integers.
    Array(ItemKind),
}

/// A bound in a declaration (`min`, `max`): integer or float as written, or a string (a
/// `date`'s `"YYYY-MM-DD"`, or a `decimal` written exactly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// Written as an integer.
    Int(i64),
    /// Written with a fraction or exponent.
    Float(f64),
    /// Written as a string.
    Text(String),
}

impl Bound {
    /// The number, if the bound is one.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            Self::Text(_) => None,
        }
    }

    /// The bound as text: a string as written, a number in its shortest exact form.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

/// One field as declared in `plinth.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDecl {
    /// Column and JSON key.
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// Must be present (and not null) on create and PUT.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// No two records (`true`), or no two records of one owner (`"owner"`), may share a
    /// value (enforced by a unique index).
    #[serde(default, skip_serializing_if = "Unique::is_no")]
    pub unique: Unique,
    /// Which records `unique` counts: `all` (default) or `live` (soft-deleted records do
    /// not hold their values).
    #[serde(default, skip_serializing_if = "UniqueAmong::is_all")]
    pub unique_among: UniqueAmong,
    /// Gets an index; indexed fields can be sort keys.
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    /// Only admins see and set it; for everyone else it does not exist.
    #[serde(default, skip_serializing_if = "is_false")]
    pub admin_only: bool,
    /// Personal data: sealed at rest, redacted in logs and audit diffs, found by equality
    /// only (`string`, `text`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pii: bool,
    /// Shortest accepted text, in characters (`string`, `text`, `email`, `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Longest accepted text, in characters (`string`, `text`, `email`, `url`; each item
    /// of an `array` of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression the text must match somewhere (anchor it with `^…$` for a
    /// whole-value match) (`string`, `email`, `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Smallest accepted value (`integer`, `float`, `decimal`, `date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    /// Largest accepted value (`integer`, `float`, `decimal`, `date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
    /// Digits after the point (`decimal`, 0 to 9, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// What the items are (`array`: `string` or `integer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemKind>,
    /// Longest accepted list (`array`, default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u32>,
    /// The accepted values (`enum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// The referenced model (`reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The value a create (or PUT) that omits the field stores, and that existing records
    /// take when the field is added (any type but `reference`; not `pii`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The field's previous name: the migration renames the column, keeping its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

impl FieldDecl {
    /// The storage class of the field as declared (a `decimal`'s scale and an `array`'s
    /// items included; a scale out of range counts as the default, which validation
    /// refuses anyway).
    pub fn value_kind(&self) -> ValueKind {
        match self.kind {
            FieldKind::String
            | FieldKind::Text
            | FieldKind::Enum
            | FieldKind::Email
            | FieldKind::Url => ValueKind::Text,
            FieldKind::Integer => ValueKind::Integer,
            FieldKind::Float => ValueKind::Float,
            FieldKind::Boolean => ValueKind::Boolean,
            FieldKind::Datetime => ValueKind::Datetime,
            FieldKind::Json => ValueKind::Json,
            FieldKind::Reference => ValueKind::Uuid,
            FieldKind::Date => ValueKind::Date,
            FieldKind::Decimal => ValueKind::Decimal(
                self.scale
                    .and_then(|s| u8::try_from(s).ok())
                    .unwrap_or(DEFAULT_SCALE),
            ),
            FieldKind::Array => ValueKind::Array(self.items.unwrap_or(ItemKind::String)),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_true() -> bool {
    true
}

fn is_all(scope: &ReadScope) -> bool {
    *scope == ReadScope::All
}

/// One model as declared in `plinth.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDecl {
    /// Table name and URL segment: `/api/v1/{name}`.
    pub name: String,
    /// Whether callers without credentials may read (policy override).
    #[serde(default = "default_true")]
    pub guest_read: bool,
    /// Which records signed-in users may read: `all` (default) or `own`.
    #[serde(default, skip_serializing_if = "is_all")]
    pub user_read: ReadScope,
    /// Answer 404 instead of 403 when the caller may not read the record (default true).
    #[serde(default = "default_true")]
    pub hide_forbidden: bool,
    /// Declared fields beyond the base fields.
    #[serde(default)]
    pub fields: Vec<FieldDecl>,
}

impl ModelDecl {
    /// The seed's `resource` model: only the base fields.
    pub fn default_resource() -> Self {
        Self {
            name: "resource".to_owned(),
            guest_read: true,
            user_read: ReadScope::All,
            hide_forbidden: true,
            fields: Vec::new(),
        }
    }
}

/// A validated model definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    name: ModelName,
    fields: Vec<FieldDef>,
    policy: ModelPolicy,
    decl: ModelDecl,
}

impl ModelDef {
    /// Model name (also its table name).
    pub fn name(&self) -> &ModelName {
        &self.name
    }
    /// Declared fields in declaration order.
    pub fn fields(&self) -> &[FieldDef] {
        &self.fields
    }
    /// A declared field and its position.
    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name.as_str() == name)
    }
    /// Access policy overrides.
    pub fn policy(&self) -> &ModelPolicy {
        &self.policy
    }
    /// The declaration this definition was built from.
    pub fn decl(&self) -> &ModelDecl {
        &self.decl
    }
}

/// A declaration problem, located by model (index into the declared list) and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclError {
    /// Index of the offending model in the declaration list.
    pub model_index: usize,
    /// `model "x"` or `model "x", field "y"`.
    pub location: String,
    /// What is wrong.
    pub reason: String,
}

/// The set of models served, validated as a whole (references resolve, names unique).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    models: Vec<Arc<ModelDef>>,
}

impl Schema {
    /// Validates a list of declarations; an empty list means the default `resource` model.
    pub fn from_decls(decls: &[ModelDecl]) -> Result<Self, Vec<DeclError>> {
        let defaults = [ModelDecl::default_resource()];
        let decls = if decls.is_empty() {
            &defaults[..]
        } else {
            decls
        };
        let mut errors = Vec::new();
        let mut models: Vec<Arc<ModelDef>> = Vec::new();
        let names: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
        for (i, decl) in decls.iter().enumerate() {
            let loc = format!("model {:?}", decl.name);
            let err = |location: String, reason: String| DeclError {
                model_index: i,
                location,
                reason,
            };
            let name = match ModelName::parse(&decl.name) {
                Ok(n) => n,
                Err(reason) => {
                    errors.push(err(loc, reason));
                    continue;
                }
            };
            if names[..i].contains(&decl.name.as_str()) {
                errors.push(err(loc, "is declared twice".to_owned()));
                continue;
            }
            if decl.fields.len() > MAX_FIELDS {
                errors.push(err(
                    loc.clone(),
                    format!("declares more than {MAX_FIELDS} fields"),
                ));
            }
            let mut fields = Vec::with_capacity(decl.fields.len());
            for (j, f) in decl.fields.iter().enumerate() {
                let floc = format!("{loc}, field {:?}", f.name);
                if decl.fields[..j].iter().any(|g| g.name == f.name) {
                    errors.push(err(floc, "is declared twice".to_owned()));
                    continue;
                }
                match field_def(f, &names) {
                    Ok(def) => fields.push(def),
                    Err(reason) => errors.push(err(floc, reason)),
                }
            }
            for (j, f) in fields.iter().enumerate() {
                let Some(old) = f.renamed_from() else {
                    continue;
                };
                let reason = if fields.iter().any(|g| g.name() == old) {
                    "is still declared"
                } else if fields[..j].iter().any(|g| g.renamed_from() == Some(old)) {
                    "is the old name of another field too"
                } else {
                    continue;
                };
                errors.push(err(
                    format!("{loc}, field {:?}", f.name().as_str()),
                    format!("renamed_from names {:?}, which {reason}", old.as_str()),
                ));
            }
            let policy = ModelPolicy {
                guest_read: decl.guest_read,
                user_read: decl.user_read,
                hide_forbidden: decl.hide_forbidden,
            };
            models.push(Arc::new(ModelDef {
                name,
                fields,
                policy,
                decl: decl.clone(),
            }));
        }
        if errors.is_empty() {
            Ok(Self { models })
        } else {
            Err(errors)
        }
    }

    /// The models, in declaration order.
    pub fn models(&self) -> &[Arc<ModelDef>] {
        &self.models
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&Arc<ModelDef>> {
        self.models.iter().find(|m| m.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;

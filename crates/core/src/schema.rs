//! Model declarations (what `plinth.toml` says) and validated model definitions.
//!
//! A [`ModelDecl`] is the plain, serialisable form; [`ModelDef`] is what the rest of Plinth
//! uses, built only through [`Schema::from_decls`], so every definition in use has passed
//! validation (names, types, constraints, references).

use crate::names::{FieldName, ModelName};
use crate::policy::{FieldAccess, ModelPolicy, ReadScope};
use crate::record::Value;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod field;
pub mod file;
mod unique;
use field::field_def;
pub use field::kind_name;
pub use file::FileRules;
pub use unique::Unique;

/// Default `max_length` of a `string` field.
pub const DEFAULT_STRING_MAX: u32 = 255;
/// Default `max_length` of a `text` field (the request body limit caps it too).
pub const DEFAULT_TEXT_MAX: u32 = 1_048_576;
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
    /// An uploaded file (its stored name), or a list of them with `multiple`.
    File,
}

impl FieldKind {
    /// The storage class the value lives in.
    pub fn value_kind(self) -> ValueKind {
        match self {
            Self::String | Self::Text | Self::Enum => ValueKind::Text,
            Self::Integer => ValueKind::Integer,
            Self::Float => ValueKind::Float,
            Self::Boolean => ValueKind::Boolean,
            Self::Datetime => ValueKind::Datetime,
            Self::Json => ValueKind::Json,
            Self::Reference => ValueKind::Uuid,
            Self::File => ValueKind::Text,
        }
    }
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
}

/// A number bound in a declaration (`min`, `max`), integer or float as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// Written as an integer.
    Int(i64),
    /// Written with a fraction or exponent.
    Float(f64),
}

impl Bound {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
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
    /// Shortest accepted text, in characters (`string`, `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Longest accepted text, in characters (`string`, `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression the text must match somewhere (anchor it with `^…$` for a
    /// whole-value match) (`string`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Smallest accepted number (`integer`, `float`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Bound>,
    /// Largest accepted number (`integer`, `float`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Bound>,
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
    /// Largest accepted file, in bytes (`file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Accepted types, sniffed from the content (`file`): `image/png`, `image/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_types: Option<Vec<String>>,
    /// A list of files rather than one (`file`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub multiple: bool,
    /// Most files a `multiple` field holds (`file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u32>,
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

/// A compiled `pattern` constraint.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

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
    /// `string` / `text`: length in characters, optional pattern.
    Text {
        /// Shortest accepted length.
        min_length: u32,
        /// Longest accepted length.
        max_length: u32,
        /// Optional regular expression.
        pattern: Option<Pattern>,
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
    /// `file`: stored file names, with the rules uploads must meet.
    File(FileRules),
}

/// A validated field definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    name: FieldName,
    kind: FieldKind,
    ty: FieldType,
    required: bool,
    unique: Unique,
    indexed: bool,
    admin_only: bool,
    pii: bool,
    default: Option<Value>,
    renamed_from: Option<FieldName>,
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
        self.kind.value_kind()
    }
    /// May be used as a sort key.
    pub fn sortable(&self) -> bool {
        self.indexed() && self.value_kind() != ValueKind::Json
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

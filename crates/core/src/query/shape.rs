//! How a list or a read answers, beside what it selects: `count=true` (the total of a
//! list), `fields=` (only those keys in each record) and `expand=` (a referenced record in
//! place of its id).
//!
//! None of these change which records match or what a cursor resumes: they are left out of
//! the cursor fingerprint. `expand` needs the whole schema (a path crosses models), so it is
//! parsed here, beside [`ListQuery::parse_within`], not by it.

use super::ListQuery;
use crate::error::{Error, FieldError};
use crate::names::BASE_FIELDS;
use crate::policy::FieldAccess;
use crate::schema::{FieldType, ModelDef, Schema};
use std::sync::Arc;

/// How many references deep an `expand` path may go (`author.publisher`).
pub const MAX_EXPAND_DEPTH: usize = 2;
/// Most names a `fields` or `expand` value may list.
const MAX_NAMES: usize = 64;
/// How much of a bad name an error repeats.
const SHOWN_CHARS: usize = 64;

/// Whether `key` is one of the parameters that shape an answer rather than select records.
pub fn is_shape(key: &str) -> bool {
    matches!(key, "count" | "fields" | "expand")
}

/// `count=true|false`.
pub(super) fn parse_count(value: &str) -> Result<bool, FieldError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(FieldError::new("count", "must be true or false")),
    }
}

/// The answer's shape: which keys each record keeps, and which references are expanded.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// `fields=`: the only keys each record keeps (base or declared); `None` keeps all.
    pub fields: Option<Vec<String>>,
    /// `expand=`: the reference fields replaced by the records they name, each with the
    /// references expanded inside that record.
    pub expand: Vec<Expand>,
}

/// One expanded reference field, and what is expanded within the records it names.
#[derive(Debug, Clone)]
pub struct Expand {
    /// The reference field's name.
    pub field: String,
    /// Its position among the model's declared fields (the record's `fields` index).
    pub index: usize,
    /// The model it references.
    pub target: Arc<ModelDef>,
    /// Paths one level further, on `target`.
    pub then: Vec<Expand>,
}

impl Shape {
    /// Reads `fields` and `expand` from query pairs (other keys are not its business): every
    /// name must be one `access` can see on `model`; an expanded field must be a reference,
    /// at most [`MAX_EXPAND_DEPTH`] deep, and among `fields` when `fields` is given.
    pub fn parse(
        schema: &Schema,
        model: &ModelDef,
        pairs: &[(String, String)],
        access: FieldAccess,
    ) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let mut shape = Self::default();
        let (mut fields_seen, mut expand_seen) = (false, false);
        for (key, value) in pairs {
            let seen = match key.as_str() {
                "fields" => &mut fields_seen,
                "expand" => &mut expand_seen,
                _ => continue,
            };
            if std::mem::replace(seen, true) {
                errors.push(FieldError::new(key.as_str(), "given more than once"));
                continue;
            }
            let list = match names(value) {
                Ok(list) => list,
                Err(reason) => {
                    errors.push(FieldError::new(key.as_str(), reason));
                    continue;
                }
            };
            if key == "fields" {
                shape.fields = Some(projection(model, &list, access, &mut errors));
                continue;
            }
            for path in list {
                if let Err(reason) = add_path(&mut shape.expand, schema, model, path, access) {
                    errors.push(FieldError::new("expand", reason));
                }
            }
        }
        if let Some(fields) = &shape.fields {
            for e in &shape.expand {
                if !fields.contains(&e.field) {
                    errors.push(FieldError::new(
                        "expand",
                        format!("`{}` is expanded but not among `fields`", e.field),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(shape)
        } else {
            Err(invalid(errors))
        }
    }

    /// Whether a record keeps the key `name`.
    pub fn keeps(&self, name: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|f| f.iter().any(|n| n == name))
    }

    /// Whether the answer is the plain record: every key, no expansion.
    pub fn is_plain(&self) -> bool {
        self.fields.is_none() && self.expand.is_empty()
    }
}

/// Both parses of a list's query string at once, so that one `400` reports every bad
/// parameter, filters and shape alike.
pub fn both(
    query: Result<ListQuery, Error>,
    shape: Result<Shape, Error>,
) -> Result<(ListQuery, Shape), Error> {
    match (query, shape) {
        (Ok(q), Ok(s)) => Ok((q, s)),
        (Err(e @ Error::Denied(_)), _) | (_, Err(e @ Error::Denied(_))) => Err(e),
        (q, s) => {
            let mut details = Vec::new();
            for e in [q.err(), s.err()].into_iter().flatten() {
                if let Error::Invalid { details: d, .. } = e {
                    details.extend(d);
                }
            }
            Err(invalid(details))
        }
    }
}

fn invalid(details: Vec<FieldError>) -> Error {
    let mut names: Vec<&str> = details.iter().map(|e| e.field.as_str()).collect();
    names.dedup();
    Error::invalid(
        format!("invalid query parameters: {}", names.join(", ")),
        details,
    )
}

/// A comma-separated list of one or more non-empty names.
fn names(value: &str) -> Result<Vec<&str>, String> {
    let list: Vec<&str> = value.split(',').collect();
    if list.iter().any(|n| n.is_empty()) {
        return Err("lists one or more names, comma-separated, none empty".to_owned());
    }
    if list.len() > MAX_NAMES {
        return Err(format!("lists at most {MAX_NAMES} names"));
    }
    Ok(list)
}

fn shown(name: &str) -> String {
    name.chars().take(SHOWN_CHARS).collect()
}

/// The names of `list` a record may keep, each a base field or a declared field `access`
/// sees (a hidden field is as unknown as a missing one); duplicates are kept once.
fn projection(
    model: &ModelDef,
    list: &[&str],
    access: FieldAccess,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for name in list {
        let known = BASE_FIELDS.contains(name)
            || model.field(name).is_some_and(|(_, f)| f.visible_to(access));
        if !known {
            errors.push(FieldError::new(
                "fields",
                format!("unknown field `{}`", shown(name)),
            ));
        } else if !kept.iter().any(|k| k == name) {
            kept.push((*name).to_owned());
        }
    }
    kept
}

/// Adds `path` (`author` or `author.publisher`) to `tree`, merging shared prefixes.
fn add_path(
    tree: &mut Vec<Expand>,
    schema: &Schema,
    model: &ModelDef,
    path: &str,
    access: FieldAccess,
) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() > MAX_EXPAND_DEPTH {
        return Err(format!(
            "`{}`: at most {MAX_EXPAND_DEPTH} levels",
            shown(path)
        ));
    }
    let (mut level, mut on) = (tree, model);
    for segment in segments {
        let not_reference = || {
            format!(
                "`{}`: `{}` is not a reference field of `{}`",
                shown(path),
                shown(segment),
                on.name()
            )
        };
        let (index, field) = on
            .field(segment)
            .filter(|(_, f)| f.visible_to(access))
            .ok_or_else(not_reference)?;
        let FieldType::Reference { model: target } = field.ty() else {
            return Err(not_reference());
        };
        let target = schema
            .model(target.as_str())
            .ok_or_else(|| format!("`{}`: `{target}` is not declared", shown(path)))?;
        let at = match level.iter().position(|e| e.field == segment) {
            Some(at) => at,
            None => {
                level.push(Expand {
                    field: segment.to_owned(),
                    index,
                    target: Arc::clone(target),
                    then: Vec::new(),
                });
                level.len() - 1
            }
        };
        let Expand { target, then, .. } = &mut level[at];
        on = target;
        level = then;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

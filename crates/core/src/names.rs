//! Validated identifiers: model and field names.
//!
//! Names end up as SQL identifiers and URL segments, so they are restricted to a small,
//! safe alphabet at parse time; nothing downstream has to escape them.

use std::fmt;

/// Words that cannot name a model because a route or a future feature owns them.
const RESERVED_MODELS: &[&str] = &[
    "admin",
    "alerts",
    "api",
    "audit",
    "auth",
    "batch",
    "events",
    "flags",
    "healthz",
    "keys",
    "metrics",
    "models",
    "openapi",
    "readyz",
    "sqlite_master",
    "users",
    "version",
];

/// The base fields every record has; a declaration may not reuse them.
pub const BASE_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "owner_id",
    "version",
];

/// Words that cannot name a field because list queries and streams use them as parameters
/// (`filter=`, `q=`, `count=`, `fields=`, `expand=`, `after=`), or the engines use them.
const RESERVED_FIELDS: &[&str] = &[
    "cursor",
    "limit",
    "sort",
    "purge",
    "rowid",
    "oid",
    "q",
    "filter",
    "count",
    "fields",
    "expand",
    "after",
    "relevance",
];

/// Longest accepted name: PostgreSQL truncates identifiers at 63 bytes.
pub const MAX_NAME_LEN: usize = 48;

fn check_identifier(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{kind} name must not be empty"));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} name must be at most {MAX_NAME_LEN} characters"
        ));
    }
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "{kind} name {s:?} must start with a lowercase letter and contain only lowercase letters, digits and '_'"
        ));
    }
    Ok(())
}

/// A model name: `^[a-z][a-z0-9_]*$`, at most [`MAX_NAME_LEN`] chars, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName(String);

impl ModelName {
    /// Validates a model name.
    pub fn parse(s: &str) -> Result<Self, String> {
        check_identifier("model", s)?;
        if RESERVED_MODELS.contains(&s) || s.starts_with("sqlite_") || s.starts_with("pg_") {
            return Err(format!("model name {s:?} is reserved"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A declared field name: `^[a-z][a-z0-9_]*$`, not a base field or query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    /// Validates a declared field name.
    pub fn parse(s: &str) -> Result<Self, String> {
        check_identifier("field", s)?;
        if BASE_FIELDS.contains(&s) {
            return Err(format!(
                "field name {s:?} is a base field every record already has"
            ));
        }
        if RESERVED_FIELDS.contains(&s) {
            return Err(format!("field name {s:?} is reserved for list queries"));
        }
        Ok(Self(s.to_owned()))
    }

    /// An earlier name of a field (`renamed_from`): any identifier but a base field, so a
    /// field whose name became reserved can be renamed away from it.
    pub fn parse_former(s: &str) -> Result<Self, String> {
        check_identifier("field", s)?;
        if BASE_FIELDS.contains(&s) {
            return Err(format!(
                "field name {s:?} is a base field every record already has"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(ModelName::parse("resource").is_ok());
        assert!(ModelName::parse("order_items2").is_ok());
        for bad in [
            "",
            "Resource",
            "2x",
            "_x",
            "a-b",
            "a b",
            "x;drop table y",
            "users",
            "sqlite_x",
            "é",
        ] {
            assert!(ModelName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ModelName::parse(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(ModelName::parse(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn events_is_reserved() {
        // `/api/v1/events` is the change feed of several models at once.
        let refused = ModelName::parse("events").expect_err("events accepted as a model");
        assert!(refused.contains("reserved"), "{refused}");
        assert!(ModelName::parse("events_log").is_ok());
    }

    #[test]
    fn field_names() {
        assert_eq!(
            FieldName::parse("email").map(|f| f.to_string()),
            Ok("email".to_owned())
        );
        for bad in [
            "id",
            "name",
            "status",
            "version",
            "owner_id",
            "limit",
            "sort",
            "E",
            "a\"b",
            "a\0",
            "q",
            "filter",
            "count",
            "fields",
            "expand",
            "after",
            "relevance",
        ] {
            assert!(FieldName::parse(bad).is_err(), "{bad:?} accepted");
        }
        // A field named so before the name was reserved can be renamed away from it.
        assert!(FieldName::parse_former("count").is_ok());
        assert!(FieldName::parse_former("id").is_err());
    }
}

//! A flag's request bodies, read field by field (every problem collected), and the flag as
//! the API shows it ([`FlagJson`]).

use crate::accounts::invalid_fields;
use crate::error::ApiError;
use crate::flags::PLINTH_FLAGS;
use plinth_core::flags::{
    Audience, Flag, FlagChanges, FlagKey, MAX_AUDIENCE, MAX_DESCRIPTION, Rollout,
};
use plinth_core::{FieldError, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The fields a body may hold besides `key` (which only a create takes).
const FIELDS: &[&str] = &[
    "description",
    "enabled",
    "rollout",
    "allow",
    "deny",
    "on_from",
    "off_after",
];

/// Keys a flag cannot take: the path `/api/v1/flags/evaluate` is the evaluation.
const RESERVED_KEYS: &[&str] = &["evaluate"];

/// A flag key from a path or a body.
pub(super) fn flag_key(s: &str) -> Result<FlagKey, String> {
    let key = FlagKey::parse(s)?;
    if RESERVED_KEYS.contains(&key.as_str()) {
        return Err(format!("'{key}' is reserved"));
    }
    Ok(key)
}

/// A new flag's key: a `plinth.*` key only if Plinth knows it (a misspelt kill switch would
/// otherwise be stored and do nothing). Keys made before this check stay readable and
/// deletable by path.
fn known_to_plinth(key: FlagKey) -> Result<FlagKey, String> {
    if key.is_reserved() && !PLINTH_FLAGS.contains(&key.as_str()) {
        return Err(format!(
            "'{key}' is not a flag Plinth knows; plinth.* keys are Plinth's own: {}",
            PLINTH_FLAGS.join(", ")
        ));
    }
    Ok(key)
}

/// A body's parts: the key (a create's) and the changes it asks for.
pub(super) struct FlagBody {
    pub(super) key: Option<FlagKey>,
    pub(super) changes: FlagChanges,
}

/// Reads a create's body (`key` required) or a PATCH's (`key` refused: a flag's key is its
/// name for good).
pub(super) fn read(body: &Value, create: bool) -> Result<FlagBody, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))?;
    let mut errors = Vec::new();
    for k in obj.keys() {
        if k == "key" && !create {
            errors.push(FieldError::new(
                "key",
                "cannot be changed; delete the flag and make another",
            ));
        } else if k != "key" && !FIELDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k.chars().take(64).collect::<String>(),
                "unknown field",
            ));
        }
    }
    let mut r = Reader { obj, errors };
    let key = if create {
        match obj.get("key") {
            Some(Value::String(s)) => r.check("key", flag_key(s).and_then(known_to_plinth)),
            None | Some(Value::Null) => r.fail("key", "is required"),
            Some(_) => r.fail("key", "must be a string"),
        }
    } else {
        None
    };
    let changes = FlagChanges {
        description: r.description(),
        enabled: r.get("enabled", "must be true or false", Value::as_bool),
        rollout: r
            .get("rollout", "must be a number (a percentage)", Value::as_f64)
            .and_then(|p| r.check("rollout", Rollout::from_percent(p))),
        allow: r.audience("allow"),
        deny: r.audience("deny"),
        on_from: r.time("on_from"),
        off_after: r.time("off_after"),
    };
    if !r.errors.is_empty() {
        return Err(invalid_fields(r.errors));
    }
    Ok(FlagBody { key, changes })
}

struct Reader<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Reader<'_> {
    fn fail<T>(&mut self, field: &str, reason: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError::new(field, reason));
        None
    }

    fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_or_else(|reason| self.fail(field, reason), Some)
    }

    /// A present, non-null field read by `as`; `reason` when it is of another type.
    fn get<T>(&mut self, field: &str, reason: &str, read: fn(&Value) -> Option<T>) -> Option<T> {
        match self.obj.get(field) {
            None => None,
            Some(v) => read(v).or_else(|| self.fail(field, reason)),
        }
    }

    fn description(&mut self) -> Option<String> {
        let s = self.get("description", "must be a string", |v| {
            v.as_str().map(str::to_owned)
        })?;
        if s.chars().count() > MAX_DESCRIPTION {
            return self.fail(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
        if s.contains('\0') {
            return self.fail("description", "must not contain NUL");
        }
        Some(s)
    }

    fn audience(&mut self, field: &str) -> Option<Vec<Audience>> {
        let list = self.get(field, "must be a list of strings", |v| {
            v.as_array().cloned()
        })?;
        if list.len() > MAX_AUDIENCE {
            return self.fail(field, format!("must hold at most {MAX_AUDIENCE} entries"));
        }
        let mut out = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            match v.as_str().map(Audience::parse) {
                Some(Ok(a)) if !out.contains(&a) => out.push(a),
                Some(Ok(_)) => return self.fail(field, format!("entry {i} is a duplicate")),
                Some(Err(reason)) => return self.fail(field, format!("entry {i} {reason}")),
                None => return self.fail(field, format!("entry {i} must be a string")),
            }
        }
        Some(out)
    }

    /// A schedule bound: RFC 3339, or `null` for none.
    fn time(&mut self, field: &str) -> Option<Option<Timestamp>> {
        match self.obj.get(field) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => match Timestamp::parse(s) {
                Ok(t) => Some(Some(t)),
                Err(_) => self.fail(field, "must be an RFC 3339 date and time, or null"),
            },
            Some(_) => self.fail(field, "must be an RFC 3339 date and time, or null"),
        }
    }
}

/// A flag as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Flag)]
pub(crate) struct FlagJson<'a> {
    /// The flag's name.
    #[schema(pattern = "^[a-z][a-z0-9]*([-_.][a-z0-9]+)*$", max_length = 64)]
    key: &'a str,
    description: &'a str,
    /// The master switch: off is off for everyone.
    enabled: bool,
    /// The percentage of accounts the flag is on for (0 to 100, two decimals at most).
    #[schema(minimum = 0, maximum = 100)]
    rollout: f64,
    /// `user:<uuid>`, `role:admin`, `role:user` or `api_key:<uuid>`: on for them (unless
    /// denied).
    allow: Vec<String>,
    /// The same kinds of entries: off for them, whatever else holds.
    deny: Vec<String>,
    /// Off before this.
    #[schema(format = DateTime)]
    on_from: Option<String>,
    /// Off after this.
    #[schema(format = DateTime)]
    off_after: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(minimum = 1)]
    version: i64,
}

impl<'a> From<&'a Flag> for FlagJson<'a> {
    fn from(f: &'a Flag) -> Self {
        let list = |l: &[Audience]| l.iter().map(ToString::to_string).collect();
        Self {
            key: f.key.as_str(),
            description: &f.description,
            enabled: f.rule.enabled,
            rollout: f.rule.rollout.percent(),
            allow: list(&f.rule.allow),
            deny: list(&f.rule.deny),
            on_from: f.rule.on_from.map(|t| t.to_string()),
            off_after: f.rule.off_after.map(|t| t.to_string()),
            created_at: f.created_at.to_string(),
            updated_at: f.updated_at.to_string(),
            version: f.version,
        }
    }
}

//! List queries: filters, sort, limit and cursor, parsed from query-string pairs.
//!
//! Parsing resolves every name against the model, so the storage layer receives only
//! known columns, known operators and typed values; it never sees client text as SQL.

pub mod expr;
mod matches;
pub mod shape;

use crate::cursor::{Cursor, CursorPos};
use crate::date::Date;
use crate::decimal::Decimal;
use crate::error::{Error, FieldError};
use crate::policy::FieldAccess;
use crate::record::{Record, RecordId, Status, Value};
use crate::schema::{FieldType, ItemKind, ModelDef, ValueKind};
use crate::time::Timestamp;
pub use expr::Expr;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 200;
/// Most values an `in` filter may list.
const MAX_IN_VALUES: usize = 100;
/// Most comparisons one query may carry: its `field[op]=` filters and the comparisons of
/// its `filter=` expression together.
pub const MAX_COMPARISONS: usize = 64;

/// How long a filter value or pattern may be: set by the operator, checked while parsing so
/// that an oversized value is a 400 naming its filter before any database work starts.
///
/// `like` patterns get the tighter bound: matching a pattern costs up to its length times
/// the length of each value it is tried against (both engines backtrack on `*`), and one
/// value's comparison cannot be interrupted half-way, whereas `eq` and the other
/// comparisons cost at most the length of the shorter side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Longest value of an `eq`, `ne`, `lt`, `lte`, `gt`, `gte` filter, and of each value
    /// of an `in`, in characters.
    pub value_max_chars: usize,
    /// Longest `like` pattern, in characters (wildcards included), and longest `~` text.
    pub pattern_max_chars: usize,
    /// Longest `filter=` expression, in characters.
    pub filter_max_chars: usize,
}

impl QueryLimits {
    /// Default longest filter value: room for a long URL or a text excerpt.
    pub const DEFAULT_VALUE_MAX_CHARS: usize = 2048;
    /// Default longest `like` pattern: more than any search phrase.
    pub const DEFAULT_PATTERN_MAX_CHARS: usize = 128;
    /// Default longest `filter=` expression: a page of conditions.
    pub const DEFAULT_FILTER_MAX_CHARS: usize = 2048;
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            value_max_chars: Self::DEFAULT_VALUE_MAX_CHARS,
            pattern_max_chars: Self::DEFAULT_PATTERN_MAX_CHARS,
            filter_max_chars: Self::DEFAULT_FILTER_MAX_CHARS,
        }
    }
}

/// A column a query may name: a base field or a declared one.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    name: String,
    kind: ValueKind,
    nullable: bool,
    base: Option<BaseColumn>,
    field_index: Option<usize>,
    allowed: Option<Vec<String>>,
    pii: bool,
}

/// The base columns every model table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseColumn {
    /// `id`
    Id,
    /// `name`
    Name,
    /// `status`
    Status,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `owner_id`
    OwnerId,
    /// `version`
    Version,
}

impl Column {
    /// Resolves `name` on `model`.
    pub fn resolve(model: &ModelDef, name: &str, access: FieldAccess) -> Option<Self> {
        let base = |b, kind, nullable| Column {
            name: name.to_owned(),
            kind,
            nullable,
            base: Some(b),
            field_index: None,
            allowed: None,
            pii: false,
        };
        Some(match name {
            "id" => base(BaseColumn::Id, ValueKind::Uuid, false),
            "name" => base(BaseColumn::Name, ValueKind::Text, false),
            "status" => Column {
                allowed: Some(Status::ALL.iter().map(|s| s.as_str().to_owned()).collect()),
                ..base(BaseColumn::Status, ValueKind::Text, false)
            },
            "created_at" => base(BaseColumn::CreatedAt, ValueKind::Datetime, false),
            "updated_at" => base(BaseColumn::UpdatedAt, ValueKind::Datetime, false),
            "owner_id" => base(BaseColumn::OwnerId, ValueKind::Uuid, true),
            "version" => base(BaseColumn::Version, ValueKind::Integer, false),
            _ => {
                let (i, f) = model.field(name).filter(|(_, f)| f.visible_to(access))?;
                let allowed = match f.ty() {
                    FieldType::Enum { values } => Some(values.clone()),
                    _ => None,
                };
                Column {
                    name: name.to_owned(),
                    kind: f.value_kind(),
                    nullable: !f.required(),
                    base: None,
                    field_index: Some(i),
                    allowed,
                    pii: f.pii(),
                }
            }
        })
    }

    /// Column name (safe as an SQL identifier: validated at declaration).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Storage class.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }
    /// Whether the column may hold NULL.
    pub fn nullable(&self) -> bool {
        self.nullable
    }
    /// Whether the column is a `pii` field: stored sealed, so only equality (through its
    /// blind index) can be asked of it.
    pub fn pii(&self) -> bool {
        self.pii
    }

    /// This column's value in `record`.
    pub fn value_of(&self, record: &Record) -> Value {
        match (self.base, self.field_index) {
            (Some(BaseColumn::Id), _) => Value::Reference(record.id),
            (Some(BaseColumn::Name), _) => Value::Text(record.name.clone()),
            (Some(BaseColumn::Status), _) => Value::Text(record.status.as_str().to_owned()),
            (Some(BaseColumn::CreatedAt), _) => Value::Datetime(record.created_at),
            (Some(BaseColumn::UpdatedAt), _) => Value::Datetime(record.updated_at),
            (Some(BaseColumn::OwnerId), _) => record
                .owner_id
                .map_or(Value::Null, |u| Value::Reference(RecordId::from_uuid(u))),
            (Some(BaseColumn::Version), _) => Value::Integer(record.version),
            (None, Some(i)) => record.fields.get(i).cloned().unwrap_or(Value::Null),
            (None, None) => Value::Null,
        }
    }

    /// Parses a query-string value for this column.
    pub fn parse_value(&self, s: &str) -> Result<Value, String> {
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| a == s)
        {
            return Err(format!("must be one of {}", allowed.join(", ")));
        }
        match self.kind {
            ValueKind::Text => Ok(Value::Text(s.to_owned())),
            ValueKind::Integer => s
                .parse()
                .map(Value::Integer)
                .map_err(|_| "must be an integer".to_owned()),
            ValueKind::Float => s
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Value::Float)
                .ok_or_else(|| "must be a number".to_owned()),
            ValueKind::Boolean => match s {
                "true" => Ok(Value::Boolean(true)),
                "false" => Ok(Value::Boolean(false)),
                _ => Err("must be true or false".to_owned()),
            },
            ValueKind::Datetime => Timestamp::parse(s).map(Value::Datetime),
            ValueKind::Uuid => RecordId::parse(s).map(Value::Reference),
            ValueKind::Json => Err("json fields cannot be filtered".to_owned()),
            ValueKind::Date => Date::parse(s).map(Value::Date),
            ValueKind::Decimal(scale) => Decimal::parse(s, scale).map(Value::Decimal),
            // An item the list is searched for.
            ValueKind::Array(ItemKind::String) => Ok(Value::Text(s.to_owned())),
            ValueKind::Array(ItemKind::Integer) => s
                .parse()
                .map(Value::Integer)
                .map_err(|_| "must be an integer".to_owned()),
        }
    }

    fn sortable(&self, model: &ModelDef) -> bool {
        match (self.base, self.field_index) {
            (Some(b), _) => matches!(
                b,
                BaseColumn::Name | BaseColumn::CreatedAt | BaseColumn::UpdatedAt
            ),
            (None, Some(i)) => model.fields().get(i).is_some_and(|f| f.sortable()),
            (None, None) => false,
        }
    }
}

/// A comparison operator of a filter (`field[op]=value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// Case-insensitive match where `*` stands for any run of characters.
    Like,
    /// One of a comma-separated list.
    In,
    /// Contains the text, case-insensitively (`~` of a `filter=` expression).
    Contains,
    /// An `array` holding the value.
    Has,
    /// An `array` holding any of a comma-separated list.
    HasAny,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "like" => Self::Like,
            "in" => Self::In,
            "has" => Self::Has,
            "has_any" => Self::HasAny,
            _ => return None,
        })
    }
}

/// One filter condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The column compared.
    pub column: Column,
    /// The comparison.
    pub op: Op,
    /// One value, or several for `in`. For `like`, the pattern text with `*` wildcards.
    pub values: Vec<Value>,
}

/// The sort order of a list: one column, then `id` in the same direction as a tie-break.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// The sort column.
    pub column: Column,
    /// Newest / largest first.
    pub descending: bool,
}

impl Sort {
    /// The `sort` parameter spelling, e.g. `-created_at`.
    pub fn key(&self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.column.name
        )
    }
}

/// A parsed, validated list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Conditions, all of which must hold.
    pub filters: Vec<Filter>,
    /// The `filter=` expression, which must hold too.
    pub expr: Option<Expr>,
    /// Whether the query filters on `status` (if not, deleted records are excluded).
    pub status_filtered: bool,
    /// Order.
    pub sort: Sort,
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
    /// Resume after this position.
    pub after: Option<CursorPos>,
    /// Hash of the filters and sort, bound into cursors so a cursor only resumes its own query.
    pub fingerprint: u64,
    /// `count=true`: the page also carries the total of matching records.
    pub count: bool,
}

impl ListQuery {
    /// Parses query-string pairs under the default [`QueryLimits`].
    pub fn parse(
        model: &ModelDef,
        pairs: &[(String, String)],
        access: FieldAccess,
    ) -> Result<Self, Error> {
        Self::parse_within(model, pairs, access, &QueryLimits::default())
    }

    /// Parses query-string pairs. Every bad parameter is reported, each with a reason; a
    /// filter value longer than `limits` allows, or a `like` pattern holding NUL, is refused
    /// naming its filter.
    ///
    /// Fields the caller cannot see are unknown to it: it can neither filter nor sort on them.
    pub fn parse_within(
        model: &ModelDef,
        pairs: &[(String, String)],
        access: FieldAccess,
        limits: &QueryLimits,
    ) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let mut filters = Vec::new();
        let mut limit = DEFAULT_LIMIT;
        let mut sort = None;
        let mut cursor = None;
        let mut count = false;
        let mut expr = None;
        let mut seen = std::collections::HashSet::new();
        for (key, value) in pairs {
            if matches!(
                key.as_str(),
                "limit" | "sort" | "cursor" | "count" | "filter"
            ) && !seen.insert(key.as_str())
            {
                errors.push(FieldError::new(key.as_str(), "given more than once"));
                continue;
            }
            match key.as_str() {
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    )),
                },
                "sort" => match parse_sort(model, value, access) {
                    Ok(s) => sort = Some(s),
                    Err(reason) => errors.push(FieldError::new("sort", reason)),
                },
                "cursor" => cursor = Some(value.as_str()),
                "count" => match shape::parse_count(value) {
                    Ok(c) => count = c,
                    Err(e) => errors.push(e),
                },
                // Read by `shape::Shape::parse`, which needs the whole schema.
                "fields" | "expand" => {}
                "filter" => match expr::parse(model, value, access, limits) {
                    Ok(e) => expr = Some(e),
                    Err(e) => errors.push(FieldError::new("filter", e.to_string())),
                },
                _ => match parse_filter(model, key, value, access, limits) {
                    Ok(f) => filters.push(f),
                    Err(e) => errors.push(e),
                },
            }
        }
        if filters.len() + expr.as_ref().map_or(0, Expr::comparisons) > MAX_COMPARISONS {
            errors.push(FieldError::new(
                "query",
                format!("at most {MAX_COMPARISONS} comparisons (filters and `filter` together)"),
            ));
        }
        let sort = sort.unwrap_or_else(default_sort);
        let fingerprint = fingerprint(&sort, pairs);
        let after = match cursor {
            None => None,
            Some(c) => match Cursor::decode(c, &sort, fingerprint) {
                Ok(pos) => Some(pos),
                Err(reason) => {
                    errors.push(FieldError::new("cursor", reason));
                    None
                }
            },
        };
        if !errors.is_empty() {
            let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            return Err(Error::invalid(
                format!("invalid query parameters: {}", names.join(", ")),
                errors,
            ));
        }
        let status_filtered = filters
            .iter()
            .any(|f| f.column.base == Some(BaseColumn::Status))
            || expr
                .as_ref()
                .is_some_and(|e| e.any(&|f| f.column.base == Some(BaseColumn::Status)));
        Ok(Self {
            filters,
            expr,
            status_filtered,
            sort,
            limit,
            after,
            fingerprint,
            count,
        })
    }

    /// Whether a filter matches a pattern (`like`): the costly kind of list, which the
    /// engines admit fewer of at once.
    pub fn has_pattern(&self) -> bool {
        self.filters.iter().any(|f| f.op == Op::Like)
            || self
                .expr
                .as_ref()
                .is_some_and(|e| e.any(&|f| f.op == Op::Contains))
    }

    /// Whether `record` passes the filters and the `filter=` expression, as the store's
    /// list would decide it (the status and the caller's scope aside).
    pub fn matches(&self, record: &Record) -> bool {
        self.filters.iter().all(|f| f.matches(record))
            && self.expr.as_ref().is_none_or(|e| e.matches(record))
    }

    /// The cursor that resumes after `last`, the final record of a full page.
    pub fn next_cursor(&self, last: &Record) -> String {
        Cursor::encode(
            &self.sort,
            self.fingerprint,
            &CursorPos {
                value: self.sort.column.value_of(last),
                id: last.id,
            },
        )
    }
}

/// Newest first.
fn default_sort() -> Sort {
    let column = Column {
        name: "created_at".to_owned(),
        kind: ValueKind::Datetime,
        nullable: false,
        base: Some(BaseColumn::CreatedAt),
        field_index: None,
        allowed: None,
        pii: false,
    };
    Sort {
        column,
        descending: true,
    }
}

fn parse_sort(model: &ModelDef, s: &str, access: FieldAccess) -> Result<Sort, String> {
    let (descending, name) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    match Column::resolve(model, name, access) {
        Some(c) if c.pii => Err(format!(
            "{name} is pii (stored encrypted) and cannot be a sort key"
        )),
        Some(c) if c.sortable(model) => Ok(Sort { column: c, descending }),
        _ => Err("must be created_at, updated_at, name or an indexed field, optionally prefixed with '-'".to_owned()),
    }
}

fn parse_filter(
    model: &ModelDef,
    key: &str,
    value: &str,
    access: FieldAccess,
    limits: &QueryLimits,
) -> Result<Filter, FieldError> {
    let shown: String = key.chars().take(64).collect();
    let (name, op) = match key.split_once('[') {
        None => (key, Op::Eq),
        Some((name, rest)) => {
            let op = rest.strip_suffix(']').and_then(Op::parse).ok_or_else(|| {
                FieldError::new(
                    shown.clone(),
                    "unknown operator; use eq, ne, lt, lte, gt, gte, like, in, has or has_any",
                )
            })?;
            (name, op)
        }
    };
    let column = Column::resolve(model, name, access)
        .ok_or_else(|| FieldError::new(shown.clone(), "unknown field"))?;
    let bad = |reason: String| FieldError::new(shown.clone(), reason);
    let array = matches!(column.kind, ValueKind::Array(_));
    if array != matches!(op, Op::Has | Op::HasAny) {
        return Err(bad(if array {
            format!("{name} is an array: only has and has_any apply to it")
        } else {
            "has and has_any apply to array fields only".to_owned()
        }));
    }
    if column.pii && !matches!(op, Op::Eq | Op::Ne | Op::In) {
        return Err(bad(format!(
            "{name} is pii (stored encrypted): only eq, ne and in apply to it"
        )));
    }
    let values = match op {
        Op::Like => {
            if column.kind != ValueKind::Text {
                return Err(bad("like applies to text fields only".to_owned()));
            }
            if value.contains('\0') {
                // SQLite would end the pattern at the NUL (matching far more than asked)
                // and PostgreSQL text cannot hold one: refused alike on both. (An `eq`
                // value may hold NUL: SQLite compares it whole, PostgreSQL refuses it as
                // text it cannot store.)
                return Err(bad(
                    "a like pattern must not contain NUL (\\u0000)".to_owned()
                ));
            }
            let max = limits.pattern_max_chars;
            if value.chars().count() > max {
                return Err(bad(format!("a like pattern is at most {max} characters")));
            }
            vec![Value::Text(value.to_owned())]
        }
        Op::In | Op::HasAny => {
            let parts: Vec<&str> = value.split(',').collect();
            if parts.len() > MAX_IN_VALUES {
                return Err(bad(format!(
                    "{} takes at most {MAX_IN_VALUES} values",
                    if op == Op::In { "in" } else { "has_any" }
                )));
            }
            let max = limits.value_max_chars;
            if parts.iter().any(|p| p.chars().count() > max) {
                return Err(bad(format!("each value is at most {max} characters")));
            }
            parts
                .iter()
                .map(|p| column.parse_value(p))
                .collect::<Result<_, _>>()
                .map_err(bad)?
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte
            if matches!(column.kind, ValueKind::Boolean | ValueKind::Uuid) =>
        {
            return Err(bad(
                "ordering comparisons do not apply to this field".to_owned()
            ));
        }
        _ => {
            let max = limits.value_max_chars;
            if value.chars().count() > max {
                return Err(bad(format!("a filter value is at most {max} characters")));
            }
            vec![column.parse_value(value).map_err(bad)?]
        }
    };
    Ok(Filter { column, op, values })
}

/// FNV-1a over the sort key and the filter pairs (order-insensitive), stable across
/// processes and versions so cursors survive a restart.
fn fingerprint(sort: &Sort, pairs: &[(String, String)]) -> u64 {
    let mut filters: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "limit" | "cursor" | "sort") && !shape::is_shape(k))
        .collect();
    filters.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(sort.key().as_bytes());
    for (k, v) in filters {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    h
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;

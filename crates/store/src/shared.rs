//! What both engines share: the `like` pattern syntax, idempotency-key scopes, the keyset
//! conditions of a page, and which records a writer may reference.

use crate::{StoreError, WriteCtx};
use plinth_core::{ReadScope, Role, Schema};
use std::sync::Arc;
use uuid::Uuid;

/// Which records a writer can see, for checking its references: a user of a model whose
/// users read only their own records may only reference those, or a reference would be an
/// oracle for hidden ids.
#[derive(Debug, Clone)]
pub(crate) struct Visibility {
    /// The schema served (for the referenced models' policies).
    pub(crate) schema: Arc<Schema>,
    /// The writing user, unless it is an admin (who sees everything).
    pub(crate) viewer: Option<Uuid>,
}

impl Visibility {
    /// What the writer of `ctx` may reference in `schema`.
    pub(crate) fn of(ctx: &WriteCtx, schema: Arc<Schema>) -> Self {
        let viewer = if ctx.actor.role() == Role::Admin {
            None
        } else {
            ctx.actor.user_id()
        };
        Self { schema, viewer }
    }

    /// The owner a referenced record of `target` must have, if any.
    pub(crate) fn required_owner(&self, target: &str) -> Option<Uuid> {
        let own_only = self
            .schema
            .model(target)
            .is_some_and(|m| m.policy().user_read == ReadScope::Own);
        self.viewer.filter(|_| own_only)
    }
}

/// A taken email is a conflict on `email`, whatever the engine calls its index.
pub(crate) fn email_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { .. } => StoreError::Conflict {
            field: Some("email".to_owned()),
            reason: "an account with this email already exists".to_owned(),
        },
        other => other,
    }
}

/// A unique index refused a write; `columns` are the ones it covers, as the engine names
/// them. An index on (`owner_id`, field) is a field unique per owner: the answer says the
/// value is taken for this owner only, which reveals nothing about other owners' records.
pub(crate) fn unique_conflict(columns: &[&str]) -> StoreError {
    // A pii field's unique index is on its blind index: the conflict is the field's.
    let named: Vec<&str> = columns
        .iter()
        .map(|c| c.strip_prefix("_blind_").unwrap_or(c))
        .collect();
    match named.as_slice() {
        ["owner_id", field] => StoreError::Conflict {
            field: Some((*field).to_owned()),
            reason: "this owner already has a record with this value".to_owned(),
        },
        [field] => StoreError::Conflict {
            field: Some((*field).to_owned()),
            reason: "another record already has this value".to_owned(),
        },
        _ => StoreError::Conflict {
            field: None,
            reason: "another record already has this value".to_owned(),
        },
    }
}

/// The rows after the cursor row in the sort order, NULLs sorting as largest (last going up,
/// first going down), as conditions in sort order: every row matching one sorts before every
/// row matching the next. Each is a single range of the (column, id) index, so a page deep
/// in the list seeks there instead of reading every row before it; a sort on a nullable
/// column has two parts where the rows after the cursor cross from values to NULLs (going
/// up, after a value) or from NULLs to values (going down, after a NULL). `value` is the
/// placeholder of the row's sort value, `None` when that value was NULL; `id` the
/// placeholder of its id.
pub(crate) fn keyset_parts(
    col: &str,
    nullable: bool,
    descending: bool,
    value: Option<&str>,
    id: &str,
) -> Vec<String> {
    let cmp = if descending { "<" } else { ">" };
    match (value, nullable, descending) {
        // A NULL row row-compares as unknown, so neither form selects one: right going
        // down, where the NULLs came first, and for a column that holds none.
        (Some(v), false, _) | (Some(v), true, true) => {
            vec![format!("({col}, \"id\") {cmp} ({v}, {id})")]
        }
        (Some(v), true, false) => vec![
            format!("({col}, \"id\") {cmp} ({v}, {id})"),
            format!("{col} IS NULL"),
        ],
        (None, _, true) => vec![
            format!("({col} IS NULL AND \"id\" {cmp} {id})"),
            format!("{col} IS NOT NULL"),
        ],
        (None, _, false) => vec![format!("({col} IS NULL AND \"id\" {cmp} {id})")],
    }
}

/// Translates a `like` filter (`*` is the wildcard) into an SQL `LIKE` pattern with `\` as
/// the escape character: SQL's own `%`, `_` and `\` match literally.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// Translates a `contains` text into an SQL `LIKE` pattern (`\` escaping): every character
/// matches itself, anywhere in the value.
pub(crate) fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Idempotency keys are scoped to the principal that sent them.
pub(crate) fn idempotency_scope(ctx: &WriteCtx) -> String {
    match ctx.actor.user_id() {
        Some(u) => u.to_string(),
        None => format!("{:?}", ctx.actor.role()).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::{contains_pattern, keyset_parts, like_pattern};

    #[test]
    fn keyset_parts_treat_null_as_largest() {
        // Row comparisons, which both engines serve from the (column, id) index.
        assert_eq!(
            keyset_parts("c", false, true, Some("?1"), "?2"),
            ["(c, \"id\") < (?1, ?2)"]
        );
        // Going down, NULLs come first: after a value, values only.
        assert_eq!(
            keyset_parts("c", true, true, Some("$1"), "$2"),
            ["(c, \"id\") < ($1, $2)"]
        );
        // Going up, NULLs come last: after a value, the larger values, then every NULL.
        assert_eq!(
            keyset_parts("c", true, false, Some("$1"), "$2"),
            ["(c, \"id\") > ($1, $2)", "c IS NULL"]
        );
        // Going down, after a NULL row: the rest of the NULLs, then every value.
        assert_eq!(
            keyset_parts("c", true, true, None, "$1"),
            ["(c IS NULL AND \"id\" < $1)", "c IS NOT NULL"]
        );
        assert_eq!(
            keyset_parts("c", true, false, None, "$1"),
            ["(c IS NULL AND \"id\" > $1)"]
        );
    }

    #[test]
    fn like_patterns_escape_sql_wildcards() {
        assert_eq!(like_pattern("*foo*"), "%foo%");
        assert_eq!(like_pattern("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(contains_pattern("*50%_off\\"), "%*50\\%\\_off\\\\%");
    }
}

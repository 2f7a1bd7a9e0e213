//! List queries: filters, policy scope and keyset pagination, one statement a page (two
//! where a nullable sort crosses its NULLs).

use super::records::{blind_label, columns, record};
use super::search::{self, Rank};
use super::{Dialect, Exec, Param, Query, SqlRow, blind_column};
use crate::shared::{contains_pattern, keyset_parts, like_pattern};
use crate::{Keys, Page, StoreError};
use plinth_core::query::{Filter, Op};
use plinth_core::schema::ValueKind;
use plinth_core::{ListQuery, ListScope, ModelDef, Value};

/// One page of `model` for `query`, restricted to `scope`: the rows of the first of its
/// statements ([`statement`]), then, while fewer than `limit + 1`, of the next.
pub(crate) async fn list<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Page, StoreError> {
    let at = 7 + model.fields().len();
    let limit = query.limit as usize;
    let mut rows = Vec::new();
    for part in 0.. {
        let Some((q, ranked)) = statement(E::DIALECT, keys, model, query, scope, part)? else {
            break;
        };
        let more = e
            .rows(&q, |r| {
                let rank = match ranked.then(|| r.value(at, ValueKind::Float)).transpose()? {
                    None => None,
                    Some(Value::Float(f)) => Some(f),
                    Some(_) => return Err(StoreError::internal("a search rank is not a number")),
                };
                Ok((record(r, model, keys)?, rank))
            })
            .await?;
        rows.extend(more);
        if rows.len() > limit {
            break;
        }
    }
    let has_more = rows.len() > limit;
    let (mut records, mut ranks): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    records.truncate(limit);
    ranks.truncate(limit);
    Ok(Page {
        records,
        has_more,
        rank: ranks.pop().flatten(),
    })
}

/// The query plans of the statements [`list`] runs for the same arguments, one line per
/// node, in the engine's own words (SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`),
/// with the same parameters bound; a second statement's after a line `then, while the page
/// is short:`.
pub(crate) async fn explain<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Vec<String>, StoreError> {
    let (prefix, column) = E::DIALECT.explain();
    let mut lines = Vec::new();
    for part in 0.. {
        let Some((mut q, _)) = statement(E::DIALECT, keys, model, query, scope, part)? else {
            break;
        };
        q.sql.insert_str(0, prefix);
        q.cached = false;
        q.rows_hint = 8;
        if part > 0 {
            lines.push("then, while the page is short:".to_owned());
        }
        lines.extend(e.rows(&q, |r| r.text(column)).await?);
    }
    Ok(lines)
}

/// Statement `part` of one page (`None` past the last): its SQL and parameters, and whether
/// it selects a search rank after the record's columns.
///
/// A page is one statement, unless the rows after its cursor lie in two index ranges
/// ([`keyset_parts`]: a nullable sort crossing its NULLs): then statement 0 reads the first
/// range and statement 1 the second, each seeking its own start, and the second runs only
/// when the first leaves the page short (near the crossing). One condition ORing the two
/// ranges made both engines read every index entry before the cursor; a `UNION ALL` of
/// them cost every deep page a merge and two sorts.
fn statement<'a>(
    dialect: Dialect,
    keys: &Keys,
    model: &ModelDef,
    query: &'a ListQuery,
    scope: ListScope,
    part: usize,
) -> Result<Option<(Query<'a>, bool)>, StoreError> {
    let mut q = Query::new(dialect);
    let rank = search::rank(&mut q, model, query);
    let sort = &query.sort;
    let col = match &rank {
        Some(Rank { expr, .. }) => expr.clone(),
        None => format!("\"{}\"", sort.column.name()),
    };
    let keyset = match &query.after {
        None if part == 0 => None,
        None => return Ok(None),
        Some(after) => {
            // Marks, replaced by placeholders bound only when the part names them: a
            // statement must carry no parameter it does not use (PostgreSQL cannot type one).
            const ID: &str = "\u{1}id";
            const VALUE: &str = "\u{1}value";
            let value = (!matches!(after.value, Value::Null)).then_some(VALUE);
            let (nullable, descending) = (sort.column.nullable(), sort.descending);
            let mut parts = keyset_parts(&col, nullable, descending, value, ID);
            if rank.is_some() && parts.len() > 1 {
                // A relevance is never NULL; should one be, the rows are still right.
                parts = vec![format!("({})", parts.join(" OR "))];
            }
            let Some(mut text) = parts.into_iter().nth(part) else {
                return Ok(None);
            };
            if text.contains(ID) {
                text = text.replace(ID, &q.placeholder(after.id));
            }
            if text.contains(VALUE) {
                text = text.replace(VALUE, &q.placeholder(&after.value));
            }
            Some(text)
        }
    };
    select(
        &mut q,
        keys,
        model,
        query,
        scope,
        rank.as_ref(),
        keyset.as_ref(),
    )?;
    let dir = if sort.descending { " DESC" } else { " ASC" };
    let nulls = dialect.nulls(sort.column.nullable(), sort.descending);
    q.push(" ORDER BY ")
        .push(&col)
        .push(dir)
        .push(nulls)
        .push(", \"id\"")
        .push(dir)
        .limit(i64::from(query.limit) + 1)
        .cached();
    q.rows_hint = query.limit as usize + 1;
    Ok(Some((q, rank.is_some())))
}

/// `SELECT` of the record's columns (and the search rank) where the list's conditions and
/// `keyset` hold.
fn select<'a>(
    q: &mut Query<'a>,
    keys: &Keys,
    model: &ModelDef,
    query: &'a ListQuery,
    scope: ListScope,
    rank: Option<&Rank>,
    keyset: Option<&String>,
) -> Result<(), StoreError> {
    q.push("SELECT ");
    columns(q, model);
    if let Some(Rank { expr, .. }) = rank {
        q.push(", ").push(expr);
    }
    q.push(" FROM ").ident(model.name().as_str());
    if let Some(Rank { join, .. }) = rank {
        q.push(join);
    }
    let mut conds = conditions(q, keys, model, query, scope)?;
    if let Some(keyset) = keyset {
        conds.next(q).push(keyset);
    }
    Ok(())
}

/// Appends the `WHERE` conditions a list and its count share: status, policy scope,
/// filters and search (not the cursor); further conditions go through the returned
/// [`Conditions`].
pub(crate) fn conditions<'a>(
    q: &mut Query<'a>,
    keys: &Keys,
    model: &ModelDef,
    query: &'a ListQuery,
    scope: ListScope,
) -> Result<Conditions, StoreError> {
    let mut conds = Conditions::default();
    if !query.status_filtered {
        conds.next(q).push("\"status\" <> 'deleted'");
    }
    if let ListScope::OwnedBy(user) = scope {
        conds.next(q).push("\"owner_id\" = ").bind(user);
    }
    for f in &query.filters {
        if f.column.pii() {
            blind_filter(conds.next(q), keys, model, f)?;
        } else {
            filter(conds.next(q), f);
        }
    }
    if let Some(e) = &query.expr {
        super::expr::expr(conds.next(q), keys, model, e)?;
    }
    if let Some(s) = &query.search {
        search::condition(conds.next(q), model, s);
    }
    Ok(conds)
}

/// Joins conditions with `WHERE` and `AND`.
#[derive(Default)]
pub(crate) struct Conditions {
    any: bool,
}

impl Conditions {
    pub(crate) fn next<'q, 'a>(&mut self, q: &'q mut Query<'a>) -> &'q mut Query<'a> {
        q.push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
        q
    }
}

/// An equality filter on a pii field, through its blind index (query validation refuses
/// every other operator on one).
pub(super) fn blind_filter(
    q: &mut Query<'_>,
    keys: &Keys,
    model: &ModelDef,
    f: &Filter,
) -> Result<(), StoreError> {
    let field = model
        .field(f.column.name())
        .map(|(_, field)| field)
        .ok_or_else(|| StoreError::internal("a filter names a missing field"))?;
    let label = blind_label(model, field);
    let mut blinds = Vec::with_capacity(f.values.len());
    for v in &f.values {
        blinds.push(match v {
            Value::Text(t) => Param::Text(keys.blind(&label, t)?.into()),
            _ => Param::Null,
        });
    }
    let col = format!("\"{}\"", blind_column(f.column.name()));
    let d = q.dialect;
    let one = blinds.first().cloned().unwrap_or(Param::Null);
    match f.op {
        Op::Eq => q.push(&col).push(" = ").bind(one),
        Op::Ne => q
            .push(&col)
            .push(" ")
            .push(d.distinct())
            .push(" ")
            .bind(one),
        Op::In => q.push(&col).push(" IN (").bind_all(blinds).push(")"),
        _ => return Err(StoreError::internal("an ordering filter on a pii field")),
    };
    Ok(())
}

pub(super) fn filter<'a>(q: &mut Query<'a>, f: &'a Filter) {
    let col = format!("\"{}\"", f.column.name());
    let one = f.values.first().unwrap_or(&Value::Null);
    let d = q.dialect;
    match f.op {
        Op::Eq => q.push(&col).push(" = ").bind(one),
        // NULL is "not equal" to a value too.
        Op::Ne => q
            .push(&col)
            .push(" ")
            .push(d.distinct())
            .push(" ")
            .bind(one),
        Op::Lt => q.push(&col).push(" < ").bind(one),
        Op::Lte => q.push(&col).push(" <= ").bind(one),
        Op::Gt => q.push(&col).push(" > ").bind(one),
        Op::Gte => q.push(&col).push(" >= ").bind(one),
        Op::Like | Op::Contains => {
            let text = match f.values.first() {
                Some(Value::Text(t)) => t.as_str(),
                _ => "",
            };
            let pattern = if f.op == Op::Like {
                like_pattern
            } else {
                contains_pattern
            };
            match d {
                // SQLite's LIKE folds ASCII only; both sides are folded with Unicode rules
                // by `plinth_fold` (registered on every connection), as PostgreSQL's ILIKE
                // does.
                Dialect::Sqlite => q
                    .push("plinth_fold(")
                    .push(&col)
                    .push(") LIKE ")
                    .bind(Param::Text(pattern(&text.to_lowercase()).into())),
                Dialect::Postgres => q
                    .push(&col)
                    .push(" ILIKE ")
                    .bind(Param::Text(pattern(text).into())),
            }
            .push(" ESCAPE '\\'")
        }
        Op::In => q
            .push(&col)
            .push(" IN (")
            .bind_all(f.values.iter().map(Param::from))
            .push(")"),
        Op::Has | Op::HasAny => has_any(q, &col, &f.values),
    };
}

/// An `array` column holding any of `values`: SQLite looks through the stored JSON array
/// with `json_each`; PostgreSQL asks `jsonb` containment of each one-item array.
fn has_any<'q, 'a>(q: &'q mut Query<'a>, col: &str, values: &'a [Value]) -> &'q mut Query<'a> {
    match q.dialect {
        Dialect::Sqlite => q
            .push("EXISTS (SELECT 1 FROM json_each(")
            .push(col)
            .push(") WHERE \"value\" IN (")
            .bind_all(values.iter().map(Param::from))
            .push("))"),
        Dialect::Postgres => {
            q.push("(");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push(col)
                    .push(" @> ")
                    .bind(Param::Array(std::slice::from_ref(v)))
                    .push("::jsonb");
            }
            q.push(")")
        }
    }
}

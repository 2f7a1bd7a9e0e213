//! List queries: filters, policy scope and keyset pagination as one statement.

use super::records::{blind_label, columns, record};
use super::search::{self, Rank};
use super::{Dialect, Exec, Param, Query, SqlRow, blind_column};
use crate::shared::{contains_pattern, keyset_parts, like_pattern};
use crate::{Keys, Page, StoreError};
use plinth_core::query::{Filter, Op};
use plinth_core::schema::ValueKind;
use plinth_core::{ListQuery, ListScope, ModelDef, Value};

/// One page of `model` for `query`, restricted to `scope`.
pub(crate) async fn list<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Page, StoreError> {
    let (q, ranked) = statement(E::DIALECT, keys, model, query, scope)?;
    let at = 7 + model.fields().len();
    let rows = e
        .rows(&q, |r| {
            let rank = match ranked.then(|| r.value(at, ValueKind::Float)).transpose()? {
                None => None,
                Some(Value::Float(f)) => Some(f),
                Some(_) => return Err(StoreError::internal("a search rank is not a number")),
            };
            Ok((record(r, model, keys)?, rank))
        })
        .await?;
    let has_more = rows.len() > query.limit as usize;
    let (mut records, mut ranks): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    records.truncate(query.limit as usize);
    ranks.truncate(query.limit as usize);
    Ok(Page {
        records,
        has_more,
        rank: ranks.pop().flatten(),
    })
}

/// The query plan of the statement [`list`] runs for the same arguments, one line per
/// node, in the engine's own words (SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`),
/// with the same parameters bound.
pub(crate) async fn explain<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Vec<String>, StoreError> {
    let (mut q, _) = statement(E::DIALECT, keys, model, query, scope)?;
    let (prefix, column) = E::DIALECT.explain();
    q.sql.insert_str(0, prefix);
    q.cached = false;
    q.rows_hint = 8;
    e.rows(&q, |r| r.text(column)).await
}

/// The statement of one page: its SQL and parameters, and whether it selects a search
/// rank after the record's columns.
///
/// After a cursor whose following rows lie in two index ranges ([`keyset_parts`]), the page
/// is the first `limit + 1` rows of the union of each range's own first `limit + 1`, so each
/// part seeks its range; one condition ORing the two would make both engines read every row
/// before the cursor.
fn statement<'a>(
    dialect: Dialect,
    keys: &Keys,
    model: &ModelDef,
    query: &'a ListQuery,
    scope: ListScope,
) -> Result<(Query<'a>, bool), StoreError> {
    let mut q = Query::new(dialect);
    let rank = search::rank(&mut q, model, query);
    let sort = &query.sort;
    let col = match &rank {
        Some(Rank { expr, .. }) => expr.clone(),
        None => format!("\"{}\"", sort.column.name()),
    };
    let mut parts = match &query.after {
        None => Vec::new(),
        Some(after) => {
            let id = q.placeholder(after.id);
            let value = (!matches!(after.value, Value::Null)).then(|| q.placeholder(&after.value));
            let (nullable, descending) = (sort.column.nullable(), sort.descending);
            keyset_parts(&col, nullable, descending, value.as_deref(), &id)
        }
    };
    if rank.is_some() && parts.len() > 1 {
        // A relevance is never NULL; should one be, the rows are still right.
        parts = vec![format!("({})", parts.join(" OR "))];
    }
    let dir = if sort.descending { " DESC" } else { " ASC" };
    let nulls = dialect.nulls(sort.column.nullable(), sort.descending);
    let order = format!(" ORDER BY {col}{dir}{nulls}, \"id\"{dir} LIMIT ");
    let limit = q.placeholder(i64::from(query.limit) + 1);
    if let [one, two] = parts.as_slice() {
        for (i, part) in [one, two].into_iter().enumerate() {
            q.push(if i == 0 { "" } else { " UNION ALL " });
            q.push("SELECT * FROM (");
            select(&mut q, keys, model, query, scope, rank.as_ref(), Some(part))?;
            q.push(&order).push(&limit).push(") AS ");
            q.ident(&format!("_part{i}"));
        }
    } else {
        select(
            &mut q,
            keys,
            model,
            query,
            scope,
            rank.as_ref(),
            parts.first(),
        )?;
    }
    q.push(&order).push(&limit).cached();
    q.rows_hint = query.limit as usize + 1;
    Ok((q, rank.is_some()))
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

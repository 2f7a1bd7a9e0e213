//! List queries: filters, policy scope and keyset pagination as one statement.

use super::records::{columns, record};
use super::{Dialect, Exec, Param, Query};
use crate::shared::{keyset_condition, like_pattern};
use crate::{Page, StoreError};
use plinth_core::query::{Filter, Op};
use plinth_core::{ListQuery, ListScope, ModelDef, Value};

/// One page of `model` for `query`, restricted to `scope`.
pub(crate) async fn list<E: Exec>(
    e: &E,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Page, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ");
    columns(&mut q, model);
    q.push(" FROM ").ident(model.name().as_str());
    let mut conds = Conditions::default();
    if !query.status_filtered {
        conds.next(&mut q).push("\"status\" <> 'deleted'");
    }
    if let ListScope::OwnedBy(user) = scope {
        conds.next(&mut q).push("\"owner_id\" = ").bind(user);
    }
    for f in &query.filters {
        filter(conds.next(&mut q), f);
    }
    let sort = &query.sort;
    let col = format!("\"{}\"", sort.column.name());
    if let Some(after) = &query.after {
        let id = q.placeholder(after.id);
        let value = (!matches!(after.value, Value::Null)).then(|| q.placeholder(&after.value));
        let cond = keyset_condition(
            &col,
            sort.column.nullable(),
            sort.descending,
            value.as_deref(),
            &id,
        );
        conds.next(&mut q).push(&cond);
    }
    let dir = if sort.descending { " DESC" } else { " ASC" };
    let nulls = E::DIALECT.nulls(sort.column.nullable(), sort.descending);
    q.push(" ORDER BY ")
        .push(&col)
        .push(dir)
        .push(nulls)
        .push(", \"id\"")
        .push(dir)
        .push(" LIMIT ")
        .bind(i64::from(query.limit) + 1)
        .cached();
    q.rows_hint = query.limit as usize + 1;
    let mut records = e.rows(&q, |r| record(r, model)).await?;
    let has_more = records.len() > query.limit as usize;
    records.truncate(query.limit as usize);
    Ok(Page { records, has_more })
}

/// Joins conditions with `WHERE` and `AND`.
#[derive(Default)]
struct Conditions {
    any: bool,
}

impl Conditions {
    fn next<'q, 'a>(&mut self, q: &'q mut Query<'a>) -> &'q mut Query<'a> {
        q.push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
        q
    }
}

fn filter<'a>(q: &mut Query<'a>, f: &'a Filter) {
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
        Op::Like => {
            let text = match f.values.first() {
                Some(Value::Text(t)) => t.as_str(),
                _ => "",
            };
            match d {
                // SQLite's LIKE folds ASCII only; both sides are folded with Unicode rules
                // by `plinth_fold` (registered on every connection), as PostgreSQL's ILIKE
                // does.
                Dialect::Sqlite => q
                    .push("plinth_fold(")
                    .push(&col)
                    .push(") LIKE ")
                    .bind(Param::Text(like_pattern(&text.to_lowercase()).into())),
                Dialect::Postgres => q
                    .push(&col)
                    .push(" ILIKE ")
                    .bind(Param::Text(like_pattern(text).into())),
            }
            .push(" ESCAPE '\\'")
        }
        Op::In => q
            .push(&col)
            .push(" IN (")
            .bind_all(f.values.iter().map(Param::from))
            .push(")"),
    };
}

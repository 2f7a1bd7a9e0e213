//! List queries in PostgreSQL: filters, policy scope and keyset pagination in one statement.

use super::errors::map;
use super::values::{Param, columns, param, record, refs};
use crate::shared::{keyset_condition, like_pattern};
use crate::{Page, StoreError};
use deadpool_postgres::GenericClient;
use plinth_core::query::{Filter, Op};
use plinth_core::{ListQuery, ListScope, ModelDef, Value};

struct SqlBuilder {
    conds: Vec<String>,
    params: Vec<Param>,
}

impl SqlBuilder {
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

/// One page of `model` for `query`, restricted to `scope`.
pub(super) async fn list<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<Page, StoreError> {
    let mut q = SqlBuilder {
        conds: Vec::new(),
        params: Vec::new(),
    };
    if !query.status_filtered {
        q.conds.push("\"status\" <> 'deleted'".to_owned());
    }
    if let ListScope::OwnedBy(user) = scope {
        let p = q.param(Box::new(user));
        q.conds.push(format!("\"owner_id\" = {p}"));
    }
    for f in &query.filters {
        let cond = filter(&mut q, f);
        q.conds.push(cond);
    }
    let sort = &query.sort;
    let col = format!("\"{}\"", sort.column.name());
    if let Some(after) = &query.after {
        let id = q.param(Box::new(*after.id.as_uuid()));
        let value = (!matches!(after.value, Value::Null))
            .then(|| q.param(param(&after.value, sort.column.kind())));
        let cond = keyset_condition(
            &col,
            sort.column.nullable(),
            sort.descending,
            value.as_deref(),
            &id,
        );
        q.conds.push(cond);
    }
    let dir = if sort.descending { "DESC" } else { "ASC" };
    let nulls = if sort.descending {
        "NULLS FIRST"
    } else {
        "NULLS LAST"
    };
    let limit = q.param(Box::new(i64::from(query.limit) + 1));
    let where_ = if q.conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", q.conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM \"{}\"{where_} ORDER BY {col} {dir} {nulls}, \"id\" {dir} LIMIT {limit}",
        columns(model),
        model.name()
    );
    let stmt = c.prepare_cached(&sql).await.map_err(map)?;
    let rows = c.query(&stmt, &refs(&q.params)).await.map_err(map)?;
    let mut records = rows
        .iter()
        .map(|r| record(r, model))
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = records.len() > query.limit as usize;
    records.truncate(query.limit as usize);
    Ok(Page { records, has_more })
}

fn filter(q: &mut SqlBuilder, f: &Filter) -> String {
    let col = format!("\"{}\"", f.column.name());
    let kind = f.column.kind();
    let one = |q: &mut SqlBuilder| q.param(param(f.values.first().unwrap_or(&Value::Null), kind));
    match f.op {
        Op::Eq => format!("{col} = {}", one(q)),
        Op::Ne => format!("{col} IS DISTINCT FROM {}", one(q)),
        Op::Lt => format!("{col} < {}", one(q)),
        Op::Lte => format!("{col} <= {}", one(q)),
        Op::Gt => format!("{col} > {}", one(q)),
        Op::Gte => format!("{col} >= {}", one(q)),
        Op::Like => {
            let pattern = match f.values.first() {
                Some(Value::Text(t)) => like_pattern(t),
                _ => String::new(),
            };
            format!("{col} ILIKE {} ESCAPE '\\'", q.param(Box::new(pattern)))
        }
        Op::In => {
            let ps: Vec<String> = f.values.iter().map(|v| q.param(param(v, kind))).collect();
            format!("{col} IN ({})", ps.join(", "))
        }
    }
}

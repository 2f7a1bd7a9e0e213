//! List queries: filters, policy scope and keyset pagination as one SQL statement.

use super::errors::map;
use super::records::{columns, row_to_record, to_sql};
use crate::shared::{keyset_condition, like_pattern};
use crate::{Page, StoreError};
use plinth_core::query::{Filter, Op};
use plinth_core::{ListQuery, ListScope, ModelDef, Value};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

/// Builds SQL text and its parameters together so placeholders always line up.
struct SqlBuilder {
    conds: Vec<String>,
    params: Vec<Sql>,
}

impl SqlBuilder {
    fn param(&mut self, v: Sql) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }
}

/// One page of `model` for `query`, restricted to `scope`.
pub(super) fn list(
    conn: &Connection,
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
        let p = q.param(Sql::Text(user.to_string()));
        q.conds.push(format!("\"owner_id\" = {p}"));
    }
    for f in &query.filters {
        let cond = filter(&mut q, f);
        q.conds.push(cond);
    }
    let sort = &query.sort;
    let col = format!("\"{}\"", sort.column.name());
    if let Some(after) = &query.after {
        let id = q.param(Sql::Text(after.id.to_string()));
        let value = (!matches!(after.value, Value::Null)).then(|| q.param(to_sql(&after.value)));
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
    // NULLs count as larger than every value: last going up, first going down (PostgreSQL's
    // default, made explicit so both engines agree).
    let nulls = match (sort.column.nullable(), sort.descending) {
        (false, _) => "",
        (true, false) => " NULLS LAST",
        (true, true) => " NULLS FIRST",
    };
    let limit = q.param(Sql::Integer(i64::from(query.limit) + 1));
    let where_ = if q.conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", q.conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM \"{}\"{where_} ORDER BY {col} {dir}{nulls}, \"id\" {dir} LIMIT {limit}",
        columns(model),
        model.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    let rows = stmt
        .query_map(params_from_iter(q.params), |r| row_to_record(r, model))
        .map_err(map)?;
    let mut records = Vec::with_capacity(query.limit as usize + 1);
    for row in rows {
        records.push(row.map_err(map)?);
    }
    let has_more = records.len() > query.limit as usize;
    records.truncate(query.limit as usize);
    Ok(Page { records, has_more })
}

fn filter(q: &mut SqlBuilder, f: &Filter) -> String {
    let col = format!("\"{}\"", f.column.name());
    let one = |q: &mut SqlBuilder| q.param(f.values.first().map_or(Sql::Null, to_sql));
    match f.op {
        Op::Eq => format!("{col} = {}", one(q)),
        // NULL is "not equal" to a value too.
        Op::Ne => format!("{col} IS NOT {}", one(q)),
        Op::Lt => format!("{col} < {}", one(q)),
        Op::Lte => format!("{col} <= {}", one(q)),
        Op::Gt => format!("{col} > {}", one(q)),
        Op::Gte => format!("{col} >= {}", one(q)),
        Op::Like => {
            // SQLite's LIKE folds ASCII only; both sides are folded with Unicode rules by
            // `plinth_fold` (registered on every connection), as PostgreSQL's ILIKE does.
            let pattern = match f.values.first() {
                Some(Value::Text(t)) => like_pattern(&t.to_lowercase()),
                _ => String::new(),
            };
            format!(
                "plinth_fold({col}) LIKE {} ESCAPE '\\'",
                q.param(Sql::Text(pattern))
            )
        }
        Op::In => {
            let ps: Vec<String> = f.values.iter().map(|v| q.param(to_sql(v))).collect();
            format!("{col} IN ({})", ps.join(", "))
        }
    }
}

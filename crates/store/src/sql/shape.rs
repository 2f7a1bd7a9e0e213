//! What a list's answer adds beside its page: the total of matching records (`count=true`)
//! and the records its references name (`expand=`), read in one statement per model.

use super::list::conditions;
use super::records::{columns, record};
use super::{Exec, Query, SqlRow};
use crate::{Keys, StoreError};
use plinth_core::{ListQuery, ListScope, ModelDef, Record, RecordId};

/// How many records of `model` match `query`'s status, filters and `scope`, whatever its
/// cursor and limit: the same conditions as the list's page, so they always agree.
pub(crate) async fn count<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    query: &ListQuery,
    scope: ListScope,
) -> Result<u64, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT COUNT(*) FROM ").ident(model.name().as_str());
    conditions(&mut q, keys, model, query, scope)?;
    let n = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
    u64::try_from(n).map_err(|_| StoreError::internal("a negative count"))
}

/// The records of `model` among `ids`, whatever their status, in no particular order; ids
/// with no record are left out. One statement for all of them.
pub(crate) async fn get_many<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    ids: &[RecordId],
) -> Result<Vec<Record>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ");
    columns(&mut q, model);
    q.push(" FROM ")
        .ident(model.name().as_str())
        .push(" WHERE \"id\" IN (")
        .bind_all(ids.iter().map(|id| (*id).into()))
        .push(")");
    q.rows_hint = ids.len();
    e.rows(&q, |r| record(r, model, keys)).await
}

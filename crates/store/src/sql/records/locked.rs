//! Reads a write makes under a lock: the record it changes, as it was, and the records it
//! references.

use super::{record, select};
use crate::shared::Visibility;
use crate::sql::{Exec, Query};
use crate::{Keys, StoreError};
use plinth_core::schema::FieldType;
use plinth_core::{ModelDef, Record, RecordId, Value};

/// One record by id, locked against other writers until the transaction ends: what a write
/// changes from, for its audit entry.
pub(super) async fn get_for_update<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<Record>, StoreError> {
    e.row(&for_update::<E>(model, id), |r| record(r, model, keys))
        .await
}

fn for_update<'q, E: Exec>(model: &ModelDef, id: RecordId) -> Query<'q> {
    let mut q = select::<E>(model);
    q.push(" WHERE \"id\" = ")
        .bind(id)
        .push(E::DIALECT.for_update())
        .cached();
    q
}

/// A record by id as it was, read and locked, then `change` (an `UPDATE … RETURNING` of
/// it) run: both in one round trip on PostgreSQL. Both statements are prepared first, so
/// they are sent in this order and run in it (sent while the read waited for its
/// preparation, the change would run first, and the read find the record changed).
pub(super) async fn read_then_change<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
    change: &Query<'_>,
) -> Result<(Option<Record>, Option<Record>), StoreError> {
    let read = for_update::<E>(model, id);
    let (read_p, change_p) = (e.prepare(&read).await?, e.prepare(change).await?);
    let (before, after) = futures_util::future::join(
        e.row_prepared(&read_p, &read, |r| record(r, model, keys)),
        e.row_prepared(&change_p, change, |r| record(r, model, keys)),
    )
    .await;
    Ok((before?, after?))
}

/// Refuses references to records that do not exist or that the writer cannot see; the
/// referenced rows stay locked against deletion until the write commits.
pub(super) async fn check_references<'v, E: Exec>(
    e: &E,
    vis: &Visibility,
    model: &ModelDef,
    values: impl Iterator<Item = (usize, &'v Value)>,
) -> Result<(), StoreError> {
    for (i, v) in values {
        let (Some(f), Value::Reference(id)) = (model.fields().get(i), v) else {
            continue;
        };
        let FieldType::Reference { model: target } = f.ty() else {
            continue;
        };
        let mut q = Query::new(E::DIALECT);
        q.push("SELECT 1 FROM ")
            .ident(target.as_str())
            .push(" WHERE \"id\" = ")
            .bind(*id);
        if let Some(viewer) = vis.required_owner(target.as_str()) {
            q.push(" AND \"owner_id\" = ").bind(viewer);
        }
        q.push(E::DIALECT.for_key_share());
        if e.row(&q, |_| Ok(())).await?.is_none() {
            return Err(StoreError::InvalidReference {
                field: f.name().to_string(),
            });
        }
    }
    Ok(())
}

//! Reads and writes of single records in PostgreSQL. Writes run in a transaction each;
//! conditional writes are single statements guarded by `version`, so concurrent writers on
//! any instance get exactly one winner.

use super::errors::map;
use super::values::{Param, columns, param, record, refs, ts};
use crate::shared::Visibility;
use crate::{Created, IdempotencyClaim, StoreError};
use deadpool_postgres::GenericClient;
use plinth_core::schema::FieldType;
use plinth_core::{Draft, ModelDef, Patch, Record, RecordId, Schema, Status, Timestamp, Value};
use uuid::Uuid;

/// One record by id, whatever its status.
pub(super) async fn get<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {} FROM \"{}\" WHERE \"id\" = $1",
        columns(model),
        model.name()
    );
    let stmt = c.prepare_cached(&sql).await.map_err(map)?;
    let row = c.query_opt(&stmt, &[id.as_uuid()]).await.map_err(map)?;
    row.map(|r| record(&r, model)).transpose()
}

async fn check_references<'a, C: GenericClient>(
    c: &C,
    vis: &Visibility,
    model: &ModelDef,
    values: impl Iterator<Item = (usize, &'a Value)>,
) -> Result<(), StoreError> {
    for (i, v) in values {
        let (Some(f), Value::Reference(id)) = (model.fields().get(i), v) else {
            continue;
        };
        let FieldType::Reference { model: target } = f.ty() else {
            continue;
        };
        let found = match vis.required_owner(target.as_str()) {
            None => c
                .query_opt(
                    &format!("SELECT 1 FROM \"{target}\" WHERE \"id\" = $1 FOR KEY SHARE"),
                    &[id.as_uuid()],
                )
                .await
                .map_err(map)?,
            Some(viewer) => c
                .query_opt(
                    &format!("SELECT 1 FROM \"{target}\" WHERE \"id\" = $1 AND \"owner_id\" = $2 FOR KEY SHARE"),
                    &[id.as_uuid(), &viewer],
                )
                .await
                .map_err(map)?,
        };
        if found.is_none() {
            return Err(StoreError::InvalidReference {
                field: f.name().to_string(),
            });
        }
    }
    Ok(())
}

/// Inserts a record, or replays an earlier create with the same idempotency key. The key
/// row is inserted first: a concurrent create with the same key (on any instance) waits on
/// it and then replays.
#[allow(clippy::too_many_arguments)]
pub(super) async fn create<C: GenericClient>(
    tx: &C,
    vis: &Visibility,
    model: &ModelDef,
    draft: Draft,
    owner: Option<Uuid>,
    now: Timestamp,
    idempotency: Option<(String, IdempotencyClaim)>,
) -> Result<Created, StoreError> {
    let m = model.name().as_str();
    let id = RecordId::new_v7();
    if let Some((scope, claim)) = &idempotency {
        let inserted = tx
            .execute(
                "INSERT INTO _plinth_idempotency (model, scope, key, body_digest, record_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&m, scope, &claim.key, &claim.body_digest, id.as_uuid(), &ts(now)],
            )
            .await
            .map_err(map)?;
        if inserted == 0 {
            let row = tx
                .query_one(
                    "SELECT body_digest, record_id FROM _plinth_idempotency WHERE model = $1 AND scope = $2 AND key = $3",
                    &[&m, scope, &claim.key],
                )
                .await
                .map_err(map)?;
            let conflict = |reason: &str| StoreError::Conflict {
                field: Some("Idempotency-Key".to_owned()),
                reason: reason.to_owned(),
            };
            if row.get::<_, String>(0) != claim.body_digest {
                return Err(conflict("was already used with a different request body"));
            }
            return match get(tx, model, RecordId::from_uuid(row.get(1))).await? {
                Some(record) => Ok(Created {
                    record,
                    replayed: true,
                }),
                None => Err(conflict("was used for a record that has since been purged")),
            };
        }
    }
    check_references(tx, vis, model, draft.fields.iter().enumerate()).await?;
    let record = Record {
        id,
        name: draft.name,
        status: draft.status,
        created_at: now,
        updated_at: now,
        owner_id: owner,
        version: 1,
        fields: draft.fields,
    };
    let placeholders: Vec<String> = (1..=7 + record.fields.len())
        .map(|i| format!("${i}"))
        .collect();
    let sql = format!(
        "INSERT INTO \"{m}\" ({}) VALUES ({})",
        columns(model),
        placeholders.join(", ")
    );
    let mut params: Vec<Param> = vec![
        Box::new(*record.id.as_uuid()),
        Box::new(record.name.clone()),
        Box::new(record.status.as_str().to_owned()),
        Box::new(ts(now)),
        Box::new(ts(now)),
        Box::new(owner),
        Box::new(1i64),
    ];
    params.extend(
        model
            .fields()
            .iter()
            .zip(&record.fields)
            .map(|(f, v)| param(v, f.value_kind())),
    );
    let stmt = tx.prepare_cached(&sql).await.map_err(map)?;
    tx.execute(&stmt, &refs(&params)).await.map_err(map)?;
    Ok(Created {
        record,
        replayed: false,
    })
}

/// Inserts a record as given (import).
pub(super) async fn insert_exact<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    record: &Record,
) -> Result<(), StoreError> {
    let placeholders: Vec<String> = (1..=7 + record.fields.len())
        .map(|i| format!("${i}"))
        .collect();
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        model.name(),
        columns(model),
        placeholders.join(", ")
    );
    let mut params: Vec<Param> = vec![
        Box::new(*record.id.as_uuid()),
        Box::new(record.name.clone()),
        Box::new(record.status.as_str().to_owned()),
        Box::new(ts(record.created_at)),
        Box::new(ts(record.updated_at)),
        Box::new(record.owner_id),
        Box::new(record.version),
    ];
    params.extend(
        model
            .fields()
            .iter()
            .zip(&record.fields)
            .map(|(f, v)| param(v, f.value_kind())),
    );
    c.execute(&sql, &refs(&params)).await.map_err(map)?;
    Ok(())
}

/// Applies a patch to a live record.
#[allow(clippy::too_many_arguments)]
pub(super) async fn update<C: GenericClient>(
    tx: &C,
    vis: &Visibility,
    model: &ModelDef,
    id: RecordId,
    patch: &Patch,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<Record, StoreError> {
    check_references(tx, vis, model, patch.changes()).await?;
    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut set = |col: &str, p: Param, params: &mut Vec<Param>| {
        params.push(p);
        sets.push(format!("\"{col}\" = ${}", params.len()));
    };
    if let Some(name) = &patch.name {
        set("name", Box::new(name.clone()), &mut params);
    }
    if let Some(status) = patch.status {
        set("status", Box::new(status.as_str().to_owned()), &mut params);
    }
    for (f, v) in model.fields().iter().zip(&patch.fields) {
        if let Some(v) = v {
            set(f.name().as_str(), param(v, f.value_kind()), &mut params);
        }
    }
    set("updated_at", Box::new(ts(now)), &mut params);
    params.push(Box::new(*id.as_uuid()));
    let mut sql = format!(
        "UPDATE \"{}\" SET {}, \"version\" = \"version\" + 1 WHERE \"id\" = ${} AND \"status\" <> 'deleted'",
        model.name(),
        sets.join(", "),
        params.len()
    );
    if let Some(v) = expected {
        params.push(Box::new(v));
        sql.push_str(&format!(" AND \"version\" = ${}", params.len()));
    }
    sql.push_str(&format!(" RETURNING {}", columns(model)));
    let stmt = tx.prepare_cached(&sql).await.map_err(map)?;
    match tx.query_opt(&stmt, &refs(&params)).await.map_err(map)? {
        Some(row) => record(&row, model),
        None => Err(missed_live_write(tx, model, id, expected, deleted_conflict()).await),
    }
}

fn deleted_conflict() -> StoreError {
    StoreError::Conflict {
        field: None,
        reason: "the record is deleted; an admin can restore it".to_owned(),
    }
}

async fn state<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<(Status, i64)>, StoreError> {
    let sql = format!(
        "SELECT \"status\", \"version\" FROM \"{}\" WHERE \"id\" = $1",
        model.name()
    );
    let row = c.query_opt(&sql, &[id.as_uuid()]).await.map_err(map)?;
    row.map(|r| {
        Ok((
            r.get::<_, String>(0)
                .parse()
                .map_err(StoreError::internal)?,
            r.get(1),
        ))
    })
    .transpose()
}

async fn missed_live_write<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
    deleted: StoreError,
) -> StoreError {
    match state(c, model, id).await {
        Err(e) => e,
        Ok(None) => StoreError::NotFound,
        Ok(Some((Status::Deleted, _))) => deleted,
        Ok(Some((_, current))) => match expected {
            Some(expected) if expected != current => StoreError::Stale { expected, current },
            _ => StoreError::internal("conditional write matched no row for no known reason"),
        },
    }
}

/// Soft delete (`restore == false`) or restore.
pub(super) async fn set_status<C: GenericClient>(
    c: &C,
    model: &ModelDef,
    id: RecordId,
    restore: bool,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<Record, StoreError> {
    let (to, guard) = if restore {
        ("active", "\"status\" = 'deleted'")
    } else {
        ("deleted", "\"status\" <> 'deleted'")
    };
    let mut sql = format!(
        "UPDATE \"{}\" SET \"status\" = '{to}', \"updated_at\" = $1, \"version\" = \"version\" + 1 WHERE \"id\" = $2 AND {guard}",
        model.name()
    );
    let mut params: Vec<Param> = vec![Box::new(ts(now)), Box::new(*id.as_uuid())];
    if let Some(v) = expected {
        sql.push_str(" AND \"version\" = $3");
        params.push(Box::new(v));
    }
    sql.push_str(&format!(" RETURNING {}", columns(model)));
    let stmt = c.prepare_cached(&sql).await.map_err(map)?;
    if let Some(row) = c.query_opt(&stmt, &refs(&params)).await.map_err(map)? {
        return record(&row, model);
    }
    if restore {
        return Err(match state(c, model, id).await? {
            None => StoreError::NotFound,
            Some(_) => StoreError::Conflict {
                field: None,
                reason: "the record is not deleted".to_owned(),
            },
        });
    }
    Err(missed_live_write(c, model, id, expected, StoreError::NotFound).await)
}

/// Removes a record for good, unless another record references it.
pub(super) async fn purge<C: GenericClient>(
    tx: &C,
    schema: &Schema,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    let m = model.name().as_str();
    let row = tx
        .query_opt(
            &format!("SELECT \"version\" FROM \"{m}\" WHERE \"id\" = $1 FOR UPDATE"),
            &[id.as_uuid()],
        )
        .await
        .map_err(map)?;
    let current: i64 = row.ok_or(StoreError::NotFound)?.get(0);
    if let Some(expected) = expected.filter(|e| *e != current) {
        return Err(StoreError::Stale { expected, current });
    }
    for other in schema.models() {
        for f in other.fields() {
            if !matches!(f.ty(), FieldType::Reference { model } if model.as_str() == m) {
                continue;
            }
            let sql = format!(
                "SELECT 1 FROM \"{}\" WHERE \"{}\" = $1 LIMIT 1",
                other.name(),
                f.name()
            );
            if tx
                .query_opt(&sql, &[id.as_uuid()])
                .await
                .map_err(map)?
                .is_some()
            {
                return Err(StoreError::Conflict {
                    field: None,
                    reason: format!(
                        "the record is still referenced by {}.{}",
                        other.name(),
                        f.name()
                    ),
                });
            }
        }
    }
    tx.execute(
        &format!("DELETE FROM \"{m}\" WHERE \"id\" = $1"),
        &[id.as_uuid()],
    )
    .await
    .map_err(map)?;
    tx.execute(
        "DELETE FROM _plinth_idempotency WHERE model = $1 AND record_id = $2",
        &[&m, id.as_uuid()],
    )
    .await
    .map_err(map)?;
    Ok(())
}

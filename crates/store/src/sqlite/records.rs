//! Reads and writes of single records, and the mapping between rows and [`Record`]s.

use super::errors::map;
use crate::shared::Visibility;
use crate::{Created, IdempotencyClaim, StoreError};
use plinth_core::schema::{FieldType, ValueKind};
use plinth_core::{Draft, ModelDef, Patch, Record, RecordId, Schema, Status, Timestamp, Value};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use uuid::Uuid;

/// The select list of a model: base columns, then declared fields in order.
pub(super) fn columns(model: &ModelDef) -> String {
    let mut cols = String::from(
        "\"id\", \"name\", \"status\", \"created_at\", \"updated_at\", \"owner_id\", \"version\"",
    );
    for f in model.fields() {
        cols.push_str(", \"");
        cols.push_str(f.name().as_str());
        cols.push('"');
    }
    cols
}

/// A domain value as an SQLite value.
pub(super) fn to_sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Text(s) => Sql::Text(s.clone()),
        Value::Integer(i) => Sql::Integer(*i),
        Value::Float(f) => Sql::Real(*f),
        Value::Boolean(b) => Sql::Integer(i64::from(*b)),
        Value::Datetime(t) => Sql::Integer(t.as_micros()),
        Value::Json(j) => Sql::Text(j.to_string()),
        Value::Reference(id) => Sql::Text(id.to_string()),
    }
}

fn bad_row(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Null)
}

fn read_value(row: &Row<'_>, idx: usize, kind: ValueKind) -> rusqlite::Result<Value> {
    let v = row.get_ref(idx)?;
    Ok(match (v, kind) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Text(_), ValueKind::Text) => Value::Text(row.get(idx)?),
        (ValueRef::Integer(i), ValueKind::Integer) => Value::Integer(i),
        (ValueRef::Integer(i), ValueKind::Float) =>
        {
            #[allow(clippy::cast_precision_loss)]
            Value::Float(i as f64)
        }
        (ValueRef::Real(f), ValueKind::Float) => Value::Float(f),
        (ValueRef::Integer(i), ValueKind::Boolean) => Value::Boolean(i != 0),
        (ValueRef::Integer(i), ValueKind::Datetime) => Value::Datetime(
            Timestamp::from_micros(i).ok_or_else(|| bad_row("timestamp out of range"))?,
        ),
        (ValueRef::Text(t), ValueKind::Json) => {
            Value::Json(serde_json::from_slice(t).map_err(|_| bad_row("json"))?)
        }
        (ValueRef::Text(t), ValueKind::Uuid) => Value::Reference(parse_id(t)?),
        _ => return Err(bad_row("unexpected storage class")),
    })
}

fn parse_id(t: &[u8]) -> rusqlite::Result<RecordId> {
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| RecordId::parse(s).ok())
        .ok_or_else(|| bad_row("uuid"))
}

/// Reads a row selected with [`columns`].
pub(super) fn row_to_record(row: &Row<'_>, model: &ModelDef) -> rusqlite::Result<Record> {
    let id = parse_id(row.get_ref(0)?.as_bytes()?)?;
    let status: String = row.get(2)?;
    let ts = |i| -> rusqlite::Result<Timestamp> {
        Timestamp::from_micros(row.get(i)?).ok_or_else(|| bad_row("timestamp out of range"))
    };
    let owner_id = match row.get_ref(5)? {
        ValueRef::Null => None,
        v => Some(*parse_id(v.as_bytes()?)?.as_uuid()),
    };
    let mut fields = Vec::with_capacity(model.fields().len());
    for (i, f) in model.fields().iter().enumerate() {
        fields.push(read_value(row, 7 + i, f.value_kind())?);
    }
    Ok(Record {
        id,
        name: row.get(1)?,
        status: status.parse().map_err(|_| bad_row("status"))?,
        created_at: ts(3)?,
        updated_at: ts(4)?,
        owner_id,
        version: row.get(6)?,
        fields,
    })
}

/// One record by id, whatever its status.
pub(super) fn get(
    conn: &Connection,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {} FROM \"{}\" WHERE \"id\" = ?1",
        columns(model),
        model.name()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map)?;
    stmt.query_row([id.to_string()], |r| row_to_record(r, model))
        .optional()
        .map_err(map)
}

fn check_references<'a>(
    conn: &Connection,
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
            None => conn
                .prepare_cached(&format!("SELECT 1 FROM \"{target}\" WHERE \"id\" = ?1"))
                .and_then(|mut s| s.query_row([id.to_string()], |_| Ok(())).optional()),
            Some(viewer) => conn
                .prepare_cached(&format!(
                    "SELECT 1 FROM \"{target}\" WHERE \"id\" = ?1 AND \"owner_id\" = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row([id.to_string(), viewer.to_string()], |_| Ok(()))
                        .optional()
                }),
        }
        .map_err(map)?;
        if found.is_none() {
            return Err(StoreError::InvalidReference {
                field: f.name().to_string(),
            });
        }
    }
    Ok(())
}

/// Inserts a record (or replays an earlier create with the same idempotency key).
pub(super) fn create(
    tx: &Connection,
    vis: &Visibility,
    model: &ModelDef,
    draft: Draft,
    owner: Option<Uuid>,
    now: Timestamp,
    idempotency: Option<(String, IdempotencyClaim)>,
) -> Result<Created, StoreError> {
    let m = model.name().as_str();
    if let Some((scope, claim)) = &idempotency {
        let earlier: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT body_digest, record_id FROM _plinth_idempotency WHERE model = ?1 AND scope = ?2 AND key = ?3",
            )
            .and_then(|mut s| s.query_row([m, scope, &claim.key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(map)?;
        if let Some((digest, record_id)) = earlier {
            let conflict = |reason: &str| StoreError::Conflict {
                field: Some("Idempotency-Key".to_owned()),
                reason: reason.to_owned(),
            };
            if digest != claim.body_digest {
                return Err(conflict("was already used with a different request body"));
            }
            let id = RecordId::parse(&record_id).map_err(StoreError::internal)?;
            return match get(tx, model, id)? {
                Some(record) => Ok(Created {
                    record,
                    replayed: true,
                }),
                None => Err(conflict("was used for a record that has since been purged")),
            };
        }
    }
    check_references(tx, vis, model, draft.fields.iter().enumerate())?;
    let record = Record {
        id: RecordId::new_v7(),
        name: draft.name,
        status: draft.status,
        created_at: now,
        updated_at: now,
        owner_id: owner,
        version: 1,
        fields: draft.fields,
    };
    let placeholders: Vec<String> = (1..=7 + record.fields.len())
        .map(|i| format!("?{i}"))
        .collect();
    let sql = format!(
        "INSERT INTO \"{m}\" ({}) VALUES ({})",
        columns(model),
        placeholders.join(", ")
    );
    let mut values = vec![
        Sql::Text(record.id.to_string()),
        Sql::Text(record.name.clone()),
        Sql::Text(record.status.as_str().to_owned()),
        Sql::Integer(now.as_micros()),
        Sql::Integer(now.as_micros()),
        owner.map_or(Sql::Null, |u| Sql::Text(u.to_string())),
        Sql::Integer(1),
    ];
    values.extend(record.fields.iter().map(to_sql));
    tx.prepare_cached(&sql)
        .and_then(|mut s| s.execute(params_from_iter(values)))
        .map_err(map)?;
    if let Some((scope, claim)) = idempotency {
        tx.prepare_cached(
            "INSERT INTO _plinth_idempotency (model, scope, key, body_digest, record_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![m, scope, claim.key, claim.body_digest, record.id.to_string(), now.as_micros()])
        })
        .map_err(map)?;
    }
    Ok(Created {
        record,
        replayed: false,
    })
}

/// Inserts a record as given (import).
pub(super) fn insert_exact(
    tx: &Connection,
    model: &ModelDef,
    record: &Record,
) -> Result<(), StoreError> {
    let placeholders: Vec<String> = (1..=7 + record.fields.len())
        .map(|i| format!("?{i}"))
        .collect();
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        model.name(),
        columns(model),
        placeholders.join(", ")
    );
    let mut values = vec![
        Sql::Text(record.id.to_string()),
        Sql::Text(record.name.clone()),
        Sql::Text(record.status.as_str().to_owned()),
        Sql::Integer(record.created_at.as_micros()),
        Sql::Integer(record.updated_at.as_micros()),
        record
            .owner_id
            .map_or(Sql::Null, |u| Sql::Text(u.to_string())),
        Sql::Integer(record.version),
    ];
    values.extend(record.fields.iter().map(to_sql));
    tx.prepare_cached(&sql)
        .and_then(|mut s| s.execute(params_from_iter(values)))
        .map_err(map)?;
    Ok(())
}

/// Applies a patch to a live record.
pub(super) fn update(
    tx: &Connection,
    vis: &Visibility,
    model: &ModelDef,
    id: RecordId,
    patch: &Patch,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<Record, StoreError> {
    check_references(tx, vis, model, patch.changes())?;
    let mut sets = Vec::new();
    let mut values = Vec::new();
    if let Some(name) = &patch.name {
        sets.push("\"name\"".to_owned());
        values.push(Sql::Text(name.clone()));
    }
    if let Some(status) = patch.status {
        sets.push("\"status\"".to_owned());
        values.push(Sql::Text(status.as_str().to_owned()));
    }
    for (f, v) in model.fields().iter().zip(&patch.fields) {
        if let Some(v) = v {
            sets.push(format!("\"{}\"", f.name()));
            values.push(to_sql(v));
        }
    }
    sets.push("\"updated_at\"".to_owned());
    values.push(Sql::Integer(now.as_micros()));
    let assignments: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let n = values.len();
    values.push(Sql::Text(id.to_string()));
    let mut sql = format!(
        "UPDATE \"{}\" SET {}, \"version\" = \"version\" + 1 WHERE \"id\" = ?{} AND \"status\" <> 'deleted'",
        model.name(),
        assignments.join(", "),
        n + 1
    );
    if let Some(v) = expected {
        sql.push_str(&format!(" AND \"version\" = ?{}", n + 2));
        values.push(Sql::Integer(v));
    }
    sql.push_str(&format!(" RETURNING {}", columns(model)));
    let updated = tx
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(values), |r| row_to_record(r, model))
                .optional()
        })
        .map_err(map)?;
    match updated {
        Some(record) => Ok(record),
        None => Err(missed_live_write(
            tx,
            model,
            id,
            expected,
            StoreError::Conflict {
                field: None,
                reason: "the record is deleted; an admin can restore it".to_owned(),
            },
        )),
    }
}

/// The status and version of a record, to explain why a conditional write matched no row.
fn state(
    conn: &Connection,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<(Status, i64)>, StoreError> {
    let sql = format!(
        "SELECT \"status\", \"version\" FROM \"{}\" WHERE \"id\" = ?1",
        model.name()
    );
    let row: Option<(String, i64)> = conn
        .query_row(&sql, [id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(map)?;
    row.map(|(s, v)| Ok((s.parse().map_err(StoreError::internal)?, v)))
        .transpose()
}

/// The error for a write to a live record (update, delete) that matched no row.
fn missed_live_write(
    conn: &Connection,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
    deleted: StoreError,
) -> StoreError {
    match state(conn, model, id) {
        Err(e) => e,
        Ok(None) => StoreError::NotFound,
        Ok(Some((Status::Deleted, _))) => deleted,
        Ok(Some((_, current))) => match expected {
            Some(expected) if expected != current => StoreError::Stale { expected, current },
            _ => StoreError::internal("conditional write matched no row for no known reason"),
        },
    }
}

/// Which status change to make.
#[derive(Debug, Clone, Copy)]
pub(super) enum StatusChange {
    /// Live → deleted.
    Delete,
    /// Deleted → active.
    Restore,
}

/// Soft delete or restore.
pub(super) fn set_status(
    conn: &Connection,
    model: &ModelDef,
    id: RecordId,
    change: StatusChange,
    expected: Option<i64>,
    now: Timestamp,
) -> Result<Record, StoreError> {
    let (to, guard) = match change {
        StatusChange::Delete => ("deleted", "\"status\" <> 'deleted'"),
        StatusChange::Restore => ("active", "\"status\" = 'deleted'"),
    };
    let mut sql = format!(
        "UPDATE \"{}\" SET \"status\" = '{to}', \"updated_at\" = ?1, \"version\" = \"version\" + 1 WHERE \"id\" = ?2 AND {guard}",
        model.name()
    );
    let mut values = vec![Sql::Integer(now.as_micros()), Sql::Text(id.to_string())];
    if let Some(v) = expected {
        sql.push_str(" AND \"version\" = ?3");
        values.push(Sql::Integer(v));
    }
    sql.push_str(&format!(" RETURNING {}", columns(model)));
    let updated = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(values), |r| row_to_record(r, model))
                .optional()
        })
        .map_err(map)?;
    match (updated, change) {
        (Some(record), _) => Ok(record),
        // Deleting what is already deleted: it is gone as far as the client is concerned.
        (None, StatusChange::Delete) => Err(missed_live_write(
            conn,
            model,
            id,
            expected,
            StoreError::NotFound,
        )),
        (None, StatusChange::Restore) => Err(match state(conn, model, id)? {
            None => StoreError::NotFound,
            Some(_) => StoreError::Conflict {
                field: None,
                reason: "the record is not deleted".to_owned(),
            },
        }),
    }
}

/// Removes a record for good, unless another record references it.
pub(super) fn purge(
    tx: &Connection,
    schema: &Schema,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    let m = model.name().as_str();
    let current: Option<i64> = tx
        .query_row(
            &format!("SELECT \"version\" FROM \"{m}\" WHERE \"id\" = ?1"),
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(map)?;
    let current = current.ok_or(StoreError::NotFound)?;
    if let Some(expected) = expected.filter(|e| *e != current) {
        return Err(StoreError::Stale { expected, current });
    }
    for other in schema.models() {
        for f in other.fields() {
            if !matches!(f.ty(), FieldType::Reference { model } if model.as_str() == m) {
                continue;
            }
            let sql = format!(
                "SELECT 1 FROM \"{}\" WHERE \"{}\" = ?1 LIMIT 1",
                other.name(),
                f.name()
            );
            let used = tx
                .query_row(&sql, [id.to_string()], |_| Ok(()))
                .optional()
                .map_err(map)?;
            if used.is_some() {
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
        &format!("DELETE FROM \"{m}\" WHERE \"id\" = ?1"),
        [id.to_string()],
    )
    .map_err(map)?;
    tx.execute(
        "DELETE FROM _plinth_idempotency WHERE model = ?1 AND record_id = ?2",
        [m, &id.to_string()],
    )
    .map_err(map)?;
    Ok(())
}

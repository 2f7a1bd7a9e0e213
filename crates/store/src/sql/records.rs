//! Reads and writes of single records. Conditional writes are single statements guarded by
//! `version`, so concurrent writers get exactly one winner; a write that matched no row is
//! explained afterwards (404, 409 or 412). Each write that succeeds appends its audit entry
//! as its last statement, in its transaction (`audit::append`).

use super::audit::{self, Action};
use super::files;
use super::{Exec, Param, Query, SqlRow, blind_column, unreadable};
use crate::shared::Visibility;
use crate::{Created, IdempotencyClaim, Keys, StoreError, WriteCtx};
use plinth_core::schema::{FieldDef, FieldType};
use plinth_core::{Draft, ModelDef, Patch, Record, RecordId, Schema, Status, Timestamp, Value};

mod locked;
mod staged;
use locked::{check_references, get_for_update, read_then_change};
pub(crate) use staged::Staged;

/// The base columns every model table has, in select order.
const BASE_COLUMNS: &str =
    "\"id\", \"name\", \"status\", \"created_at\", \"updated_at\", \"owner_id\", \"version\"";

/// Appends the select list of a model: base columns, then declared fields in order.
pub(crate) fn columns(q: &mut Query<'_>, model: &ModelDef) {
    q.push(BASE_COLUMNS);
    for f in model.fields() {
        q.push(", ").ident(f.name().as_str());
    }
}

/// Reads a row selected with [`columns`], opening the values of pii fields.
pub(crate) fn record(
    row: &impl SqlRow,
    model: &ModelDef,
    keys: &Keys,
) -> Result<Record, StoreError> {
    let id = row.uuid(0)?;
    let mut fields = Vec::with_capacity(model.fields().len());
    for (i, f) in model.fields().iter().enumerate() {
        let value = match row.value(7 + i, f.value_kind())? {
            Value::Text(sealed) if f.pii() => {
                Value::Text(keys.open(model.name().as_str(), f.name().as_str(), &id, &sealed)?)
            }
            value => value,
        };
        fields.push(value);
    }
    Ok(Record {
        id: RecordId::from_uuid(id),
        name: row.text(1)?,
        status: row.text(2)?.parse().map_err(|_| unreadable("status"))?,
        created_at: row.time(3)?,
        updated_at: row.time(4)?,
        owner_id: row.opt_uuid(5)?,
        version: row.int(6)?,
        fields,
    })
}

/// The label a pii field's blind index is made under: its model and name.
pub(crate) fn blind_label(model: &ModelDef, f: &FieldDef) -> String {
    format!("{}.{}", model.name(), f.name())
}

/// The stored form of field `f`'s (number `index`) value in record `id`, and of its blind
/// index (NULL unless pii): pii is sealed (already, in `pre`, for a create), NULL stays NULL.
fn stored<'v>(
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
    (index, f): (usize, &FieldDef),
    v: &'v Value,
    pre: Option<&'v Staged>,
) -> Result<(Param<'v>, Param<'v>), StoreError> {
    if let Some((sealed, blind)) = pre.and_then(|p| p.get(id, index)) {
        return Ok((Param::Text(sealed.into()), Param::Text(blind.into())));
    }
    match v {
        Value::Text(plain) if f.pii() => {
            let (sealed, blind) = seal(keys, model, id, f, plain)?;
            Ok((Param::Text(sealed.into()), Param::Text(blind.into())))
        }
        v => Ok((Param::from(v), Param::Null)),
    }
}

/// The sealed form of pii field `f`'s value `plain` in record `id`, and its blind index.
fn seal(
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
    f: &FieldDef,
    plain: &str,
) -> Result<(String, String), StoreError> {
    let (m, name) = (model.name().as_str(), f.name().as_str());
    let sealed = keys.seal(m, name, id.as_uuid(), plain)?;
    Ok((sealed, keys.blind(&blind_label(model, f), plain)?))
}

/// `SELECT <columns> FROM "<model>"`.
fn select<'a, E: Exec>(model: &ModelDef) -> Query<'a> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ");
    columns(&mut q, model);
    q.push(" FROM ").ident(model.name().as_str());
    q
}

/// One record by id, whatever its status.
pub(crate) async fn get<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<Record>, StoreError> {
    let mut q = select::<E>(model);
    q.push(" WHERE \"id\" = ").bind(id).cached();
    e.row(&q, |r| record(r, model, keys)).await
}

/// Whether `model` declares a file field (its writes keep `_plinth_files` in step).
fn has_files(model: &ModelDef) -> bool {
    model
        .fields()
        .iter()
        .any(|f| matches!(f.ty(), FieldType::File(_)))
}

/// Who writes and when: the actor and request of the audit entry, and the time of the write
/// (its `updated_at`, and the entry's `at`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct By<'a> {
    pub(crate) ctx: &'a WriteCtx,
    pub(crate) now: Timestamp,
    /// The keys that seal the written pii values.
    pub(crate) keys: &'a Keys,
}

fn idempotency_conflict(reason: &str) -> StoreError {
    StoreError::Conflict {
        field: Some("Idempotency-Key".to_owned()),
        reason: reason.to_owned(),
    }
}

/// Inserts a record, or replays an earlier create with the same idempotency key. The key
/// is claimed first: a concurrent create with the same key waits on the claim and then
/// replays.
pub(crate) async fn create<E: Exec>(
    e: &E,
    by: By<'_>,
    vis: &Visibility,
    model: &ModelDef,
    draft: Draft,
    staged: &Staged,
    idempotency: Option<(String, IdempotencyClaim)>,
) -> Result<Created, StoreError> {
    let keys = by.keys;
    let (m, now, owner) = (model.name().as_str(), by.now, by.ctx.actor.user_id());
    let id = staged.id();
    if let Some((scope, claim)) = &idempotency {
        let mut q = Query::new(E::DIALECT);
        q.push("INSERT INTO _plinth_idempotency (model, scope, key, body_digest, record_id, created_at) VALUES (")
            .bind_all([m.into(), scope.into(), (&claim.key).into(), (&claim.body_digest).into(), id.into(), now.into()])
            .push(") ON CONFLICT DO NOTHING")
            .cached();
        if e.execute(&q).await? == 0 {
            let mut q = Query::new(E::DIALECT);
            q.push("SELECT body_digest, record_id FROM _plinth_idempotency WHERE model = ")
                .bind(m)
                .push(" AND scope = ")
                .bind(scope)
                .push(" AND key = ")
                .bind(&claim.key);
            let (digest, earlier) = e
                .row(&q, |r| Ok((r.text(0)?, r.uuid(1)?)))
                .await?
                .ok_or_else(|| StoreError::internal("idempotency claim vanished"))?;
            if digest != claim.body_digest {
                return Err(idempotency_conflict(
                    "was already used with a different request body",
                ));
            }
            return match get(e, keys, model, RecordId::from_uuid(earlier)).await? {
                Some(record) => Ok(Created {
                    record,
                    replayed: true,
                }),
                None => Err(idempotency_conflict(
                    "was used for a record that has since been purged",
                )),
            };
        }
    }
    check_references(e, vis, model, draft.fields.iter().enumerate()).await?;
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
    // A group commit of several creates may insert the record later, with its batch's
    // (not one with files: their rows follow the record's).
    let files = has_files(model);
    if files || !e.hold_insert() {
        insert(e, keys, model, &record, Some(staged)).await?;
    }
    if files {
        files::sync(e, model, id, &record.fields, &by.ctx.files, now).await?;
    }
    // The entry's changes, written when the create was made ready (see `Staged`).
    let changes = staged.changes();
    audit::append(e, by, Action::Create, model, &record, changes, Some(staged)).await?;
    Ok(Created {
        record,
        replayed: false,
    })
}

/// Whether [`create`] sends the record's insert (or, in a group commit, holds it) without
/// awaiting a statement before it: no idempotency claim, no reference to check, no files.
/// A group commit may then take the audit chain's lock behind it, never before a statement
/// that could wait on a row another transaction holds.
pub(crate) fn inserts_first(model: &ModelDef, draft: &Draft, claimed: bool) -> bool {
    !claimed
        && !has_files(model)
        && !draft
            .fields
            .iter()
            .any(|v| matches!(v, Value::Reference(_)))
}

/// Whether [`update`] with `patch` sends its statements (the record's read and its change,
/// together) without awaiting one before them, nor sending one after: no reference to
/// check, no files to keep in step. [`set_status`] always does.
pub(crate) fn changes_first(model: &ModelDef, patch: &Patch) -> bool {
    !has_files(model)
        && !patch
            .changes()
            .any(|(_, v)| matches!(v, Value::Reference(_)))
}

/// Inserts a record as given (a create, or an import).
pub(crate) async fn insert<E: Exec>(
    e: &E,
    keys: &Keys,
    model: &ModelDef,
    record: &Record,
    staged: Option<&Staged>,
) -> Result<(), StoreError> {
    let q = insert_rows(E::DIALECT, keys, model, [(record, staged)])?;
    e.execute(&q).await?;
    Ok(())
}

/// The columns a row of `model` is inserted with: the base columns, the declared fields,
/// then the blind index of each pii field.
pub(crate) fn insert_columns(model: &ModelDef) -> usize {
    BASE_COLUMNS.split(',').count()
        + model.fields().len()
        + model.fields().iter().filter(|f| f.pii()).count()
}

/// A record to insert, with its values sealed before when it is a create's.
pub(crate) type NewRow<'r> = (&'r Record, Option<&'r Staged>);

/// One statement inserting `records` of `model` as given, each sealed in its turn unless
/// sealed before (prepared for reuse: callers bound its rows to few counts).
pub(crate) fn insert_rows<'r>(
    d: super::Dialect,
    keys: &Keys,
    model: &ModelDef,
    records: impl IntoIterator<Item = NewRow<'r>>,
) -> Result<Query<'r>, StoreError> {
    let mut q = Query::new(d);
    q.push("INSERT INTO ")
        .ident(model.name().as_str())
        .push(" (");
    columns(&mut q, model);
    for f in model.fields().iter().filter(|f| f.pii()) {
        q.push(", ").ident(&blind_column(f.name().as_str()));
    }
    q.push(") VALUES ");
    for (i, (record, pre)) in records.into_iter().enumerate() {
        debug_assert_eq!(
            record.fields.len(),
            model.fields().len(),
            "a record of this model"
        );
        let mut blinds = Vec::new();
        let mut fields = Vec::with_capacity(model.fields().len());
        for ((index, f), v) in model.fields().iter().enumerate().zip(&record.fields) {
            let (value, blind) = stored(keys, model, record.id, (index, f), v, pre)?;
            fields.push(value);
            if f.pii() {
                blinds.push(blind);
            }
        }
        let base = [
            record.id.into(),
            (&record.name).into(),
            record.status.as_str().into(),
            record.created_at.into(),
            record.updated_at.into(),
            record.owner_id.into(),
            record.version.into(),
        ];
        q.push(if i == 0 { "(" } else { ", (" })
            .bind_all(base.into_iter().chain(fields).chain(blinds))
            .push(")");
    }
    q.cached();
    Ok(q)
}

/// Applies a patch to a live record.
pub(crate) async fn update<E: Exec>(
    e: &E,
    by: By<'_>,
    vis: &Visibility,
    model: &ModelDef,
    id: RecordId,
    patch: &Patch,
    expected: Option<i64>,
) -> Result<Record, StoreError> {
    let keys = by.keys;
    check_references(e, vis, model, patch.changes()).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("UPDATE ").ident(model.name().as_str()).push(" SET ");
    if let Some(name) = &patch.name {
        q.push("\"name\" = ").bind(name).push(", ");
    }
    if let Some(status) = patch.status {
        q.push("\"status\" = ").bind(status.as_str()).push(", ");
    }
    for ((i, f), v) in model.fields().iter().enumerate().zip(&patch.fields) {
        if let Some(v) = v {
            let (value, blind) = stored(keys, model, id, (i, f), v, None)?;
            q.ident(f.name().as_str())
                .push(" = ")
                .bind(value)
                .push(", ");
            if f.pii() {
                q.ident(&blind_column(f.name().as_str()))
                    .push(" = ")
                    .bind(blind)
                    .push(", ");
            }
        }
    }
    q.push("\"updated_at\" = ")
        .bind(by.now)
        .push(", \"version\" = \"version\" + 1 WHERE \"id\" = ")
        .bind(id)
        .push(" AND \"status\" <> 'deleted'");
    if let Some(v) = expected {
        q.push(" AND \"version\" = ").bind(v);
    }
    q.push(" RETURNING ");
    columns(&mut q, model);
    q.cached();
    match read_then_change(e, keys, model, id, &q).await? {
        (Some(before), Some(record)) => {
            if has_files(model) {
                files::sync(e, model, id, &record.fields, &by.ctx.files, by.now).await?;
            }
            let changes = audit::updated(model, &before, &record);
            audit::append(e, by, Action::Update, model, &record, &changes, None).await?;
            Ok(record)
        }
        (None, Some(_)) => Err(StoreError::internal(
            "an updated record was not there before",
        )),
        (_, None) => {
            let deleted = StoreError::Conflict {
                field: None,
                reason: "the record is deleted; an admin can restore it".to_owned(),
            };
            Err(missed_live_write(e, model, id, expected, deleted).await)
        }
    }
}

/// The status and version of a record, to explain why a conditional write matched no row.
async fn state<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
) -> Result<Option<(Status, i64)>, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT \"status\", \"version\" FROM ")
        .ident(model.name().as_str())
        .push(" WHERE \"id\" = ")
        .bind(id);
    e.row(&q, |r| {
        let status = r.text(0)?.parse().map_err(StoreError::internal)?;
        Ok((status, r.int(1)?))
    })
    .await
}

/// The error for a write to a live record (update, delete) that matched no row.
async fn missed_live_write<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
    deleted: StoreError,
) -> StoreError {
    match state(e, model, id).await {
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
pub(crate) enum StatusChange {
    /// Live → deleted.
    Delete,
    /// Deleted → active.
    Restore,
}

/// Soft delete or restore.
pub(crate) async fn set_status<E: Exec>(
    e: &E,
    by: By<'_>,
    model: &ModelDef,
    id: RecordId,
    change: StatusChange,
    expected: Option<i64>,
) -> Result<Record, StoreError> {
    let keys = by.keys;
    let (to, guard) = match change {
        StatusChange::Delete => ("deleted", "\"status\" <> 'deleted'"),
        StatusChange::Restore => ("active", "\"status\" = 'deleted'"),
    };
    let mut q = Query::new(E::DIALECT);
    q.push("UPDATE ")
        .ident(model.name().as_str())
        .push(" SET \"status\" = '")
        .push(to)
        .push("', \"updated_at\" = ")
        .bind(by.now)
        .push(", \"version\" = \"version\" + 1 WHERE \"id\" = ")
        .bind(id)
        .push(" AND ")
        .push(guard);
    if let Some(v) = expected {
        q.push(" AND \"version\" = ").bind(v);
    }
    q.push(" RETURNING ");
    columns(&mut q, model);
    q.cached();
    // A delete's audit entry says which status it changed from; a restore's is `deleted`.
    let (from, changed) = match change {
        StatusChange::Delete => {
            let (before, after) = read_then_change(e, keys, model, id, &q).await?;
            (before.map(|r| r.status), after)
        }
        StatusChange::Restore => (None, e.row(&q, |r| record(r, model, keys)).await?),
    };
    if let Some(record) = changed {
        let (action, from) = match change {
            StatusChange::Delete => (Action::Delete, from.unwrap_or(Status::Active)),
            StatusChange::Restore => (Action::Restore, Status::Deleted),
        };
        let changes = audit::status_changed(from, record.status);
        audit::append(e, by, action, model, &record, &changes, None).await?;
        return Ok(record);
    }
    Err(match change {
        // Deleting what is already deleted: it is gone as far as the client is concerned.
        StatusChange::Delete => {
            missed_live_write(e, model, id, expected, StoreError::NotFound).await
        }
        StatusChange::Restore => match state(e, model, id).await? {
            None => StoreError::NotFound,
            Some(_) => StoreError::Conflict {
                field: None,
                reason: "the record is not deleted".to_owned(),
            },
        },
    })
}

/// Removes a record for good, unless another record references it.
pub(crate) async fn purge<E: Exec>(
    e: &E,
    by: By<'_>,
    schema: &Schema,
    model: &ModelDef,
    id: RecordId,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    let keys = by.keys;
    let m = model.name().as_str();
    let before = get_for_update(e, keys, model, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let current = before.version;
    if let Some(expected) = expected.filter(|e| *e != current) {
        return Err(StoreError::Stale { expected, current });
    }
    for other in schema.models() {
        for f in other.fields() {
            if !matches!(f.ty(), FieldType::Reference { model } if model.as_str() == m) {
                continue;
            }
            let mut q = Query::new(E::DIALECT);
            q.push("SELECT 1 FROM ")
                .ident(other.name().as_str())
                .push(" WHERE ")
                .ident(f.name().as_str())
                .push(" = ")
                .bind(id)
                .push(" LIMIT 1");
            if e.row(&q, |_| Ok(())).await?.is_some() {
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
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM ")
        .ident(m)
        .push(" WHERE \"id\" = ")
        .bind(id);
    e.execute(&q).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_idempotency WHERE model = ")
        .bind(m)
        .push(" AND record_id = ")
        .bind(id);
    e.execute(&q).await?;
    if has_files(model) {
        files::drop_record(e, model, id).await?;
    }
    let changes = audit::purged(model, &before);
    audit::append(e, by, Action::Purge, model, &before, &changes, None).await
}

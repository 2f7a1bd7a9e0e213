//! The file table, `_plinth_files`: one row per file a record holds. A record write keeps
//! it in step with the record's file fields in the same transaction ([`sync`]); a purge
//! drops the record's rows ([`drop_record`]).

use super::{Exec, Query, SqlRow};
use crate::StoreError;
use crate::files::{NewFile, StoredFile};
use plinth_core::schema::FieldType;
use plinth_core::{ModelDef, RecordId, Timestamp, Value};

/// Version 6's table: rows by record and field, and an index on content for the question
/// "does anything still hold this content?".
pub(crate) const FILES_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_files (
        model TEXT NOT NULL,
        record_id {uuid} NOT NULL,
        field TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        size {int} NOT NULL,
        mime TEXT NOT NULL,
        created_at {time} NOT NULL,
        PRIMARY KEY (model, record_id, field, name)
    );
    CREATE INDEX IF NOT EXISTS _plinth_files_hash ON _plinth_files (hash);";

const COLUMNS: &str = "field, name, hash, size, mime, created_at";

fn stored(r: &impl SqlRow) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        field: r.text(0)?,
        name: r.text(1)?,
        hash: r.text(2)?,
        size: u64::try_from(r.int(3)?).map_err(|_| super::unreadable("file size"))?,
        mime: r.text(4)?,
        created_at: r.time(5)?,
    })
}

/// The names a file field's value holds.
pub(crate) fn names(v: &Value) -> Vec<&str> {
    match v {
        Value::Text(name) => vec![name.as_str()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::Text(name) => Some(name.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Makes the rows of record `id` match its file fields as written (`fields`): the files
/// uploaded with the write are added, those no value names any more are dropped, and a
/// value naming a file the record does not hold is refused (nothing is written then: the
/// caller's transaction rolls back).
pub(crate) async fn sync<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
    fields: &[Value],
    uploads: &[NewFile],
    now: Timestamp,
) -> Result<(), StoreError> {
    let m = model.name().as_str();
    for (f, v) in model.fields().iter().zip(fields) {
        if !matches!(f.ty(), FieldType::File(_)) {
            continue;
        }
        let field = f.name().as_str();
        for u in uploads.iter().filter(|u| u.field == field) {
            let size = i64::try_from(u.size).map_err(StoreError::internal)?;
            let mut q = Query::new(E::DIALECT);
            q.push("INSERT INTO _plinth_files (model, record_id, field, name, hash, size, mime, created_at) VALUES (")
                .bind_all([m.into(), id.into(), field.into(), (&u.name).into(), (&u.hash).into(), size.into(), (&u.mime).into(), now.into()])
                .push(")");
            e.execute(&q).await?;
        }
        let held = names(v);
        let mut q = Query::new(E::DIALECT);
        q.push("DELETE FROM _plinth_files WHERE model = ")
            .bind(m)
            .push(" AND record_id = ")
            .bind(id)
            .push(" AND field = ")
            .bind(field);
        if !held.is_empty() {
            q.push(" AND name NOT IN (");
            for (i, name) in held.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.bind(*name);
            }
            q.push(")");
        }
        e.execute(&q).await?;
        let mut q = Query::new(E::DIALECT);
        q.push("SELECT count(*) FROM _plinth_files WHERE model = ")
            .bind(m)
            .push(" AND record_id = ")
            .bind(id)
            .push(" AND field = ")
            .bind(field);
        let count = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
        if usize::try_from(count).ok() != Some(held.len()) {
            return Err(StoreError::UnknownFile {
                field: field.to_owned(),
            });
        }
    }
    Ok(())
}

/// Inserts a row exactly as exported (`plinth import`).
pub(crate) async fn import<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
    f: &StoredFile,
) -> Result<(), StoreError> {
    let size = i64::try_from(f.size).map_err(|_| StoreError::InvalidValue {
        reason: "a file size out of range".to_owned(),
    })?;
    let mut q = Query::new(E::DIALECT);
    q.push("INSERT INTO _plinth_files (model, record_id, field, name, hash, size, mime, created_at) VALUES (")
        .bind_all([model.name().as_str().into(), id.into(), f.field.as_str().into(), f.name.as_str().into(), f.hash.as_str().into(), size.into(), f.mime.as_str().into(), f.created_at.into()])
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

/// Drops every row of record `id` (a purge).
pub(crate) async fn drop_record<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
) -> Result<(), StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_files WHERE model = ")
        .bind(model.name().as_str())
        .push(" AND record_id = ")
        .bind(id);
    e.execute(&q).await?;
    Ok(())
}

/// The rows of record `id`, by field and name.
pub(crate) async fn of<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
) -> Result<Vec<StoredFile>, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM _plinth_files WHERE model = ")
        .bind(model.name().as_str())
        .push(" AND record_id = ")
        .bind(id)
        .push(" ORDER BY field, name");
    e.rows(&q, |r| stored(r)).await
}

/// One row of record `id`.
pub(crate) async fn one<E: Exec>(
    e: &E,
    model: &ModelDef,
    id: RecordId,
    field: &str,
    name: &str,
) -> Result<Option<StoredFile>, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM _plinth_files WHERE model = ")
        .bind(model.name().as_str())
        .push(" AND record_id = ")
        .bind(id)
        .push(" AND field = ")
        .bind(field)
        .push(" AND name = ")
        .bind(name)
        .cached();
    e.row(&q, |r| stored(r)).await
}

/// Whether any row holds `hash`.
pub(crate) async fn in_use<E: Exec>(e: &E, hash: &str) -> Result<bool, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT 1 FROM _plinth_files WHERE hash = ")
        .bind(hash)
        .push(" LIMIT 1")
        .cached();
    Ok(e.row(&q, |_| Ok(())).await?.is_some())
}

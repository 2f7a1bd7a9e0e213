//! Conversions between domain values and PostgreSQL parameters and rows.

use plinth_core::schema::ValueKind;
use plinth_core::{ModelDef, Record, RecordId, Timestamp, Value};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// An owned query parameter.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// Parameters as the driver wants them.
pub(super) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A timestamp as `timestamptz`.
pub(super) fn ts(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_micros()) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A `timestamptz` as a timestamp (microseconds; PostgreSQL keeps no finer).
pub(super) fn from_ts(t: OffsetDateTime) -> Option<Timestamp> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000))
        .ok()
        .and_then(Timestamp::from_micros)
}

/// A domain value as a parameter of a column of storage class `kind` (NULLs are typed, as
/// the driver checks parameter types).
pub(super) fn param(v: &Value, kind: ValueKind) -> Param {
    match (v, kind) {
        (Value::Text(s), _) => Box::new(s.clone()),
        (Value::Integer(i), _) => Box::new(*i),
        (Value::Float(f), _) => Box::new(*f),
        (Value::Boolean(b), _) => Box::new(*b),
        (Value::Datetime(t), _) => Box::new(ts(*t)),
        (Value::Json(j), _) => Box::new(j.clone()),
        (Value::Reference(id), _) => Box::new(*id.as_uuid()),
        (Value::Null, ValueKind::Text) => Box::new(None::<String>),
        (Value::Null, ValueKind::Integer) => Box::new(None::<i64>),
        (Value::Null, ValueKind::Float) => Box::new(None::<f64>),
        (Value::Null, ValueKind::Boolean) => Box::new(None::<bool>),
        (Value::Null, ValueKind::Datetime) => Box::new(None::<OffsetDateTime>),
        (Value::Null, ValueKind::Json) => Box::new(None::<serde_json::Value>),
        (Value::Null, ValueKind::Uuid) => Box::new(None::<Uuid>),
    }
}

/// The PostgreSQL column type of a storage class.
pub(super) fn column_type(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Text => "TEXT",
        ValueKind::Integer => "BIGINT",
        ValueKind::Float => "DOUBLE PRECISION",
        ValueKind::Boolean => "BOOLEAN",
        ValueKind::Datetime => "TIMESTAMPTZ",
        ValueKind::Json => "JSONB",
        ValueKind::Uuid => "UUID",
    }
}

fn read(row: &Row, i: usize, kind: ValueKind) -> Result<Value, tokio_postgres::Error> {
    Ok(match kind {
        ValueKind::Text => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
        ValueKind::Integer => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Integer),
        ValueKind::Float => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Value::Null, Value::Float),
        ValueKind::Boolean => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, Value::Boolean),
        ValueKind::Datetime => row
            .try_get::<_, Option<OffsetDateTime>>(i)?
            .and_then(from_ts)
            .map_or(Value::Null, Value::Datetime),
        ValueKind::Json => row
            .try_get::<_, Option<serde_json::Value>>(i)?
            .map_or(Value::Null, Value::Json),
        ValueKind::Uuid => row
            .try_get::<_, Option<Uuid>>(i)?
            .map_or(Value::Null, |u| Value::Reference(RecordId::from_uuid(u))),
    })
}

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

/// A row selected with [`columns`] as a record; `None` if the row holds impossible values.
pub(super) fn record(row: &Row, model: &ModelDef) -> Result<Record, crate::StoreError> {
    let bad =
        |what: &str| crate::StoreError::internal(format!("unreadable {what} in {}", model.name()));
    let map = super::errors::map;
    let status: String = row.try_get(2).map_err(map)?;
    let mut fields = Vec::with_capacity(model.fields().len());
    for (i, f) in model.fields().iter().enumerate() {
        fields.push(read(row, 7 + i, f.value_kind()).map_err(map)?);
    }
    Ok(Record {
        id: RecordId::from_uuid(row.try_get(0).map_err(map)?),
        name: row.try_get(1).map_err(map)?,
        status: status.parse().map_err(|_| bad("status"))?,
        created_at: from_ts(row.try_get(3).map_err(map)?).ok_or_else(|| bad("created_at"))?,
        updated_at: from_ts(row.try_get(4).map_err(map)?).ok_or_else(|| bad("updated_at"))?,
        owner_id: row.try_get(5).map_err(map)?,
        version: row.try_get(6).map_err(map)?,
        fields,
    })
}

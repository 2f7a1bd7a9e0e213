//! Opaque keyset cursors: the sort key, the last row's sort value and id, and the query's
//! fingerprint, as base64url JSON.

use crate::query::{Column, Sort};
use crate::record::{RecordId, Value};
use crate::schema::ValueKind;
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Longest cursor accepted, in characters.
const MAX_CURSOR_LEN: usize = 2048;

/// Where a page ends: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorPos {
    /// Sort column value of the last row (`Value::Null` if that row had none).
    pub value: Value,
    /// Id of the last row (the tie-break).
    pub id: RecordId,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    s: String,
    f: String,
    v: serde_json::Value,
    i: String,
}

/// Encodes and decodes cursors.
#[derive(Debug)]
pub struct Cursor;

impl Cursor {
    /// Encodes a position for a sort and query fingerprint.
    pub fn encode(sort: &Sort, fingerprint: u64, pos: &CursorPos) -> String {
        let v = match &pos.value {
            Value::Datetime(t) => serde_json::Value::from(t.as_micros()),
            other => other.to_json(),
        };
        let wire = Wire {
            s: sort.key(),
            f: format!("{fingerprint:016x}"),
            v,
            i: pos.id.to_string(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Decodes a cursor, checking it belongs to this sort and query.
    pub fn decode(s: &str, sort: &Sort, fingerprint: u64) -> Result<CursorPos, String> {
        const BAD: &str = "is not a cursor returned by this endpoint";
        if s.is_empty() || s.len() > MAX_CURSOR_LEN {
            return Err(BAD.to_owned());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BAD.to_owned())?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| BAD.to_owned())?;
        if wire.s != sort.key() || wire.f != format!("{fingerprint:016x}") {
            return Err("belongs to a different query (filters or sort changed)".to_owned());
        }
        let id = RecordId::parse(&wire.i).map_err(|_| BAD.to_owned())?;
        let value = decode_value(&sort.column, &wire.v).ok_or_else(|| BAD.to_owned())?;
        Ok(CursorPos { value, id })
    }
}

fn decode_value(column: &Column, v: &serde_json::Value) -> Option<Value> {
    if v.is_null() {
        return column.nullable().then_some(Value::Null);
    }
    Some(match column.kind() {
        ValueKind::Text => Value::Text(v.as_str()?.to_owned()),
        ValueKind::Integer => Value::Integer(v.as_i64()?),
        ValueKind::Float => Value::Float(v.as_f64()?),
        ValueKind::Boolean => Value::Boolean(v.as_bool()?),
        ValueKind::Datetime => Value::Datetime(Timestamp::from_micros(v.as_i64()?)?),
        ValueKind::Uuid => Value::Reference(RecordId::parse(v.as_str()?).ok()?),
        ValueKind::Json | ValueKind::Array(_) => return None,
        kind @ (ValueKind::Date | ValueKind::Decimal(_)) => Value::from_json(kind, v)?,
    })
}

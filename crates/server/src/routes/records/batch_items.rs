//! The items of a batch write, read from its JSON body: every item is checked (its keys,
//! `op`, `id`, `if_match`, and its `data` as the single write would check it), and every
//! fault of every item is reported at once, each under its item's path (`items[17].price`).

use super::precheck;
use crate::error::ApiError;
use crate::extract::Caller;
use plinth_core::input::{validate_draft, validate_patch};
use plinth_core::policy::Action;
use plinth_core::{ErrorCode, FieldError, ModelDef, Patch, RecordId};
use plinth_store::BatchOp;
use serde_json::{Map, Value};

/// Most items in one batch.
pub(crate) const MAX_ITEMS: usize = 1000;

/// The item keys each op takes.
const CREATE_KEYS: &[&str] = &["op", "data"];
const WRITE_KEYS: &[&str] = &["op", "id", "data", "if_match"];
const DELETE_KEYS: &[&str] = &["op", "id", "if_match"];

/// Reads the batch `body` into its ops, or refuses it with every fault found.
pub(super) fn read(
    caller: &Caller,
    model: &ModelDef,
    body: &Value,
) -> Result<Vec<BatchOp>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("body", "must be an object with `items`"));
    };
    if let Some(key) = obj.keys().find(|k| *k != "items") {
        return Err(ApiError::invalid(
            key,
            "is not a key of a batch; send only `items`",
        ));
    }
    let items = match obj.get("items") {
        Some(Value::Array(items)) if (1..=MAX_ITEMS).contains(&items.len()) => items,
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(ApiError::invalid("items", "must hold at least one item"));
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                "items",
                format!("must hold at most {MAX_ITEMS} items; split the batch"),
            ));
        }
        _ => return Err(ApiError::invalid("items", "must be an array of items")),
    };
    let mut ops = Vec::with_capacity(items.len());
    let mut faults = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match op(caller, model, item) {
            Ok(op) => ops.push(op),
            Err(Fault::Denied(e)) => return Err(e.at_item(i)),
            Err(Fault::Invalid(found)) => faults.extend(found.into_iter().map(|f| FieldError {
                field: match f.field.as_str() {
                    "" => format!("items[{i}]"),
                    field => format!("items[{i}].{field}"),
                },
                reason: f.reason,
            })),
        }
    }
    if faults.is_empty() {
        return Ok(ops);
    }
    let message = match faults.len() {
        1 => "a fault in the batch's items; nothing was written".to_owned(),
        n => format!("{n} faults in the batch's items; nothing was written"),
    };
    Err(ApiError::new(ErrorCode::InvalidInput, message).with_details(faults))
}

/// Why an item is refused.
enum Fault {
    /// Its faults, each naming a key of the item (or a field of its `data`).
    Invalid(Vec<FieldError>),
    /// The caller may not do what it asks at all.
    Denied(ApiError),
}

fn invalid(field: &str, reason: impl Into<String>) -> Fault {
    Fault::Invalid(vec![FieldError::new(field, reason)])
}

/// One item.
fn op(caller: &Caller, model: &ModelDef, item: &Value) -> Result<BatchOp, Fault> {
    let Some(item) = item.as_object() else {
        return Err(invalid("", "must be an object with `op`"));
    };
    let (action, keys) = match item.get("op").and_then(Value::as_str) {
        Some("create") => (Action::Create, CREATE_KEYS),
        Some("update" | "replace") => (Action::Update, WRITE_KEYS),
        Some("delete") => (Action::Delete, DELETE_KEYS),
        _ => return Err(invalid("op", "must be create, update, replace or delete")),
    };
    precheck(caller, model, action).map_err(Fault::Denied)?;
    let mut faults: Vec<FieldError> = item
        .keys()
        .filter(|k| !keys.contains(&k.as_str()))
        .map(|k| FieldError::new(k, "is not a key of this op's items"))
        .collect();
    let id = (action != Action::Create)
        .then(|| id(item, &mut faults))
        .flatten();
    let expected = if_match(item, &mut faults);
    let access = caller.0.field_access();
    let op = item.get("op").and_then(Value::as_str);
    let data = match (action, item.get("data")) {
        (Action::Delete, _) => None,
        (_, Some(data @ Value::Object(_))) => Some(data),
        (_, _) => {
            faults.push(FieldError::new(
                "data",
                "must be an object of the record's fields",
            ));
            None
        }
    };
    let mut data_faults = |e: plinth_core::Error| match e {
        plinth_core::Error::Invalid { details, .. } => faults.extend(details),
        other => faults.push(FieldError::new("data", other.to_string())),
    };
    let built = match (op, data) {
        (Some("create"), Some(data)) => validate_draft(model, data, access)
            .map(BatchOp::Create)
            .map_err(&mut data_faults)
            .ok(),
        (Some("update"), Some(data)) => validate_patch(model, data, access)
            .map_err(&mut data_faults)
            .ok()
            .zip(id)
            .map(|(patch, id)| update(id, patch, expected)),
        (Some("replace"), Some(data)) => validate_draft(model, data, access)
            .map(|d| Patch::from(d).keep_hidden(model, access))
            .map_err(&mut data_faults)
            .ok()
            .zip(id)
            .map(|(patch, id)| update(id, patch, expected)),
        (Some("delete"), _) => id.map(|id| BatchOp::Delete {
            id,
            expected_version: expected,
        }),
        _ => None,
    };
    match built {
        Some(op) if faults.is_empty() => Ok(op),
        _ => Err(Fault::Invalid(faults)),
    }
}

fn update(id: RecordId, patch: Patch, expected: Option<i64>) -> BatchOp {
    BatchOp::Update {
        id,
        patch,
        expected_version: expected,
    }
}

/// The item's `id`, noting a fault when it is missing or not a record id.
fn id(item: &Map<String, Value>, faults: &mut Vec<FieldError>) -> Option<RecordId> {
    match item.get("id") {
        Some(Value::String(s)) => RecordId::parse(s)
            .map_err(|reason| faults.push(FieldError::new("id", reason)))
            .ok(),
        Some(_) => {
            faults.push(FieldError::new(
                "id",
                "must be the record's id, a UUID string",
            ));
            None
        }
        None => {
            faults.push(FieldError::new("id", "is required for this op"));
            None
        }
    }
}

/// The item's `if_match`: absent, `null` or `*` for any version, or one entity tag as `ETag`
/// gives it (`"3"`, quotes included) for that version.
fn if_match(item: &Map<String, Value>, faults: &mut Vec<FieldError>) -> Option<i64> {
    let value = item.get("if_match").filter(|v| !v.is_null())?;
    match value.as_str() {
        Some("*") => None,
        Some(tag) => {
            let version = crate::conditional::parse_etag(tag);
            if version.is_none() {
                faults.push(FieldError::new(
                    "if_match",
                    "must be * or one entity tag as returned in ETag, such as \"3\" (quotes included)",
                ));
            }
            version
        }
        None => {
            faults.push(FieldError::new("if_match", "must be a string"));
            None
        }
    }
}

//! What an audit entry says changed: the action of a record write and its `changes`,
//! `{"field": {"from", "to"}}`, with pii values [`REDACTED`].

use crate::audit::REDACTED;
use plinth_core::input::Draft;
use plinth_core::schema::FieldDef;
use plinth_core::{ModelDef, Record, Status, Value};
use serde_json::{Map, Value as Json, json};

/// A record write, as the audit trail names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Create,
    Update,
    Delete,
    Restore,
    Purge,
}

impl Action {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "record.create",
            Self::Update => "record.update",
            Self::Delete => "record.delete",
            Self::Restore => "record.restore",
            Self::Purge => "record.purge",
        }
    }

    /// What the change feed calls the write.
    pub(crate) fn change_kind(self) -> crate::ChangeKind {
        use crate::ChangeKind as K;
        match self {
            Self::Create => K::Created,
            Self::Update => K::Updated,
            Self::Delete => K::Deleted,
            Self::Restore => K::Restored,
            Self::Purge => K::Purged,
        }
    }
}

/// The base and declared fields of a record that have a value, by name.
fn fields(model: &ModelDef, r: &Record) -> Vec<(String, Json)> {
    values(model, &r.name, r.status, &r.fields)
}

/// [`fields`] of a record named `name` with `status` and the declared fields' `values`.
fn values(model: &ModelDef, name: &str, status: Status, values: &[Value]) -> Vec<(String, Json)> {
    let mut out = vec![
        ("name".to_owned(), Json::String(name.to_owned())),
        (
            "status".to_owned(),
            Json::String(status.as_str().to_owned()),
        ),
    ];
    for (f, v) in model.fields().iter().zip(values) {
        if *v != Value::Null {
            out.push((f.name().to_string(), shown(f, v)));
        }
    }
    out
}

/// A field's value as the trail keeps it: a pii field's value is [`REDACTED`] (a null stays
/// null, so a cleared value shows as cleared).
fn shown(f: &FieldDef, v: &Value) -> Json {
    if f.pii() && *v != Value::Null {
        Json::String(REDACTED.to_owned())
    } else {
        v.to_json()
    }
}

/// The changes of a create of `draft`: every value set, as `to`; as stored.
pub(crate) fn created(model: &ModelDef, draft: &Draft) -> String {
    let map: Map<String, Json> = values(model, &draft.name, draft.status, &draft.fields)
        .into_iter()
        .map(|(k, v)| (k, json!({ "to": v })))
        .collect();
    Json::Object(map).to_string()
}

/// The changes of a purge: every value the record had, as `from`; as stored.
pub(crate) fn purged(model: &ModelDef, r: &Record) -> String {
    let map: Map<String, Json> = fields(model, r)
        .into_iter()
        .map(|(k, v)| (k, json!({ "from": v })))
        .collect();
    Json::Object(map).to_string()
}

/// The changes of an update: each base or declared field whose value differs; as stored.
pub(crate) fn updated(model: &ModelDef, before: &Record, after: &Record) -> String {
    let mut map = Map::new();
    let mut diff = |name: &str, from: Json, to: Json, changed: bool| {
        if changed {
            map.insert(name.to_owned(), json!({ "from": from, "to": to }));
        }
    };
    let (from, to) = (before.name.as_str(), after.name.as_str());
    diff("name", from.into(), to.into(), from != to);
    let (from, to) = (before.status.as_str(), after.status.as_str());
    diff("status", from.into(), to.into(), from != to);
    for ((f, from), to) in model.fields().iter().zip(&before.fields).zip(&after.fields) {
        // Masked pii values look alike: the values are compared, the masks shown.
        diff(f.name().as_str(), shown(f, from), shown(f, to), from != to);
    }
    Json::Object(map).to_string()
}

/// The changes of a delete or restore, as stored.
pub(crate) fn status_changed(from: Status, to: Status) -> String {
    json!({ "status": { "from": from.as_str(), "to": to.as_str() } }).to_string()
}

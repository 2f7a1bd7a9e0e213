//! `expand=`: each expanded reference replaced by the record it names, as the caller may
//! read it, with one `Store::get_many` per referenced model and level (the distinct ids of
//! every record of the level at once), never one query per row.
//!
//! A reference the caller may not read (the model refuses it, another owner's record under
//! `user_read = "own"`, a record that no longer exists) stays its id: exactly what `GET` by
//! id would refuse.

use crate::error::ApiError;
use plinth_core::policy::{self, Action};
use plinth_core::query::shape::{Expand, MAX_EXPAND_DEPTH};
use plinth_core::{ModelDef, Principal, Record, RecordId, Value};
use plinth_store::{ReadFrom, Store};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Most ids one read asks for, well within both engines' bound on parameters: more only
/// with dozens of reference fields expanded over a full page.
const MAX_IDS_PER_READ: usize = 5_000;

/// The records a reference field's values name, those the caller may read, and what is
/// expanded inside them.
#[derive(Debug)]
pub(super) struct Node {
    /// The reference field, by its index among the model's declared fields.
    pub(super) index: usize,
    /// The model it references.
    pub(super) model: Arc<ModelDef>,
    /// The readable records, by id (shared by every node of the level on the same model).
    found: Arc<HashMap<RecordId, Record>>,
    /// Expansions within those records.
    pub(super) then: Vec<Node>,
}

impl Node {
    /// The record `value` names, if it is expanded here.
    pub(super) fn record(&self, value: &Value) -> Option<&Record> {
        match value {
            Value::Reference(id) => self.found.get(id),
            _ => None,
        }
    }
}

/// Reads what `plan` expands in `records`, level by level.
pub(super) async fn resolve(
    store: &dyn Store,
    who: &Principal,
    from: ReadFrom,
    records: &[Record],
    plan: &[Expand],
) -> Result<Vec<Node>, ApiError> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let wants: Vec<(&Expand, BTreeSet<RecordId>)> = plan
        .iter()
        .map(|e| (e, ids(records.iter(), e.index)))
        .collect();
    let mut level = fetch(store, who, from, wants).await?;
    // The second level: every path's children, over the first level's records, at once.
    const {
        assert!(
            MAX_EXPAND_DEPTH == 2,
            "one more level needs one more pass here"
        )
    };
    let mut wants = Vec::new();
    let mut parents = Vec::new();
    for (i, e) in plan.iter().enumerate() {
        for child in &e.then {
            wants.push((child, ids(level[i].found.values(), child.index)));
            parents.push(i);
        }
    }
    if !wants.is_empty() {
        let children = fetch(store, who, from, wants).await?;
        for (i, child) in parents.into_iter().zip(children) {
            level[i].then.push(child);
        }
    }
    Ok(level)
}

/// The distinct ids the reference field at `index` holds in `records`.
fn ids<'a>(records: impl Iterator<Item = &'a Record>, index: usize) -> BTreeSet<RecordId> {
    records
        .filter_map(|r| match r.fields.get(index) {
            Some(Value::Reference(id)) => Some(*id),
            _ => None,
        })
        .collect()
}

/// One node per want, reading each referenced model once with the union of its wants' ids,
/// keeping the records `who` may read as `GET` would decide.
async fn fetch(
    store: &dyn Store,
    who: &Principal,
    from: ReadFrom,
    wants: Vec<(&Expand, BTreeSet<RecordId>)>,
) -> Result<Vec<Node>, ApiError> {
    let mut by_model: HashMap<&str, (&Arc<ModelDef>, BTreeSet<RecordId>)> = HashMap::new();
    for (e, ids) in &wants {
        let entry = by_model
            .entry(e.target.name().as_str())
            .or_insert_with(|| (&e.target, BTreeSet::new()));
        entry.1.extend(ids.iter().copied());
    }
    let mut found: HashMap<&str, Arc<HashMap<RecordId, Record>>> = HashMap::new();
    for (name, (model, ids)) in by_model {
        found.insert(
            name,
            Arc::new(readable(store, who, from, model, ids).await?),
        );
    }
    Ok(wants
        .into_iter()
        .map(|(e, _)| Node {
            index: e.index,
            model: Arc::clone(&e.target),
            found: found
                .get(e.target.name().as_str())
                .cloned()
                .unwrap_or_default(),
            then: Vec::new(),
        })
        .collect())
}

/// The records of `model` among `ids` that `who` may read: none without a read of the
/// model at all (and then no query), else those `authorize` admits, as for a `GET`.
async fn readable(
    store: &dyn Store,
    who: &Principal,
    from: ReadFrom,
    model: &Arc<ModelDef>,
    ids: BTreeSet<RecordId>,
) -> Result<HashMap<RecordId, Record>, ApiError> {
    let policy = model.policy();
    let mut out = HashMap::new();
    if ids.is_empty() || policy::precheck(who, policy, Action::Read).is_err() {
        return Ok(out);
    }
    let ids: Vec<RecordId> = ids.into_iter().collect();
    for chunk in ids.chunks(MAX_IDS_PER_READ) {
        for r in store.get_many(model, chunk, from).await? {
            if policy::authorize(who, policy, Action::Read, Some(r.owner_id)).is_ok() {
                out.insert(r.id, r);
            }
        }
    }
    Ok(out)
}

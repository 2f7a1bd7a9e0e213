//! A create made ready before its transaction: on the request's own thread, not on the
//! one every write of the database waits for (the SQLite writer, a PostgreSQL group
//! commit). Its pii values are sealed once, and the same sealed text stored in the row
//! and in the change log; its audit entry's changes and its change's snapshot (but for the
//! times, which the writer sets) are written as text.

use super::seal;
use crate::sql::{audit, changes};
use crate::{Keys, StoreError, WriteCtx};
use plinth_core::input::Draft;
use plinth_core::{ModelDef, RecordId, Value};

/// A create staged ahead of its transaction: the new record's id, for each of its pii values
/// (by field number) the sealed form and the blind index, and the texts its audit entry and
/// its change are stored with.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    id: RecordId,
    values: Vec<(usize, String, String)>,
    /// The audit entry's `changes`.
    changes: String,
    /// The change log's snapshot but for its times.
    logged: String,
}

impl Staged {
    /// A fresh id for a record of `model` created from `draft` in `ctx` (whose user owns
    /// it), its pii values sealed and its texts written.
    pub(crate) fn new(
        keys: &Keys,
        ctx: &WriteCtx,
        model: &ModelDef,
        draft: &Draft,
    ) -> Result<Self, StoreError> {
        let id = RecordId::new_v7();
        let mut values = Vec::new();
        for (index, (f, v)) in model.fields().iter().zip(&draft.fields).enumerate() {
            if let Value::Text(plain) = v
                && f.pii()
            {
                let (sealed, blind) = seal(keys, model, id, f, plain)?;
                values.push((index, sealed, blind));
            }
        }
        let mut made = Self {
            id,
            values,
            changes: audit::created(model, draft),
            logged: String::new(),
        };
        let base = (draft.name.as_str(), draft.status, ctx.actor.user_id(), 1);
        made.logged = changes::untimed(keys, model, id, base, &draft.fields, Some(&made))?;
        Ok(made)
    }

    /// The id the record is created with.
    pub(crate) fn id(&self) -> RecordId {
        self.id
    }

    /// The sealed value and blind index of field `index` of record `id`, when made here.
    pub(crate) fn get(&self, id: RecordId, index: usize) -> Option<(&str, &str)> {
        if id != self.id {
            return None;
        }
        let (_, sealed, blind) = self.values.iter().find(|(i, ..)| *i == index)?;
        Some((sealed, blind))
    }

    /// The audit entry's `changes`, as stored.
    pub(crate) fn changes(&self) -> &str {
        &self.changes
    }

    /// The snapshot of record `id` but for its times, when made here.
    pub(crate) fn logged(&self, id: RecordId) -> Option<&str> {
        (id == self.id).then_some(self.logged.as_str())
    }
}

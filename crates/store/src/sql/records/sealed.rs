//! A create's pii values sealed once, before its transaction: on the request's own thread,
//! not on the one every write of the database waits for (the SQLite writer, a PostgreSQL
//! group commit), and the same sealed text stored in the row and in the change log.

use super::seal;
use crate::{Keys, StoreError};
use plinth_core::{ModelDef, RecordId, Value};

/// A new record's id, and for each of its pii values (by field number) the sealed form
/// and the blind index.
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    id: RecordId,
    values: Vec<(usize, String, String)>,
}

impl Sealed {
    /// A fresh id for a record of `model` with `fields` (a draft's), its pii values sealed.
    pub(crate) fn new(keys: &Keys, model: &ModelDef, fields: &[Value]) -> Result<Self, StoreError> {
        let id = RecordId::new_v7();
        let mut values = Vec::new();
        for (index, (f, v)) in model.fields().iter().zip(fields).enumerate() {
            if let Value::Text(plain) = v
                && f.pii()
            {
                let (sealed, blind) = seal(keys, model, id, f, plain)?;
                values.push((index, sealed, blind));
            }
        }
        Ok(Self { id, values })
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
}

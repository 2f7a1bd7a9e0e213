//! A create's pii values sealed once, before its transaction: on the request's own thread,
//! not on the one every write of the database waits for (the SQLite writer, a PostgreSQL
//! group commit), and the same sealed text stored in the row and in the change log.

use super::blind_label;
use crate::{Keys, StoreError};
use plinth_core::{ModelDef, RecordId, Value};

/// A new record's id, and for each declared field (in order) the sealed form of its pii
/// value and that value's blind index (`None` for a field that is not pii, or NULL).
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    id: RecordId,
    values: Vec<Option<(String, String)>>,
}

impl Sealed {
    /// A fresh id for a record of `model` with `fields` (a draft's), its pii values sealed.
    pub(crate) fn new(keys: &Keys, model: &ModelDef, fields: &[Value]) -> Result<Self, StoreError> {
        let id = RecordId::new_v7();
        let m = model.name().as_str();
        let values = model
            .fields()
            .iter()
            .zip(fields)
            .map(|(f, v)| match v {
                Value::Text(plain) if f.pii() => Ok(Some((
                    keys.seal(m, f.name().as_str(), id.as_uuid(), plain)?,
                    keys.blind(&blind_label(model, f), plain)?,
                ))),
                _ => Ok(None),
            })
            .collect::<Result<_, StoreError>>()?;
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
        let (sealed, blind) = self.values.get(index)?.as_ref()?;
        Some((sealed, blind))
    }
}

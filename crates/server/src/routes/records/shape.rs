//! A record as a list or read answers it: [`RecordJson`](super::RecordJson)'s form, with
//! only the keys `fields=` names and the records `expand=` inlines (see `expand`).

use super::expand::Node;
use plinth_core::query::shape::Shape;
use plinth_core::{FieldAccess, ModelDef, Record};
use serde::Serialize;
use serde::ser::SerializeMap;

/// A record: base fields first, then declared fields in declaration order, those `access`
/// cannot see left out; with `shape`, only the keys it keeps; with `nodes`, an expanded
/// reference as the record it names (itself shaped by the node's own expansions).
pub(crate) struct Shaped<'a> {
    pub(crate) model: &'a ModelDef,
    pub(crate) record: &'a Record,
    pub(crate) access: FieldAccess,
    pub(super) shape: Option<&'a Shape>,
    pub(super) nodes: &'a [Node],
}

impl<'a> Shaped<'a> {
    /// Every key, nothing expanded.
    pub(crate) fn whole(model: &'a ModelDef, record: &'a Record, access: FieldAccess) -> Self {
        Self {
            model,
            record,
            access,
            shape: None,
            nodes: &[],
        }
    }

    fn keeps(&self, name: &str) -> bool {
        self.shape.is_none_or(|s| s.keeps(name))
    }
}

impl Serialize for Shaped<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = s.serialize_map(None)?;
        // Only the keys kept; each value made only when it is.
        macro_rules! base {
            ($name:literal, $value:expr) => {
                if self.keeps($name) {
                    map.serialize_entry($name, &$value)?;
                }
            };
        }
        base!("id", r.id);
        base!("name", r.name);
        base!("status", r.status.as_str());
        base!("created_at", r.created_at);
        base!("updated_at", r.updated_at);
        base!("owner_id", r.owner_id);
        base!("version", r.version);
        for (i, (f, v)) in self.model.fields().iter().zip(&r.fields).enumerate() {
            let name = f.name().as_str();
            if !f.visible_to(self.access) || !self.keeps(name) {
                continue;
            }
            let inline = self
                .nodes
                .iter()
                .find(|n| n.index == i)
                .and_then(|n| n.record(v).map(|record| (n, record)));
            match inline {
                Some((node, record)) => map.serialize_entry(
                    name,
                    &Shaped {
                        model: &node.model,
                        record,
                        access: self.access,
                        shape: None,
                        nodes: &node.then,
                    },
                )?,
                None => map.serialize_entry(name, v)?,
            }
        }
        map.end()
    }
}

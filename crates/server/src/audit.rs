//! The audit trail as clients and SIEMs read it: [`AuditJson`], one entry in the shape the
//! API answers and `plinth audit export` writes, and the cut a non-admin reader sees.

use plinth_core::{FieldAccess, ModelDef};
use plinth_store::AuditEntry;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value as Json};

/// One entry: `{"seq", "at", "actor": {"kind", "id", "label"}, "action", "target":
/// {"model", "id"}, "request_id", "client_addr", "changes", "prev_hash", "hash"}`.
#[derive(Debug)]
pub struct AuditJson<'a>(pub &'a AuditEntry);

impl Serialize for AuditJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(Some(11))?;
        map.serialize_entry("seq", &e.seq)?;
        map.serialize_entry("at", &e.at.to_string())?;
        map.serialize_entry(
            "actor",
            &serde_json::json!({
                "kind": e.actor_kind,
                "id": e.actor_id.map(|u| u.hyphenated().to_string()),
                "label": e.actor_label,
            }),
        )?;
        map.serialize_entry("action", &e.action)?;
        map.serialize_entry(
            "target",
            &serde_json::json!({
                "model": e.model,
                "id": e.record_id.map(|r| r.to_string()),
            }),
        )?;
        map.serialize_entry("request_id", &e.request_id)?;
        map.serialize_entry("client_addr", &e.client_addr)?;
        map.serialize_entry("changes", &e.changes)?;
        map.serialize_entry("prev_hash", &e.prev_hash)?;
        map.serialize_entry("hash", &e.hash)?;
        map.end()
    }
}

/// `entry` as a reader of its record with `access` may see it: for anyone but admins, only
/// the changes of base fields and of declared fields they may see (not `admin_only` ones,
/// nor fields no longer declared), and no client address. `prev_hash` and `hash` stay: a
/// cut entry no longer verifies, only an admin's whole one does.
pub(crate) fn cut_for(model: &ModelDef, access: FieldAccess, mut entry: AuditEntry) -> AuditEntry {
    if access == FieldAccess::All {
        return entry;
    }
    if let Json::Object(changes) = entry.changes {
        let kept: Map<String, Json> = changes
            .into_iter()
            .filter(|(name, _)| {
                matches!(name.as_str(), "name" | "status")
                    || model.field(name).is_some_and(|(_, f)| f.visible_to(access))
            })
            .collect();
        entry.changes = Json::Object(kept);
    } else {
        entry.changes = Json::Object(Map::new());
    }
    entry.client_addr = None;
    entry
}

//! The audit trail's statements: an entry appended inside the transaction of the record
//! write it records (so a refused or rolled-back write leaves none), the list in `seq`
//! order, and the walk that verifies the hash chain (see `crate::audit`).
//!
//! The chain's head is read and extended under a lock: SQLite's one writer serialises
//! every write; on PostgreSQL a transaction-scoped advisory lock, taken as the write's last
//! step and held until it commits, gives the instances sharing a database one total order
//! with no fork and no gap.

use super::records::By;
use super::{Dialect, Exec, Query, SqlRow};
use crate::StoreError;
use crate::audit::{AuditBreak, AuditEntry, AuditVerdict, actor, hash};
use plinth_core::schema::ValueKind;
use plinth_core::{ModelDef, Record, RecordId, Status, Value};
use serde_json::{Map, Value as Json, json};

/// The advisory lock key of the audit chain's head ("plinthau" in ASCII); not the
/// migration's or the claims' key.
const AUDIT_LOCK: i64 = 0x706c_696e_7468_6175;

/// Entries read per statement while verifying.
const VERIFY_PAGE: u32 = 1000;

const COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_label, action, model, record_id, \
                       request_id, client_addr, changes, prev_hash, hash";

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
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "record.create",
            Self::Update => "record.update",
            Self::Delete => "record.delete",
            Self::Restore => "record.restore",
            Self::Purge => "record.purge",
        }
    }
}

/// What the audit trail says of a pii field's value: that it was set, never the value.
const PII_SHOWN: &str = "[pii]";

/// A field's value as the audit trail shows it: a pii value is masked (NULL stays NULL).
fn shown(f: &plinth_core::schema::FieldDef, v: &Value) -> Json {
    if f.pii() && *v != Value::Null {
        Json::String(PII_SHOWN.to_owned())
    } else {
        v.to_json()
    }
}

/// The base and declared fields of a record that have a value, by name.
fn fields(model: &ModelDef, r: &Record) -> Vec<(String, Json)> {
    let mut out = vec![
        ("name".to_owned(), Json::String(r.name.clone())),
        (
            "status".to_owned(),
            Json::String(r.status.as_str().to_owned()),
        ),
    ];
    for (f, v) in model.fields().iter().zip(&r.fields) {
        if *v != Value::Null {
            out.push((f.name().to_string(), shown(f, v)));
        }
    }
    out
}

/// The changes of a create: every value set, as `to`.
pub(crate) fn created(model: &ModelDef, r: &Record) -> Json {
    let map: Map<String, Json> = fields(model, r)
        .into_iter()
        .map(|(k, v)| (k, json!({ "to": v })))
        .collect();
    Json::Object(map)
}

/// The changes of a purge: every value the record had, as `from`.
pub(crate) fn purged(model: &ModelDef, r: &Record) -> Json {
    let map: Map<String, Json> = fields(model, r)
        .into_iter()
        .map(|(k, v)| (k, json!({ "from": v })))
        .collect();
    Json::Object(map)
}

/// The changes of an update: each base or declared field whose value differs.
pub(crate) fn updated(model: &ModelDef, before: &Record, after: &Record) -> Json {
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
    Json::Object(map)
}

/// The changes of a delete or restore.
pub(crate) fn status_changed(from: Status, to: Status) -> Json {
    json!({ "status": { "from": from.as_str(), "to": to.as_str() } })
}

/// Appends the entry of a record write, inside the write's transaction; its last step.
pub(crate) async fn append<E: Exec>(
    e: &E,
    by: By<'_>,
    action: Action,
    model: &ModelDef,
    record_id: RecordId,
    changes: &Json,
) -> Result<(), StoreError> {
    if E::DIALECT == Dialect::Postgres {
        let mut q = Query::new(E::DIALECT);
        q.push(&format!("SELECT pg_advisory_xact_lock({AUDIT_LOCK})"))
            .cached();
        e.execute(&q).await?;
    }
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, hash FROM _plinth_audit ORDER BY seq DESC LIMIT 1")
        .cached();
    let head = e.row(&q, |r| Ok((r.int(0)?, r.text(1)?))).await?;
    let (seq, prev_hash) = head.map_or((1, String::new()), |(s, h)| (s + 1, h));
    let (ctx, at) = (by.ctx, by.now);
    let (kind, actor_id, label) = actor(ctx);
    let mut entry = AuditEntry {
        seq,
        at,
        actor_kind: kind.to_owned(),
        actor_id,
        actor_label: label.to_owned(),
        action: action.as_str().to_owned(),
        model: Some(model.name().to_string()),
        record_id: Some(record_id),
        request_id: ctx.request_id.clone(),
        client_addr: ctx.client_addr.clone(),
        changes: Json::Null,
        prev_hash,
        hash: String::new(),
    };
    let text = changes.to_string();
    entry.hash = hash(&entry, &text);
    let mut q = Query::new(E::DIALECT);
    q.push("INSERT INTO _plinth_audit (")
        .push(COLUMNS)
        .push(") VALUES (")
        .bind_all([
            entry.seq.into(),
            entry.at.into(),
            kind.into(),
            entry.actor_id.into(),
            label.into(),
            action.as_str().into(),
            model.name().as_str().into(),
            record_id.into(),
            (&entry.request_id).into(),
            entry
                .client_addr
                .as_ref()
                .map_or(super::Param::Null, Into::into),
            (&text).into(),
            (&entry.prev_hash).into(),
            (&entry.hash).into(),
        ])
        .push(")")
        .cached();
    e.execute(&q).await?;
    Ok(())
}

/// One stored entry and its `changes` as stored (what its hash covers).
fn read(r: &impl SqlRow) -> Result<(AuditEntry, String), StoreError> {
    let opt_text = |i| match r.value(i, ValueKind::Text)? {
        Value::Text(s) => Ok(Some(s)),
        _ => Ok(None),
    };
    let text = r.text(10)?;
    let entry = AuditEntry {
        seq: r.int(0)?,
        at: r.time(1)?,
        actor_kind: r.text(2)?,
        actor_id: r.opt_uuid(3)?,
        actor_label: r.text(4)?,
        action: r.text(5)?,
        model: opt_text(6)?,
        record_id: r.opt_uuid(7)?.map(RecordId::from_uuid),
        request_id: r.text(8)?,
        client_addr: opt_text(9)?,
        // Unreadable JSON is kept as a string: verify then reports the entry as changed.
        changes: serde_json::from_str(&text).unwrap_or_else(|_| Json::String(text.clone())),
        prev_hash: r.text(11)?,
        hash: r.text(12)?,
    };
    Ok((entry, text))
}

async fn page<E: Exec>(
    e: &E,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<(AuditEntry, String)>, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM _plinth_audit WHERE seq > ")
        .bind(after_seq)
        .push(" ORDER BY seq LIMIT ")
        .bind(i64::from(limit));
    q.rows_hint = usize::try_from(limit).unwrap_or(0).min(1000);
    e.rows(&q, |r| read(r)).await
}

/// Entries after `after_seq`, at most `limit`, in `seq` order.
pub(crate) async fn list<E: Exec>(
    e: &E,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(page(e, after_seq, limit)
        .await?
        .into_iter()
        .map(|(entry, _)| entry)
        .collect())
}

/// The walk of [`verify`], one page at a time (each page may be its own statement on its
/// own connection: entries are only ever appended).
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// The last `seq` checked (0: none yet).
    pub(crate) last_seq: i64,
    last_hash: String,
    entries: u64,
}

impl Walk {
    /// Checks the next page; `Some` when the walk is over (the chain ended or broke).
    pub(crate) async fn step<E: Exec>(
        &mut self,
        e: &E,
    ) -> Result<Option<AuditVerdict>, StoreError> {
        let rows = page(e, self.last_seq, VERIFY_PAGE).await?;
        if rows.is_empty() {
            return Ok(Some(AuditVerdict::Intact {
                entries: self.entries,
            }));
        }
        for (entry, text) in rows {
            let broken = |reason| {
                Ok(Some(AuditVerdict::Broken {
                    seq: entry.seq,
                    reason,
                }))
            };
            let expected = self.last_seq + 1;
            if entry.seq != expected {
                return broken(AuditBreak::Sequence { expected });
            }
            if entry.prev_hash != self.last_hash {
                return broken(AuditBreak::Link);
            }
            if entry.hash != hash(&entry, &text) {
                return broken(AuditBreak::Hash);
            }
            self.last_seq = entry.seq;
            self.last_hash = entry.hash;
            self.entries += 1;
        }
        Ok(None)
    }
}

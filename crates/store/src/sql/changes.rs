//! The change log's statements (see `crate::changes`): the row a record write logs (drafted
//! with its audit entry, inserted by `audit::append_all` with the entry's `seq`), the read
//! after a `seq`, the window, the prune, and the reset after a restore or an import.
//!
//! A row's `record` is JSON text: the base fields, then `fields`, the declared fields by
//! name, pii values sealed exactly as in the record's table (bound to model, field and id),
//! so no plaintext pii is ever in the log; the two times come last (a create's text is
//! written before its job is queued, and the writer adds them). It is read back against
//! the schema of the reader: fields by name, so a field declared since reads as null and
//! one no longer declared is dropped.

use super::records::Staged;
use super::{Exec, Query, SqlRow, unreadable};
use crate::changes::{Change, ChangeKind, ChangeWindow, ChangesPage};
use crate::{Keys, StoreError};
use plinth_core::schema::{FieldDef, ValueKind};
use plinth_core::{ModelDef, Record, RecordId, Schema, Status, Timestamp, Value};
use serde_json::Value as Json;

/// Version 5 of Plinth's own tables: the log, and its window's one row, which starts at the
/// audit trail's head (nothing before the version was logged, so a reader from before it
/// is told to start again). Both statements are idempotent.
pub(crate) const CHANGES_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_changes (
        seq {int} NOT NULL PRIMARY KEY,
        at {time} NOT NULL,
        kind TEXT NOT NULL,
        model TEXT NOT NULL,
        record_id {uuid} NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _plinth_change_window (
        pruned_through {int} NOT NULL
    );
    INSERT INTO _plinth_change_window (pruned_through)
        SELECT COALESCE(MAX(seq), 0) FROM _plinth_audit
        WHERE NOT EXISTS (SELECT 1 FROM _plinth_change_window);";

/// The statement the audit trail's highest `seq` is read with (0 when it is empty).
pub(crate) const HEAD: &str = "SELECT COALESCE(MAX(seq), 0) FROM _plinth_audit";

/// A change to log, drafted with the audit entry of its write and inserted with its `seq`.
#[derive(Debug)]
pub(crate) struct Logged {
    kind: ChangeKind,
    model: String,
    record_id: RecordId,
    /// The snapshot, as stored.
    record: String,
    /// The record itself, pii values in the clear, when the connection keeps the log's
    /// tail in memory (the SQLite writer: see `Exec::keeps_changes`).
    plain: Option<Record>,
}

impl Logged {
    /// Keeps `r`, the record the snapshot was taken of.
    pub(crate) fn keep(&mut self, r: &Record) {
        self.plain = Some(r.clone());
    }

    /// The change as `after` reads it back, logged with `seq` made `at`, and the size of
    /// its stored snapshot; `None` when the record was not kept.
    pub(crate) fn change(&mut self, seq: i64, at: Timestamp) -> Option<(Change, usize)> {
        let change = Change {
            seq,
            at,
            kind: self.kind,
            model: self.model.clone(),
            record: self.plain.take()?,
        };
        Some((change, self.record.len()))
    }
}

/// The change a write of `kind` logs: `r` as it stands after the write (before it, for a
/// purge), pii values sealed under `keys`; a create's snapshot, but for its times, was made
/// with its values sealed before its job was queued (`staged`).
pub(crate) fn snapshot(
    keys: &Keys,
    model: &ModelDef,
    kind: ChangeKind,
    r: &Record,
    staged: Option<&Staged>,
) -> Result<Logged, StoreError> {
    let record = match staged.and_then(|s| s.logged(r.id)) {
        Some(made) => made.to_owned(),
        None => {
            let (name, status) = (r.name.as_str(), r.status);
            untimed(
                keys,
                model,
                r.id,
                (name, status, r.owner_id, r.version),
                &r.fields,
                staged,
            )?
        }
    };
    Ok(Logged {
        kind,
        model: model.name().as_str().to_owned(),
        record_id: r.id,
        record: timed(record, r.created_at, r.updated_at)?,
        plain: None,
    })
}

/// The base fields of a record but its times: name, status, owner and version.
pub(crate) type Base<'a> = (&'a str, Status, Option<uuid::Uuid>, i64);

/// The snapshot of record `id` of `model` but for its times (see [`timed`]), its pii
/// values sealed under `keys` unless `staged` holds them.
pub(crate) fn untimed(
    keys: &Keys,
    model: &ModelDef,
    id: RecordId,
    (name, status, owner_id, version): Base<'_>,
    values: &[Value],
    staged: Option<&Staged>,
) -> Result<String, StoreError> {
    let m = model.name().as_str();
    let mut fields = Vec::with_capacity(values.len());
    for (i, (f, v)) in model.fields().iter().zip(values).enumerate() {
        let value = match (v, staged.and_then(|s| s.get(id, i))) {
            (Value::Text(_), Some((text, _))) => Field::Sealed(text.into()),
            (Value::Text(plain), _) if f.pii() => {
                Field::Sealed(keys.seal(m, f.name().as_str(), id.as_uuid(), plain)?.into())
            }
            (v, _) => Field::Plain(v),
        };
        fields.push((f.name().as_str(), value));
    }
    let snapshot = Snapshot {
        id,
        name,
        status: status.as_str(),
        owner_id,
        version,
        fields: Fields(fields),
    };
    // Written straight to text: no JSON tree built first.
    serde_json::to_string(&snapshot).map_err(StoreError::internal)
}

/// `untimed` with the record's two times added as its last members.
fn timed(
    mut untimed: String,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> Result<String, StoreError> {
    let times = serde_json::to_string(&Times {
        created_at,
        updated_at,
    })
    .map_err(StoreError::internal)?;
    match (untimed.pop(), times.strip_prefix('{')) {
        (Some('}'), Some(members)) => {
            untimed.push(',');
            untimed.push_str(members);
            Ok(untimed)
        }
        _ => Err(StoreError::internal("a snapshot is not a JSON object")),
    }
}

/// A record as the log stores it (see the module's documentation), but for its times.
#[derive(serde::Serialize)]
struct Snapshot<'a> {
    id: RecordId,
    name: &'a str,
    status: &'a str,
    owner_id: Option<uuid::Uuid>,
    version: i64,
    fields: Fields<'a>,
}

/// The last members of a snapshot, added when the writer has timed the record.
#[derive(serde::Serialize)]
struct Times {
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A declared field's value in a [`Snapshot`]: as it is, or sealed.
enum Field<'a> {
    Plain(&'a Value),
    Sealed(std::borrow::Cow<'a, str>),
}

/// The declared fields by name.
struct Fields<'a>(Vec<(&'a str, Field<'a>)>);

impl serde::Serialize for Field<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Plain(v) => v.serialize(s),
            Self::Sealed(t) => s.serialize_str(t),
        }
    }
}

impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

/// The start of an `INSERT INTO _plinth_changes`, up to its first row of values.
pub(crate) const INSERT: &str =
    "INSERT INTO _plinth_changes (seq, at, kind, model, record_id, record) VALUES ";

/// The row of `c`, logged with the entry `seq` made `at`, as `(…)`.
pub(crate) fn push_row<'a>(q: &mut Query<'a>, c: &'a Logged, seq: i64, at: Timestamp) {
    q.push("(")
        .bind_all([
            seq.into(),
            at.into(),
            c.kind.as_str().into(),
            (&c.model).into(),
            c.record_id.into(),
            (&c.record).into(),
        ])
        .push(")");
}

/// Changes after `after`, reading at most `limit` rows, in `seq` order, against `schema`:
/// changes to models it no longer declares are skipped, but the page's `through` passes
/// them, so a page of nothing but skipped rows still moves its reader on.
pub(crate) async fn after<E: Exec>(
    e: &E,
    keys: &Keys,
    schema: &Schema,
    after: i64,
    limit: u32,
) -> Result<ChangesPage, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, at, kind, model, record FROM _plinth_changes WHERE seq > ")
        .bind(after)
        .push(" ORDER BY seq")
        .limit(i64::from(limit))
        .cached();
    q.rows_hint = usize::try_from(limit).unwrap_or(0).min(1000);
    let rows = e
        .rows(&q, |r| {
            Ok((r.int(0)?, r.time(1)?, r.text(2)?, r.text(3)?, r.text(4)?))
        })
        .await?;
    let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
    let through = rows.last().map_or(after, |r| r.0.max(after));
    let mut out = Vec::with_capacity(rows.len());
    for (seq, at, kind, model, text) in rows {
        let Some(def) = schema.model(&model) else {
            continue;
        };
        let kind = ChangeKind::parse(&kind).ok_or_else(|| unreadable("change kind"))?;
        out.push(Change {
            seq,
            at,
            kind,
            model,
            record: decode(keys, def, &text)?,
        });
    }
    Ok(ChangesPage {
        changes: out,
        through,
        full,
    })
}

/// A snapshot read back against `model` as declared now.
fn decode(keys: &Keys, model: &ModelDef, text: &str) -> Result<Record, StoreError> {
    let v: Json = serde_json::from_str(text).map_err(|_| unreadable("change record"))?;
    let text_of = |k: &str| v[k].as_str().ok_or_else(|| unreadable("change record"));
    let id = RecordId::parse(text_of("id")?).map_err(|_| unreadable("change record id"))?;
    let fields = model
        .fields()
        .iter()
        .map(|f| field(keys, model, id, f, &v["fields"][f.name().as_str()]))
        .collect();
    let time = |k: &str| Timestamp::parse(text_of(k)?).map_err(|_| unreadable("change time"));
    Ok(Record {
        id,
        name: text_of("name")?.to_owned(),
        status: text_of("status")?
            .parse::<Status>()
            .map_err(|_| unreadable("status"))?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        owner_id: match v["owner_id"].as_str() {
            Some(s) => Some(uuid::Uuid::try_parse(s).map_err(|_| unreadable("owner_id"))?),
            None => None,
        },
        version: v["version"]
            .as_i64()
            .ok_or_else(|| unreadable("change version"))?,
        fields,
    })
}

/// A field's value from its stored JSON: pii opened, and null when it cannot be (its key
/// retired) or no longer has the field's type (a type changed since): one such value never
/// costs the reader the page.
fn field(keys: &Keys, model: &ModelDef, id: RecordId, f: &FieldDef, v: &Json) -> Value {
    let kind = f.value_kind();
    match v {
        Json::Null => Value::Null,
        Json::String(sealed) if f.pii() => keys
            .open(
                model.name().as_str(),
                f.name().as_str(),
                id.as_uuid(),
                sealed,
            )
            .map_or(Value::Null, Value::Text),
        v => value(kind, v).unwrap_or(Value::Null),
    }
}

fn value(kind: ValueKind, v: &Json) -> Option<Value> {
    Some(match kind {
        ValueKind::Text => Value::Text(v.as_str()?.to_owned()),
        ValueKind::Integer => Value::Integer(v.as_i64()?),
        ValueKind::Float => Value::Float(v.as_f64()?),
        ValueKind::Boolean => Value::Boolean(v.as_bool()?),
        ValueKind::Datetime => Value::Datetime(Timestamp::parse(v.as_str()?).ok()?),
        ValueKind::Json => Value::Json(v.clone()),
        ValueKind::Uuid => Value::Reference(RecordId::parse(v.as_str()?).ok()?),
        kind @ (ValueKind::Date | ValueKind::Decimal(_) | ValueKind::Array(_)) => {
            Value::from_json(kind, v)?
        }
    })
}

/// Where the log stands.
pub(crate) async fn window<E: Exec>(e: &E) -> Result<ChangeWindow, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT COALESCE((SELECT MAX(pruned_through) FROM _plinth_change_window), 0), (")
        .push(HEAD)
        .push(")")
        .cached();
    let (pruned_through, head) = e
        .row(&q, |r| Ok((r.int(0)?, r.int(1)?)))
        .await?
        .unwrap_or((0, 0));
    Ok(ChangeWindow {
        pruned_through,
        head,
    })
}

/// Removes, in the caller's transaction, the oldest changes made before `before`, at most
/// `limit` (a run from the oldest: the first made at or after `before` stops it), and raises
/// the window's `pruned_through` to the last removed. Instances pruning together remove each
/// row once, and the window only ever rises.
pub(crate) async fn prune<E: Exec>(
    e: &E,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, at FROM _plinth_changes ORDER BY seq")
        .limit(i64::from(limit));
    q.rows_hint = usize::try_from(limit).unwrap_or(0).min(1000);
    let oldest = e.rows(&q, |r| Ok((r.int(0)?, r.time(1)?))).await?;
    let Some(last) = oldest
        .iter()
        .take_while(|(_, at)| *at < before)
        .map(|(seq, _)| *seq)
        .last()
    else {
        return Ok(0);
    };
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_changes WHERE seq <= ")
        .bind(last);
    let removed = e.execute(&q).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("UPDATE _plinth_change_window SET pruned_through = ")
        .bind(last)
        .push(" WHERE pruned_through < ")
        .bind(last);
    e.execute(&q).await?;
    Ok(removed)
}

/// Forgets the log after a restore or an import, in its transaction: no row is kept and the
/// window starts at the trail's head, so no reader replays across it.
pub(crate) async fn reset<E: Exec>(e: &E) -> Result<(), StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_changes");
    e.execute(&q).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("UPDATE _plinth_change_window SET pruned_through = (")
        .push(HEAD)
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{decode, snapshot};
    use crate::changes::ChangeKind;
    use crate::seal::{Keyring, Keys};
    use crate::sql::records::Staged;
    use plinth_core::policy::{Principal, Role};
    use plinth_core::schema::ModelDecl;
    use plinth_core::{FieldAccess, ModelDef};
    use plinth_core::{Record, RecordId, Schema, Status, Timestamp};
    use serde_json::json;

    /// A record of every field type, pii included, reads back from its logged snapshot
    /// exactly as it was written, and the snapshot holds no pii value in plaintext.
    #[test]
    fn a_snapshot_reads_back_as_the_record_it_logged() {
        let decls: Vec<ModelDecl> = serde_json::from_value(json!([
            {"name": "target", "fields": []},
            {"name": "every", "fields": [
                {"name": "contact", "type": "string", "pii": true},
                {"name": "note", "type": "text"},
                {"name": "qty", "type": "integer"},
                {"name": "score", "type": "float"},
                {"name": "vip", "type": "boolean"},
                {"name": "born", "type": "datetime"},
                {"name": "meta", "type": "json"},
                {"name": "other", "type": "reference", "model": "target"},
                {"name": "since", "type": "date"},
                {"name": "balance", "type": "decimal", "scale": 3},
                {"name": "tags", "type": "array", "items": "string"},
                {"name": "sizes", "type": "array", "items": "integer"},
                {"name": "empty", "type": "string"}
            ]}
        ]))
        .expect("declarations");
        let schema = Schema::from_decls(&decls).expect("a schema");
        let model = schema.model("every").expect("every");
        let body = json!({
            "name": "quote \" and \\ and é", "contact": "ada@example.com", "note": "line\nbreak",
            "qty": -7, "score": 2.5, "vip": true, "born": "2026-11-27T20:26:22.123456Z",
            "meta": {"a": [1, null, "x"]}, "other": RecordId::new_v7().to_string(),
            "since": "2026-12-01", "balance": "12.345", "tags": ["a", "b"], "sizes": [1, 2]
        });
        let draft = plinth_core::input::validate_draft(model, &body, FieldAccess::All)
            .expect("a valid draft");
        let at = Timestamp::from_system(std::time::SystemTime::now());
        let record = Record {
            id: RecordId::new_v7(),
            name: draft.name,
            status: Status::Inactive,
            created_at: at,
            updated_at: at,
            owner_id: Some(uuid::Uuid::now_v7()),
            version: 3,
            fields: draft.fields,
        };
        let keys = Keys::fixed(Keyring::generate().expect("keys"));
        let logged = snapshot(&keys, model, ChangeKind::Created, &record, None).expect("logged");
        assert!(
            !logged.record.contains("ada@example.com"),
            "{}",
            logged.record
        );
        assert_eq!(
            decode(&keys, model, &logged.record).expect("decoded"),
            record
        );
    }

    /// A create's snapshot, made before its job is queued and timed by the writer, reads
    /// back as the record the writer stores (owner, version and status included) and keeps
    /// the pii value as it was sealed then.
    #[test]
    fn a_snapshot_made_before_the_job_reads_back_as_the_stored_record() {
        let decls: Vec<ModelDecl> = serde_json::from_value(json!([{"name": "person", "fields": [
            {"name": "contact", "type": "string", "pii": true},
            {"name": "qty", "type": "integer"}
        ]}]))
        .expect("declarations");
        let schema = Schema::from_decls(&decls).expect("a schema");
        let model: &ModelDef = schema.model("person").expect("person");
        let body =
            json!({"name": "p", "status": "inactive", "contact": "ada@example.com", "qty": 2});
        let draft = plinth_core::input::validate_draft(model, &body, FieldAccess::All)
            .expect("a valid draft");
        let owner = uuid::Uuid::now_v7();
        let ctx = crate::WriteCtx::new(Principal::user(owner, Role::User), "made-before");
        let keys = Keys::fixed(Keyring::generate().expect("keys"));
        let staged = Staged::new(&keys, &ctx, model, &draft).expect("made");
        let at = Timestamp::from_system(std::time::SystemTime::now());
        let record = Record {
            id: staged.id(),
            name: draft.name.clone(),
            status: draft.status,
            created_at: at,
            updated_at: at,
            owner_id: Some(owner),
            version: 1,
            fields: draft.fields.clone(),
        };
        let logged =
            snapshot(&keys, model, ChangeKind::Created, &record, Some(&staged)).expect("logged");
        assert_eq!(
            decode(&keys, model, &logged.record).expect("decoded"),
            record
        );
        let stored: serde_json::Value = serde_json::from_str(&logged.record).expect("JSON");
        let (text, _) = staged.get(record.id, 0).expect("sealed before");
        assert_eq!(stored["fields"]["contact"], json!(text), "{stored}");
        assert!(!logged.record.contains("ada@example.com"), "{stored}");
    }
}

//! `plinth export` / `plinth import`: a whole deployment (model declarations, users,
//! feature flags, every record of every model, deleted ones included) as JSON lines, engine
//! to engine.
//!
//! The format: a header line `{"plinth_export": 1, "models": [declarations]}`, then one
//! line per user (`{"user": {…}}`, with its argon2id hash, so passwords keep working), per
//! feature flag (`{"flag": {"id": …, "key": …, "rollout": percent, "allow": […], …}}`) and
//! per record (`{"record": {"model": …, "id": …, …, "fields": {…}}}`), each followed by
//! one line per file it holds (`{"file": {"model": …, "record_id": …, "field": …, "name":
//! …, "hash": …, …}}`: the file table, not the contents). Ids, timestamps,
//! owners, versions and statuses are kept exactly. Files written before flags were
//! exported (no flag lines, same format 1) still import. Refresh tokens, API keys and the
//! audit trail are not exported: sessions end with the move, keys must be issued again
//! (a flag's `api_key:` entries then name none), and the source's audit trail stays with
//! it (the import itself is not audited). A user's line is followed by the lines of its
//! TOTP secret (opened: sealed again under the target's keys), recovery codes (digests)
//! and OpenID Connect identities, so second factors and provider links move too
//! (`factors`).

use crate::files::{StoredFile, file_from, file_json};
use crate::{OidcIdentity, RecoveryCode, Store, StoreError, TotpState, User};
use plinth_core::auth::{parse_role, role_name};
use plinth_core::flags::{
    Audience, Flag, FlagKey, FlagRule, MAX_AUDIENCE, MAX_DESCRIPTION, Rollout,
};
use plinth_core::schema::{FieldType, ValueKind};
use plinth_core::{
    FieldAccess, ListQuery, ListScope, ModelDef, Record, RecordId, Schema, Status, Timestamp, Value,
};
use serde_json::{Value as Json, json};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::sync::Arc;
use uuid::Uuid;

mod factors;
#[cfg(test)]
mod tests;

/// The format version written in the header.
const FORMAT: u64 = 1;
/// Page size while reading the source.
const PAGE: &str = "200";

/// What was moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// Feature flags.
    pub flags: u64,
    /// Records, all models together.
    pub records: u64,
    /// Users with a TOTP second factor on (their secret, last accepted step and recovery
    /// codes move with them).
    pub second_factors: u64,
    /// OpenID Connect identities (provider links).
    pub identities: u64,
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a Plinth export, or does not fit the target.
    #[error("line {line}: {reason}")]
    Format {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The target already holds data.
    #[error("the target database is not empty ({0}); import only into a fresh database")]
    NotEmpty(String),
}

/// One parsed line of an export: a user, a feature flag or a record of a declared model.
#[derive(Debug, Clone)]
pub enum Item {
    /// An account, with its password hash.
    User(User),
    /// A feature flag, exactly as exported.
    Flag(Flag),
    /// A record, exactly as exported.
    Record(Arc<ModelDef>, Record),
    /// A file a record holds (its row in the file table), exactly as exported.
    File(Arc<ModelDef>, RecordId, StoredFile),
    /// A user's TOTP enrolment, its secret opened (sealed under the target's keys on import).
    Totp(TotpState),
    /// One of a user's recovery codes.
    RecoveryCode(Uuid, RecoveryCode),
    /// A provider subject linked to a user.
    OidcIdentity(OidcIdentity),
}

/// An [`Item`] and the line it was read from (1-based), for messages.
#[derive(Debug, Clone)]
pub struct Line {
    /// The line number.
    pub number: u64,
    /// What it holds.
    pub item: Item,
}

/// Writes every user, every feature flag and every record, at the schema recorded in the
/// database (the models its last migration applied, whatever `plinth.toml` declares now).
/// Reads only.
pub async fn export(store: &dyn Store, out: &mut dyn Write) -> Result<Counts, TransferError> {
    let decls = store.recorded().await?;
    let schema = if decls.is_empty() {
        None
    } else {
        Some(Schema::from_decls(&decls).map_err(|_| {
            StoreError::internal("the model declarations recorded in the database are invalid")
        })?)
    };
    writeln!(
        out,
        "{}",
        json!({ "plinth_export": FORMAT, "models": decls })
    )?;
    let mut counts = Counts::default();
    let mut after = None;
    loop {
        let users = store.list_users(after, 200).await?;
        for u in &users {
            writeln!(out, "{}", json!({ "user": user_json(u) }))?;
            counts.users += 1;
            factors::export_user(store, u.id, out, &mut counts).await?;
        }
        match users.last() {
            Some(u) if users.len() == 200 => after = Some(u.id),
            _ => break,
        }
    }
    for f in store.list_flags().await? {
        writeln!(out, "{}", json!({ "flag": flag_json(&f) }))?;
        counts.flags += 1;
    }
    for model in schema.iter().flat_map(Schema::models) {
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![
                (
                    "status[in]".to_owned(),
                    "active,inactive,deleted".to_owned(),
                ),
                ("sort".to_owned(), "created_at".to_owned()),
                ("limit".to_owned(), PAGE.to_owned()),
            ];
            if let Some(c) = &cursor {
                pairs.push(("cursor".to_owned(), c.clone()));
            }
            let query =
                ListQuery::parse(model, &pairs, FieldAccess::All).map_err(StoreError::internal)?;
            let page = store.list(model, &query, ListScope::All).await?;
            let with_files = model
                .fields()
                .iter()
                .any(|f| matches!(f.ty(), FieldType::File(_)));
            for r in &page.records {
                writeln!(out, "{}", json!({ "record": record_json(model, r) }))?;
                counts.records += 1;
                if with_files {
                    for f in store.files_of(model, r.id).await? {
                        writeln!(out, "{}", json!({ "file": file_json(model, r.id, &f) }))?;
                    }
                }
            }
            match page.records.last() {
                Some(last) if page.has_more => cursor = Some(query.next_cursor(last)),
                _ => break,
            }
        }
    }
    out.flush()?;
    Ok(counts)
}

/// Reads an export into an empty database, migrated to `schema` first, all in one
/// transaction: it completes, or leaves the database as it was (and can be retried). The
/// whole file is read and checked before the database is touched.
pub async fn import(
    store: &dyn Store,
    schema: &Schema,
    input: &mut dyn BufRead,
) -> Result<Counts, TransferError> {
    import_lines(store, schema, parse(schema, input)?).await
}

/// [`import`] of lines already [`parse`]d.
pub async fn import_lines(
    store: &dyn Store,
    schema: &Schema,
    lines: Vec<Line>,
) -> Result<Counts, TransferError> {
    let mut counts = Counts::default();
    for line in &lines {
        match line.item {
            Item::User(_) => counts.users += 1,
            Item::Flag(_) => counts.flags += 1,
            Item::Record(..) => counts.records += 1,
            Item::File(..) => {}
            ref other => factors::count(other, &mut counts),
        }
    }
    store.import(schema, lines).await?;
    Ok(counts)
}

/// Every line of an export, parsed against `schema`.
pub fn parse(schema: &Schema, input: &mut dyn BufRead) -> Result<Vec<Line>, TransferError> {
    let mut lines = Vec::new();
    let mut line_no = 0u64;
    let mut line = String::new();
    let mut users = HashSet::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        let bad = |reason: String| TransferError::Format {
            line: line_no,
            reason,
        };
        let v: Json = serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        if line_no == 1 {
            if v["plinth_export"].as_u64() != Some(FORMAT) {
                return Err(bad("not a Plinth export (format 1)".to_owned()));
            }
            continue;
        }
        let item = if let Some(u) = v.get("user") {
            let user = user_from(u).map_err(bad)?;
            users.insert(user.id);
            Item::User(user)
        } else if let Some(item) = factors::parse_line(&v, &users) {
            item.map_err(bad)?
        } else if let Some(f) = v.get("flag") {
            Item::Flag(flag_from(f).map_err(bad)?)
        } else if let Some(r) = v.get("record") {
            let name = r["model"].as_str().unwrap_or_default();
            let model = schema
                .model(name)
                .ok_or_else(|| bad(format!("model {name:?} is not declared in the target")))?;
            Item::Record(Arc::clone(model), record_from(model, r).map_err(bad)?)
        } else if let Some(f) = v.get("file") {
            let name = f["model"].as_str().unwrap_or_default();
            let model = schema
                .model(name)
                .ok_or_else(|| bad(format!("model {name:?} is not declared in the target")))?;
            let (id, file) = file_from(model, f).map_err(bad)?;
            Item::File(Arc::clone(model), id, file)
        } else {
            return Err(bad(
                "neither a user, a second factor, an identity, a flag, a record nor a file"
                    .to_owned(),
            ));
        };
        lines.push(Line {
            number: line_no,
            item,
        });
    }
    if line_no == 0 {
        return Err(TransferError::Format {
            line: 0,
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(lines)
}

fn user_json(u: &User) -> Json {
    json!({
        "id": u.id, "email": u.email, "role": role_name(u.role), "password_hash": u.password_hash,
        "created_at": u.created_at.to_string(), "updated_at": u.updated_at.to_string(), "version": u.version,
        "email_verified_at": u.email_verified_at.map(|t| t.to_string()),
    })
}

fn user_from(v: &Json) -> Result<User, String> {
    let text = |k: &str| v[k].as_str().ok_or_else(|| format!("user without {k}"));
    Ok(User {
        id: Uuid::try_parse(text("id")?).map_err(|_| "bad user id".to_owned())?,
        email: text("email")?.to_owned(),
        role: parse_role(text("role")?)?,
        password_hash: text("password_hash")?.to_owned(),
        created_at: Timestamp::parse(text("created_at")?)?,
        updated_at: Timestamp::parse(text("updated_at")?)?,
        version: v["version"].as_i64().ok_or("user without version")?,
        // Files from before verification carry none: not verified.
        email_verified_at: match v["email_verified_at"].as_str() {
            Some(t) => Some(Timestamp::parse(t)?),
            None => None,
        },
    })
}

fn flag_json(f: &Flag) -> Json {
    let list = |l: &[Audience]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
    json!({
        "id": f.id, "key": f.key.as_str(), "description": f.description, "enabled": f.rule.enabled,
        "rollout": f.rule.rollout.percent(), "allow": list(&f.rule.allow), "deny": list(&f.rule.deny),
        "on_from": time(f.rule.on_from), "off_after": time(f.rule.off_after),
        "created_at": f.created_at.to_string(), "updated_at": f.updated_at.to_string(), "version": f.version,
    })
}

/// A flag back from its line, checked as the API checks one (but for which `plinth.*` keys
/// Plinth knows: a flag stored by an older release moves as it is).
fn flag_from(v: &Json) -> Result<Flag, String> {
    let text = |k: &str| v[k].as_str().ok_or_else(|| format!("flag without {k}"));
    let key = FlagKey::parse(text("key")?).map_err(|e| format!("key {e}"))?;
    let description = text("description")?.to_owned();
    if description.chars().count() > MAX_DESCRIPTION || description.contains('\0') {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION} characters, without NUL"
        ));
    }
    let list = |k: &str| -> Result<Vec<Audience>, String> {
        let entries = v[k].as_array().ok_or_else(|| format!("flag without {k}"))?;
        if entries.len() > MAX_AUDIENCE {
            return Err(format!("{k} must hold at most {MAX_AUDIENCE} entries"));
        }
        entries
            .iter()
            .map(|e| {
                Audience::parse(e.as_str().unwrap_or_default()).map_err(|r| format!("{k} {r}"))
            })
            .collect()
    };
    let time = |k: &str| match &v[k] {
        Json::Null => Ok(None),
        t => t
            .as_str()
            .ok_or_else(|| format!("{k} must be a time or null"))
            .and_then(|t| Timestamp::parse(t).map_err(|e| format!("{k} {e}")))
            .map(Some),
    };
    let rule = FlagRule {
        enabled: v["enabled"].as_bool().ok_or("flag without enabled")?,
        rollout: Rollout::from_percent(v["rollout"].as_f64().ok_or("flag without rollout")?)
            .map_err(|e| format!("rollout {e}"))?,
        allow: list("allow")?,
        deny: list("deny")?,
        on_from: time("on_from")?,
        off_after: time("off_after")?,
    };
    rule.check()
        .map_err(|(field, reason)| format!("{field} {reason}"))?;
    Ok(Flag {
        id: Uuid::try_parse(text("id")?).map_err(|_| "bad flag id".to_owned())?,
        key,
        description,
        rule,
        created_at: time("created_at")?.ok_or("flag without created_at")?,
        updated_at: time("updated_at")?.ok_or("flag without updated_at")?,
        version: v["version"].as_i64().ok_or("flag without version")?,
    })
}

fn record_json(model: &ModelDef, r: &Record) -> Json {
    let fields: serde_json::Map<String, Json> = model
        .fields()
        .iter()
        .zip(&r.fields)
        .map(|(f, v)| (f.name().to_string(), v.to_json()))
        .collect();
    json!({
        "model": model.name().as_str(), "id": r.id.to_string(), "name": r.name, "status": r.status.as_str(),
        "created_at": r.created_at.to_string(), "updated_at": r.updated_at.to_string(),
        "owner_id": r.owner_id, "version": r.version, "fields": fields,
    })
}

fn record_from(model: &ModelDef, v: &Json) -> Result<Record, String> {
    let text = |k: &str| v[k].as_str().ok_or_else(|| format!("record without {k}"));
    let mut fields = Vec::with_capacity(model.fields().len());
    for f in model.fields() {
        let raw = &v["fields"][f.name().as_str()];
        fields
            .push(value_from(f.value_kind(), raw).map_err(|e| format!("field {}: {e}", f.name()))?);
    }
    Ok(Record {
        id: RecordId::parse(text("id")?)?,
        name: text("name")?.to_owned(),
        status: text("status")?.parse::<Status>()?,
        created_at: Timestamp::parse(text("created_at")?)?,
        updated_at: Timestamp::parse(text("updated_at")?)?,
        owner_id: match &v["owner_id"] {
            Json::Null => None,
            o => Some(
                Uuid::try_parse(o.as_str().unwrap_or_default())
                    .map_err(|_| "bad owner_id".to_owned())?,
            ),
        },
        version: v["version"].as_i64().ok_or("record without version")?,
        fields,
    })
}

/// A stored value back from its JSON form; no constraint checks (the data was valid when
/// written, and constraints may have changed since).
fn value_from(kind: ValueKind, v: &Json) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let wrong = || "wrong type".to_owned();
    Ok(match kind {
        ValueKind::Text => Value::Text(v.as_str().ok_or_else(wrong)?.to_owned()),
        ValueKind::Integer => Value::Integer(v.as_i64().ok_or_else(wrong)?),
        ValueKind::Float => Value::Float(v.as_f64().ok_or_else(wrong)?),
        ValueKind::Boolean => Value::Boolean(v.as_bool().ok_or_else(wrong)?),
        ValueKind::Datetime => Value::Datetime(Timestamp::parse(v.as_str().ok_or_else(wrong)?)?),
        ValueKind::Json => Value::Json(v.clone()),
        ValueKind::Uuid => Value::Reference(RecordId::parse(v.as_str().ok_or_else(wrong)?)?),
        kind @ (ValueKind::Date | ValueKind::Decimal(_) | ValueKind::Array(_)) => {
            Value::from_json(kind, v).ok_or_else(wrong)?
        }
    })
}

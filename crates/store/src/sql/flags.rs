//! Feature flags in `_plinth_flags`: made, read, changed and deleted, each change with its
//! audit event (`flag.create`, `flag.update`, `flag.delete`) as its transaction's last step
//! and announced to other instances (PostgreSQL) in the same transaction.

use super::audit::append_event;
use super::records::By;
use super::{Exec, INVALIDATE_CHANNEL, Query, SqlRow, unreadable};
use crate::StoreError;
use crate::audit::Event;
use crate::flags::{FlagVersion, NewFlag};
use plinth_core::flags::{Audience, Flag, FlagChanges, FlagKey, FlagRule, Rollout};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// The flags table, in the placeholders of `Dialect::render`: version 4 of Plinth's own
/// tables (`versions::VERSIONS`).
pub(crate) const FLAGS_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_flags (
        id {uuid} NOT NULL PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        enabled {int} NOT NULL CHECK (enabled = 0 OR enabled = 1),
        rollout {int} NOT NULL CHECK (rollout >= 0 AND rollout <= 10000),
        allow_list TEXT NOT NULL,
        deny_list TEXT NOT NULL,
        on_from {time},
        off_after {time},
        created_at {time} NOT NULL,
        updated_at {time} NOT NULL,
        version {int} NOT NULL DEFAULT 1
    );";

const COLS: &str = "id, key, description, enabled, rollout, allow_list, deny_list, on_from, \
                    off_after, created_at, updated_at, version";

/// The payload of a flag change's notice on [`INVALIDATE_CHANNEL`].
pub(crate) const FLAGS_NOTICE: &str = "flags";

fn query<'a, E: Exec>(sql: &str) -> Query<'a> {
    let mut q = Query::new(E::DIALECT);
    q.push(sql);
    q
}

/// An audience list as stored: a JSON array of its entries' text.
fn list_text(list: &[Audience]) -> String {
    Json::from(list.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

fn list_json(list: &[Audience]) -> Json {
    list.iter().map(ToString::to_string).collect()
}

fn list_at(row: &impl SqlRow, i: usize) -> Result<Vec<Audience>, StoreError> {
    let entries: Vec<String> =
        serde_json::from_str(&row.text(i)?).map_err(|_| unreadable("flag audience"))?;
    entries
        .iter()
        .map(|s| Audience::parse(s).map_err(|_| unreadable("flag audience")))
        .collect()
}

fn flag_row(row: &impl SqlRow) -> Result<Flag, StoreError> {
    Ok(Flag {
        id: row.uuid(0)?,
        key: FlagKey::parse(&row.text(1)?).map_err(|_| unreadable("flag key"))?,
        description: row.text(2)?,
        rule: FlagRule {
            enabled: row.int(3)? != 0,
            rollout: Rollout::from_basis_points(row.int(4)?)
                .map_err(|_| unreadable("flag rollout"))?,
            allow: list_at(row, 5)?,
            deny: list_at(row, 6)?,
            on_from: row.opt_time(7)?,
            off_after: row.opt_time(8)?,
        },
        created_at: row.time(9)?,
        updated_at: row.time(10)?,
        version: row.int(11)?,
    })
}

/// A flag as its audit entries show it.
fn shown(f: &Flag) -> Json {
    json!({
        "key": f.key.as_str(),
        "description": f.description,
        "enabled": f.rule.enabled,
        "rollout": f.rule.rollout.percent(),
        "allow": list_json(&f.rule.allow),
        "deny": list_json(&f.rule.deny),
        "on_from": f.rule.on_from.map(|t| t.to_string()),
        "off_after": f.rule.off_after.map(|t| t.to_string()),
    })
}

/// `{"part": {"from": …, "to": …}}` for each part that differs (`from` left out when
/// there is no before, `to` when there is no after); the key is always named.
fn diff(before: Option<&Flag>, after: Option<&Flag>) -> Json {
    let (b, a) = (before.map(shown), after.map(shown));
    let mut out = serde_json::Map::new();
    let parts = b.as_ref().or(a.as_ref()).and_then(Json::as_object);
    for name in parts.into_iter().flat_map(|o| o.keys()) {
        let from = b.as_ref().map(|v| v[name].clone());
        let to = a.as_ref().map(|v| v[name].clone());
        if from == to && name != "key" {
            continue;
        }
        let mut change = serde_json::Map::new();
        if let Some(from) = from {
            change.insert("from".to_owned(), from);
        }
        if let Some(to) = to {
            change.insert("to".to_owned(), to);
        }
        out.insert(name.clone(), Json::Object(change));
    }
    Json::Object(out)
}

/// Tells every instance (on commit) to load the flags again, where other instances can
/// share the database.
async fn announce<E: Exec>(e: &E) -> Result<(), StoreError> {
    if E::DIALECT.announces() {
        let mut q = query::<E>("SELECT pg_notify(");
        q.bind(INVALIDATE_CHANNEL)
            .push(", ")
            .bind(FLAGS_NOTICE)
            .push(")");
        e.execute(&q).await?;
    }
    Ok(())
}

fn key_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { .. } => StoreError::Conflict {
            field: Some("key".to_owned()),
            reason: "a flag with this key already exists".to_owned(),
        },
        other => other,
    }
}

/// Inserts `flag` as it is: id, times and version included.
async fn insert<E: Exec>(e: &E, flag: &Flag) -> Result<(), StoreError> {
    let (allow, deny) = (list_text(&flag.rule.allow), list_text(&flag.rule.deny));
    let mut q = query::<E>("INSERT INTO _plinth_flags (");
    q.push(COLS)
        .push(") VALUES (")
        .bind_all([
            flag.id.into(),
            flag.key.as_str().into(),
            (&flag.description).into(),
            i64::from(flag.rule.enabled).into(),
            i64::from(flag.rule.rollout.basis_points()).into(),
            (&allow).into(),
            (&deny).into(),
            flag.rule.on_from.into(),
            flag.rule.off_after.into(),
            flag.created_at.into(),
            flag.updated_at.into(),
            flag.version.into(),
        ])
        .push(")");
    e.execute(&q).await?;
    Ok(())
}

/// Inserts a flag of an export exactly, unannounced and unaudited like the import's users
/// and records (the import runs alone, and the target's audit trail starts after it).
pub(crate) async fn import_flag<E: Exec>(e: &E, flag: &Flag) -> Result<(), StoreError> {
    insert(e, flag).await.map_err(|err| match err {
        StoreError::Conflict {
            field: Some(field), ..
        } => StoreError::Conflict {
            reason: format!("another flag already has this {field}"),
            field: Some(field),
        },
        other => other,
    })
}

pub(crate) async fn create_flag<E: Exec>(
    e: &E,
    by: By<'_>,
    new: NewFlag,
) -> Result<Flag, StoreError> {
    let flag = Flag {
        id: Uuid::now_v7(),
        key: new.key,
        description: new.description,
        rule: new.rule,
        created_at: by.now,
        updated_at: by.now,
        version: 1,
    };
    insert(e, &flag).await.map_err(key_conflict)?;
    announce(e).await?;
    append_event(
        e,
        by,
        Event::FlagCreate,
        Some(flag.id),
        &diff(None, Some(&flag)),
    )
    .await?;
    Ok(flag)
}

pub(crate) async fn list_flags<E: Exec>(e: &E) -> Result<Vec<Flag>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(COLS).push(" FROM _plinth_flags ORDER BY key");
    e.rows(&q, |r| flag_row(r)).await
}

pub(crate) async fn get_flag<E: Exec>(e: &E, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(COLS)
        .push(" FROM _plinth_flags WHERE key = ")
        .bind(key.as_str());
    e.row(&q, |r| flag_row(r)).await
}

/// A flag's row, locked until the transaction ends.
async fn lock_flag<E: Exec>(e: &E, key: &FlagKey) -> Result<Flag, StoreError> {
    let mut q = query::<E>("SELECT ");
    q.push(COLS)
        .push(" FROM _plinth_flags WHERE key = ")
        .bind(key.as_str())
        .push(E::DIALECT.for_update());
    e.row(&q, |r| flag_row(r))
        .await?
        .ok_or(StoreError::NotFound)
}

/// `Stale` unless `flag` is the one expected (same id: not one made again under its key)
/// at the version expected.
fn check_version(flag: &Flag, expected: Option<FlagVersion>) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != FlagVersion::of(flag) => Err(StoreError::Stale {
            expected: e.version,
            current: flag.version,
        }),
        _ => Ok(()),
    }
}

pub(crate) async fn update_flag<E: Exec>(
    e: &E,
    by: By<'_>,
    key: &FlagKey,
    changes: &FlagChanges,
    expected: Option<FlagVersion>,
) -> Result<Flag, StoreError> {
    let before = lock_flag(e, key).await?;
    check_version(&before, expected)?;
    let mut after = changes.apply(&before);
    if after == before {
        return Ok(before);
    }
    after
        .rule
        .check()
        .map_err(|(field, reason)| StoreError::InvalidValue {
            reason: format!("{field} {reason}"),
        })?;
    after.updated_at = by.now;
    after.version = before.version + 1;
    let (allow, deny) = (list_text(&after.rule.allow), list_text(&after.rule.deny));
    let mut q = query::<E>("UPDATE _plinth_flags SET description = ");
    q.bind(&after.description)
        .push(", enabled = ")
        .bind(i64::from(after.rule.enabled))
        .push(", rollout = ")
        .bind(i64::from(after.rule.rollout.basis_points()))
        .push(", allow_list = ")
        .bind(&allow)
        .push(", deny_list = ")
        .bind(&deny)
        .push(", on_from = ")
        .bind(after.rule.on_from)
        .push(", off_after = ")
        .bind(after.rule.off_after)
        .push(", updated_at = ")
        .bind(after.updated_at)
        .push(", version = ")
        .bind(after.version)
        .push(" WHERE id = ")
        .bind(before.id)
        .push(" AND version = ")
        .bind(before.version);
    if e.execute(&q).await? == 0 {
        return Err(StoreError::Contention(
            "the flag changed meanwhile".to_owned(),
        ));
    }
    drop(q);
    announce(e).await?;
    let changes = diff(Some(&before), Some(&after));
    append_event(e, by, Event::FlagUpdate, Some(after.id), &changes).await?;
    Ok(after)
}

pub(crate) async fn delete_flag<E: Exec>(
    e: &E,
    by: By<'_>,
    key: &FlagKey,
    expected: Option<FlagVersion>,
) -> Result<(), StoreError> {
    let before = lock_flag(e, key).await?;
    check_version(&before, expected)?;
    let mut q = query::<E>("DELETE FROM _plinth_flags WHERE id = ");
    q.bind(before.id);
    if e.execute(&q).await? == 0 {
        return Err(StoreError::NotFound);
    }
    drop(q);
    announce(e).await?;
    let changes = diff(Some(&before), None);
    append_event(e, by, Event::FlagDelete, Some(before.id), &changes).await
}

//! Key rotation: re-sealing stored values under the active key, and counting the values
//! each key still seals (by the `v1:<key id>:` prefix, without opening them).
//!
//! A batch reads up to `limit` rows past a cursor (by id) that hold a value sealed under
//! another key, opens each such value and seals it again under the active key, bound to
//! the same table, column and row. Each row is written with a compare-and-set on the sealed
//! texts it read, so a row changed meanwhile keeps its newer value (a later pass takes it
//! if it is still under an old key). `version` and `updated_at` stay: the record did not
//! change, and neither does its blind index (the `index` key is never rotated).

use super::{Exec, Query, SqlRow};
use crate::StoreError;
use crate::seal::{Keys, SealedTable};
use plinth_core::Value;
use plinth_core::schema::ValueKind;
use uuid::Uuid;

/// What one batch of [`reseal`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Rows read that held a value under another key.
    pub rows: u64,
    /// Values sealed again under the active key.
    pub values: u64,
    /// Rows changed by another writer between the read and the write: left as they are.
    pub skipped: u64,
    /// The last row id read: the cursor of the next batch; none when the table is done.
    pub last: Option<Uuid>,
}

/// The prefix of the values sealed under `key`.
fn prefix(key: &str) -> String {
    format!("v1:{key}:")
}

/// `LIKE` pattern of the values sealed under `key` (ids are lowercase letters and digits,
/// never a wildcard).
fn under(key: &str) -> String {
    format!("{}%", prefix(key))
}

/// Re-seals under the active key the values of up to `limit` rows of `table` after `after`.
pub(crate) async fn reseal<E: Exec>(
    e: &E,
    keys: &Keys,
    table: &SealedTable,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Resealed, StoreError> {
    let active = keys.ring()?.active().to_owned();
    let current = under(&active);
    let sealed_now = prefix(&active);
    let columns = table.columns();
    let mut q = Query::new(E::DIALECT);
    let id_col = table.id_column();
    q.push("SELECT ").ident(id_col);
    for c in &columns {
        q.push(", ").ident(c);
    }
    q.push(" FROM ").ident(table.name()).push(" WHERE (");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(")
            .ident(c)
            .push(" LIKE 'v1:%' AND ")
            .ident(c)
            .push(" NOT LIKE ")
            .bind(current.as_str())
            .push(")");
    }
    q.push(")");
    if let Some(after) = after {
        q.push(" AND ").ident(id_col).push(" > ").bind(after);
    }
    q.push(" ORDER BY ").ident(id_col).limit(i64::from(limit));
    let n = columns.len();
    let rows = e
        .rows(&q, |r| {
            let id = r.uuid(0)?;
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match r.value(1 + i, ValueKind::Text)? {
                    Value::Text(t) => Some(t),
                    _ => None,
                });
            }
            Ok((id, values))
        })
        .await?;
    let mut done = Resealed {
        rows: rows.len() as u64,
        last: rows.last().map(|(id, _)| *id),
        ..Resealed::default()
    };
    for (id, values) in &rows {
        let mut changed: Vec<(&str, &str, String)> = Vec::new();
        for (column, value) in columns.iter().zip(values) {
            let Some(old) = value else { continue };
            if !old.starts_with("v1:") || old.starts_with(&sealed_now) {
                continue;
            }
            let plain = keys.open(table.name(), column, id, old)?;
            let new = keys.seal(table.name(), column, id, &plain)?;
            changed.push((column, old, new));
        }
        if changed.is_empty() {
            continue;
        }
        let mut u = Query::new(E::DIALECT);
        u.push("UPDATE ").ident(table.name()).push(" SET ");
        for (i, (column, _, new)) in changed.iter().enumerate() {
            if i > 0 {
                u.push(", ");
            }
            u.ident(column).push(" = ").bind(new.as_str());
        }
        u.push(" WHERE ").ident(id_col).push(" = ").bind(*id);
        for (column, old, _) in &changed {
            u.push(" AND ").ident(column).push(" = ").bind(*old);
        }
        if e.execute(&u).await? == 1 {
            done.values += changed.len() as u64;
        } else {
            done.skipped += 1;
        }
    }
    Ok(done)
}

/// How many values of each column of `table` are sealed under `key` (`under`), or under
/// any other key (`!under`); columns with none are left out.
pub(crate) async fn count<E: Exec>(
    e: &E,
    table: &SealedTable,
    key: &str,
    under_key: bool,
) -> Result<Vec<(String, u64)>, StoreError> {
    let pattern = under(key);
    let mut out = Vec::new();
    for column in table.columns() {
        let mut q = Query::new(E::DIALECT);
        q.push("SELECT COUNT(*) FROM ")
            .ident(table.name())
            .push(" WHERE ")
            .ident(column)
            .push(" LIKE 'v1:%' AND ")
            .ident(column)
            .push(if under_key { " LIKE " } else { " NOT LIKE " })
            .bind(pattern.as_str());
        let n = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
        if n > 0 {
            out.push((column.to_owned(), u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(out)
}

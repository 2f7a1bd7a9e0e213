//! The statements that append chained entries: their rows in `_plinth_audit` and the
//! changes they log.

use super::{CHANGES_NOTICE, COLUMNS, Drafted};
use crate::sql::changes as log;
use crate::sql::{Dialect, Query, RUN, runs};

/// The statements that append `chained` on SQLite: the entries in [`runs`] of up to
/// [`RUN`], one insert a run, then their changes likewise (SQLite has no data-modifying
/// `WITH`): a statement costs the writer more than a row, and a connection keeps few
/// shapes of them prepared.
pub(super) fn apart(chained: &[Drafted]) -> Vec<Query<'_>> {
    let mut statements = Vec::new();
    let mut rest = chained;
    for take in runs(chained.len(), RUN) {
        let (run, after) = rest.split_at(take);
        rest = after;
        let mut q = Query::new(Dialect::Sqlite);
        q.push("INSERT INTO _plinth_audit (")
            .push(COLUMNS)
            .push(") VALUES ");
        for (i, d) in run.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            push_entry(&mut q, d);
        }
        statements.push(q);
    }
    let logged: Vec<_> = chained
        .iter()
        .filter_map(|d| d.change.as_ref().map(|c| (d, c)))
        .collect();
    let mut rest = logged.as_slice();
    for take in runs(logged.len(), RUN) {
        let (run, after) = rest.split_at(take);
        rest = after;
        let mut q = Query::new(Dialect::Sqlite);
        q.push(log::INSERT);
        for (i, (d, c)) in run.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            log::push_row(&mut q, c, d.entry.seq, d.entry.at);
        }
        statements.push(q);
    }
    statements
}

/// The statements that append `chained` on PostgreSQL: runs of entries, each one statement
/// that inserts them, logs their changes and announces them (the notice is delivered at
/// commit, once per transaction), in [`runs`] of up to [`RUN`] (seven shapes when every
/// entry logs a change, as record writes do; a run's text also counts its changes).
pub(super) fn announced(chained: &[Drafted]) -> Vec<Query<'_>> {
    let mut statements = Vec::new();
    let mut rest = chained;
    for take in runs(chained.len(), RUN) {
        let (run, after) = rest.split_at(take);
        rest = after;
        let mut q = Query::new(Dialect::Postgres);
        let logged = run.iter().any(|d| d.change.is_some());
        if logged {
            q.push("WITH entry AS (");
        }
        q.push("INSERT INTO _plinth_audit (")
            .push(COLUMNS)
            .push(") VALUES ");
        for (i, d) in run.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            push_entry(&mut q, d);
        }
        if logged {
            q.push("), change AS (").push(log::INSERT);
            let changes = run.iter().filter_map(|d| d.change.as_ref().map(|c| (d, c)));
            for (i, (d, c)) in changes.enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                log::push_row(&mut q, c, d.entry.seq, d.entry.at);
            }
            q.push(") SELECT pg_notify(")
                .bind(crate::sql::INVALIDATE_CHANNEL)
                .push(", ")
                .bind(CHANGES_NOTICE)
                .push(")");
        }
        statements.push(q);
    }
    statements
}

/// The row of a chained entry in `_plinth_audit`, as `(…)`.
fn push_entry<'a>(q: &mut Query<'a>, d: &'a Drafted) {
    let (entry, changes) = (&d.entry, &d.changes);
    q.push("(")
        .bind_all([
            entry.seq.into(),
            entry.at.into(),
            (&entry.actor_kind).into(),
            entry.actor_id.into(),
            (&entry.actor_label).into(),
            (&entry.action).into(),
            entry
                .model
                .as_ref()
                .map_or(crate::sql::Param::Null, Into::into),
            entry
                .record_id
                .map_or(crate::sql::Param::Null, |r| (*r.as_uuid()).into()),
            (&entry.request_id).into(),
            entry
                .client_addr
                .as_ref()
                .map_or(crate::sql::Param::Null, Into::into),
            changes.into(),
            (&entry.prev_hash).into(),
            (&entry.hash).into(),
        ])
        .push(")");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEntry, ChangeKind, Keys};
    use plinth_core::Schema;

    /// An entry chained at `seq`, logging a change when `logged`.
    fn chained(seq: i64, logged: bool) -> Drafted {
        let schema = Schema::from_decls(&[]).expect("the default schema");
        let model = schema.model("resource").expect("resource");
        let record = crate::Change::bare(seq, "r").record;
        let at = record.created_at;
        let change = logged.then(|| {
            log::snapshot(&Keys::missing(), model, ChangeKind::Created, &record, None)
                .expect("logged")
        });
        Drafted {
            entry: AuditEntry {
                seq,
                at,
                actor_kind: "system".to_owned(),
                actor_id: None,
                actor_label: "local admin".to_owned(),
                action: "record.create".to_owned(),
                model: Some("resource".to_owned()),
                record_id: Some(record.id),
                request_id: "req".to_owned(),
                client_addr: None,
                changes: serde_json::Value::Null,
                prev_hash: String::new(),
                hash: String::new(),
            },
            changes: "{}".to_owned(),
            change,
        }
    }

    /// Rows of `_plinth_audit` bound per entry, of `_plinth_changes` per change, and the
    /// notice's two.
    const ENTRY: usize = 13;
    const CHANGE: usize = 6;
    const NOTICE: usize = 2;

    #[test]
    fn postgresql_appends_a_batch_in_runs_of_64_then_its_binary_digits() {
        let batch: Vec<_> = (1..=100).map(|seq| chained(seq, true)).collect();
        let statements = announced(&batch);
        let params: Vec<_> = statements.iter().map(|q| q.params.len()).collect();
        let per = ENTRY + CHANGE;
        assert_eq!(
            params,
            [64 * per + NOTICE, 32 * per + NOTICE, 4 * per + NOTICE]
        );
        assert!(
            statements
                .iter()
                .all(|q| q.sql.starts_with("WITH entry AS ("))
        );

        // Entries that log nothing (account events) are a plain insert; a run mixing both
        // logs only the changes it has.
        let events: Vec<_> = (1..=3).map(|seq| chained(seq, false)).collect();
        let params: Vec<_> = announced(&events).iter().map(|q| q.params.len()).collect();
        assert_eq!(params, [2 * ENTRY, ENTRY]);
        let mixed = vec![chained(1, true), chained(2, false)];
        let statements = announced(&mixed);
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].params.len(), 2 * ENTRY + CHANGE + NOTICE);
    }

    #[test]
    fn sqlite_appends_runs_of_entries_then_runs_of_their_changes() {
        let batch = vec![chained(1, true), chained(2, false), chained(3, true)];
        let params: Vec<_> = apart(&batch).iter().map(|q| q.params.len()).collect();
        assert_eq!(params, [2 * ENTRY, ENTRY, 2 * CHANGE]);
        let batch: Vec<_> = (1..=100).map(|seq| chained(seq, true)).collect();
        let statements = apart(&batch);
        let params: Vec<_> = statements.iter().map(|q| q.params.len()).collect();
        assert_eq!(
            params,
            [
                64 * ENTRY,
                32 * ENTRY,
                4 * ENTRY,
                64 * CHANGE,
                32 * CHANGE,
                4 * CHANGE
            ]
        );
        assert!(
            statements[..3]
                .iter()
                .all(|q| q.sql.starts_with("INSERT INTO _plinth_audit"))
        );
        assert!(
            statements[3..]
                .iter()
                .all(|q| q.sql.starts_with(log::INSERT))
        );
    }
}

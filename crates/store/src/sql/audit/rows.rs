//! The statements that append chained entries: their rows in `_plinth_audit` and the
//! changes they log.

use super::{CHANGES_NOTICE, COLUMNS, Drafted};
use crate::sql::changes as log;
use crate::sql::{Exec, Query};

/// The entries most one statement inserts on PostgreSQL.
const RUN: usize = 64;

/// The statements that append `chained` on SQLite: each entry and each change one of its
/// own (SQLite has no data-modifying `WITH`).
pub(super) fn apart<'a, E: Exec>(chained: &'a [Drafted]) -> Vec<Query<'a>> {
    let mut statements = Vec::with_capacity(chained.len() * 2);
    for d in chained {
        let mut q = Query::new(E::DIALECT);
        q.push("INSERT INTO _plinth_audit (")
            .push(COLUMNS)
            .push(") VALUES ");
        push_entry(&mut q, d);
        statements.push(q);
        if let Some(c) = &d.change {
            let mut q = Query::new(E::DIALECT);
            log::push_insert(&mut q, c, d.entry.seq, d.entry.at);
            statements.push(q);
        }
    }
    statements
}

/// The statements that append `chained` on PostgreSQL: runs of entries, each one statement
/// that inserts them, logs their changes and announces them (the notice is delivered at
/// commit, once per transaction). A statement and its answer cost the server more than a
/// row, so a batch's entries go in few: runs of [`RUN`], then of the binary digits of what
/// is left (32, 16, … 1), so that a connection keeps few shapes of them prepared.
pub(super) fn announced<'a, E: Exec>(chained: &'a [Drafted]) -> Vec<Query<'a>> {
    let mut statements = Vec::new();
    let mut rest = chained;
    while !rest.is_empty() {
        let take = if rest.len() >= RUN {
            RUN
        } else {
            1 << rest.len().ilog2()
        };
        let (run, after) = rest.split_at(take);
        rest = after;
        let mut q = Query::new(E::DIALECT);
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

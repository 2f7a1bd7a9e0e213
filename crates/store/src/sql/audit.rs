//! The audit trail's statements: an entry appended inside the transaction of the record
//! write or account change it records (so a refused or rolled-back write leaves none), the
//! list in `seq` order or filtered, the walk that verifies the hash chain (see
//! `crate::audit`), and the prune that removes old entries behind a sealed checkpoint.
//! Record writes, events and checkpoints share one append (`append_entry`).
//!
//! The chain's head is read and extended under a lock: SQLite's one writer serialises
//! every write; on PostgreSQL a transaction-scoped advisory lock, taken as the write's last
//! step (or with a group commit's first statements, see `postgres::group`) and held until
//! it commits, gives the instances sharing a database one total order with no fork and no
//! gap.

mod changes;
mod held;
mod rows;

pub(crate) use changes::{Action, created, purged, status_changed, updated};
pub(crate) use held::AuditBatch;

use super::changes::Logged;
use std::sync::atomic::{AtomicBool, Ordering};

use super::records::By;
use super::{Dialect, Exec, Query, SqlRow};
use crate::StoreError;
use crate::audit::{
    AuditBreak, AuditEntry, AuditQuery, AuditVerdict, CHECKPOINT_ACTION, Event, actor, hash,
};
use crate::changes::Change;
use plinth_core::schema::ValueKind;
use plinth_core::{ModelDef, Principal, Record, RecordId, Timestamp, Value};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// The advisory lock key of the audit chain's head ("plinthau" in ASCII); not the
/// migration's or the claims' key.
const AUDIT_LOCK: i64 = 0x706c_696e_7468_6175;

/// Entries read per statement while verifying.
const VERIFY_PAGE: u32 = 1000;

/// The payload a change is announced with on `INVALIDATE_CHANNEL` (PostgreSQL): the
/// listeners bump the change signal, and drop no cache.
pub(crate) const CHANGES_NOTICE: &str = "changes";

const COLUMNS: &str = "seq, at, actor_kind, actor_id, actor_label, action, model, record_id, \
                       request_id, client_addr, changes, prev_hash, hash";

/// Appends the entry of a record write, inside the write's transaction; its last step.
/// The write's change (`record` as it stands after the write, before it for a purge) rides
/// with the entry and is logged with its `seq` (see `super::changes`).
pub(crate) async fn append<E: Exec>(
    e: &E,
    by: By<'_>,
    action: Action,
    model: &ModelDef,
    record: &Record,
    changes: &str,
    staged: Option<&super::records::Staged>,
) -> Result<(), StoreError> {
    let subject = Subject {
        action: action.as_str(),
        model: Some(model.name().as_str()),
        target: Some(*record.id.as_uuid()),
        changes,
    };
    let kind = action.change_kind();
    let mut logged = super::changes::snapshot(by.keys, model, kind, record, staged)?;
    if e.keeps_changes() {
        logged.keep(record);
    }
    let mut drafted = draft(by, &subject);
    drafted.change = Some(logged);
    defer_or_append(e, drafted).await.map(drop)
}

/// Appends the entry of an account or authentication event, inside the transaction of the
/// write it goes with (or in one of its own); its last step.
pub(crate) async fn append_event<E: Exec>(
    e: &E,
    by: By<'_>,
    event: Event,
    target: Option<Uuid>,
    changes: &Json,
) -> Result<(), StoreError> {
    let subject = Subject {
        action: event.action(),
        model: Some(event.model()),
        target,
        changes: &changes.to_string(),
    };
    append_entry(e, by, &subject).await.map(drop)
}

/// What an entry is about: the action, its target and the changes (as stored).
pub(crate) struct Subject<'a> {
    action: &'a str,
    model: Option<&'a str>,
    target: Option<Uuid>,
    changes: &'a str,
}

/// The one way an entry is written, for record writes, events and checkpoints alike: the
/// entry is drafted, then either handed to the connection's [`AuditBatch`] (the SQLite
/// writer appends a group commit's entries together, before its commit) or appended at the
/// chain's head now. Returns the entry's `seq` (0 when it was handed over).
async fn append_entry<E: Exec>(e: &E, by: By<'_>, s: &Subject<'_>) -> Result<i64, StoreError> {
    defer_or_append(e, draft(by, s)).await
}

/// Hands `drafted` to the connection's batch, if it collects, or appends it now.
async fn defer_or_append<E: Exec>(e: &E, drafted: Drafted) -> Result<i64, StoreError> {
    let drafted = match e.audit_batch() {
        Some(batch) => match batch.defer(drafted) {
            None => return Ok(0),
            Some(back) => back,
        },
        None => drafted,
    };
    append_all(e, vec![drafted]).await
}

/// Appends at the chain's head now, never through a batch: for the prune, which needs the
/// `seq` of its checkpoint entry.
async fn append_now<E: Exec>(e: &E, by: By<'_>, s: &Subject<'_>) -> Result<i64, StoreError> {
    append_all(e, vec![draft(by, s)]).await
}

/// An entry before its place in the chain: every field but `seq`, `prev_hash` and `hash`,
/// its `changes` as the text to store, and the change a record write logs with it.
#[derive(Debug)]
pub(crate) struct Drafted {
    entry: AuditEntry,
    changes: String,
    change: Option<Logged>,
}

fn draft(by: By<'_>, s: &Subject<'_>) -> Drafted {
    let (ctx, at) = (by.ctx, by.now);
    let (kind, actor_id, label) = actor(ctx);
    Drafted {
        entry: AuditEntry {
            seq: 0,
            at,
            actor_kind: kind.to_owned(),
            actor_id,
            actor_label: label.to_owned(),
            action: s.action.to_owned(),
            model: s.model.map(str::to_owned),
            record_id: s.target.map(RecordId::from_uuid),
            request_id: ctx.request_id.clone(),
            client_addr: ctx.client_addr.clone(),
            changes: Json::Null,
            prev_hash: String::new(),
            hash: String::new(),
        },
        changes: s.changes.to_owned(),
        change: None,
    }
}

/// Appends `drafted`, in order, at the chain's head (under the lock on PostgreSQL): each
/// gets the next `seq`, the previous entry's hash and its own. Returns the last `seq`.
/// The lock and the head's read go together, then every insert: on PostgreSQL they are
/// pipelined (sent without waiting for each answer), two round trips for the whole batch.
pub(crate) async fn append_all<E: Exec>(e: &E, drafted: Vec<Drafted>) -> Result<i64, StoreError> {
    let head = head(e).await?;
    let linked = link(e, head, drafted, |_| std::future::ready(Ok(()))).await;
    linked.map(|(_, seq, _)| seq)
}

/// [`append_all`] after `head`, read under the chain's lock earlier in the same
/// transaction (see [`head`]), with `then` started once every insert is sent: on
/// PostgreSQL a statement `then` sends goes in the same round trip, behind the inserts
/// (the group commit's `COMMIT`). `then` is told whether every insert went out: `false`
/// when one failed before it could be sent (its transaction must not commit without it).
/// `then` runs to its end even when an insert failed; the first error of the two is
/// returned.
pub(crate) async fn append_after_then<E: Exec, F: Future<Output = Result<(), StoreError>>>(
    e: &E,
    head: Head,
    drafted: Vec<Drafted>,
    then: impl FnOnce(bool) -> F,
) -> Result<i64, StoreError> {
    link(e, head, drafted, then).await.map(|(_, seq, _)| seq)
}

/// [`append_all`] for the SQLite writer's group commit, which keeps the change log's tail
/// in memory: also the chain's head it appended after, and the changes it logged, in
/// `seq` order, with their snapshots' sizes (`None` when one did not keep its record).
pub(crate) async fn append_kept<E: Exec>(
    e: &E,
    drafted: Vec<Drafted>,
) -> Result<(i64, i64, Option<Vec<(Change, usize)>>), StoreError> {
    let head = head(e).await?;
    let ready = |_| std::future::ready(Ok(()));
    let (before, seq, mut chained) = link(e, head, drafted, ready).await?;
    let changes = chained
        .iter_mut()
        .filter_map(|d| {
            let (seq, at) = (d.entry.seq, d.entry.at);
            d.change.as_mut().map(|c| c.change(seq, at))
        })
        .collect();
    Ok((before, seq, changes))
}

/// The chain's head: its last entry's `seq` and hash (0 and empty when it has none).
#[derive(Debug)]
pub(crate) struct Head(i64, String);

/// Takes the chain's lock (on PostgreSQL, held until the transaction ends) and reads its
/// head, the two statements pipelined: one round trip. An append after it in the same
/// transaction ([`append_after_then`]) links its entries to that head; no other can move
/// it meanwhile.
pub(crate) async fn head<E: Exec>(e: &E) -> Result<Head, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, hash FROM _plinth_audit ORDER BY seq DESC LIMIT 1")
        .cached();
    let (locked, head) =
        futures_util::future::join(lock(e), e.row(&q, |r| Ok((r.int(0)?, r.text(1)?)))).await;
    locked?;
    let (seq, hash) = head?.unwrap_or((0, String::new()));
    Ok(Head(seq, hash))
}

/// Chains `drafted` after `head` and inserts them, then `then` (see
/// [`append_after_then`]): the head before, the last `seq`, and the entries as chained.
async fn link<E: Exec, F: Future<Output = Result<(), StoreError>>>(
    e: &E,
    head: Head,
    drafted: Vec<Drafted>,
    then: impl FnOnce(bool) -> F,
) -> Result<(i64, i64, Vec<Drafted>), StoreError> {
    let Head(mut seq, mut prev_hash) = head;
    let before = seq;
    let mut chained = Vec::with_capacity(drafted.len());
    for Drafted {
        mut entry,
        changes,
        change,
    } in drafted
    {
        seq += 1;
        entry.seq = seq;
        entry.prev_hash = prev_hash;
        entry.hash = hash(&entry, &changes);
        prev_hash = entry.hash.clone();
        chained.push(Drafted {
            entry,
            changes,
            change,
        });
    }
    let mut statements = if E::DIALECT.announces() {
        rows::announced(&chained)
    } else {
        rows::apart(&chained)
    };
    for q in &mut statements {
        q.cached();
    }
    // Prepared together: on a connection that has not seen them, one round trip for all.
    let prepared =
        futures_util::future::try_join_all(statements.iter().map(|q| e.prepare(q))).await?;
    // Each insert, made ready, is sent as it is first polled, before `then` starts; one
    // that fails at once (its parameters) is never sent, and says so.
    let unsent = AtomicBool::new(false);
    let inserts = statements.iter().zip(&prepared).map(|(q, p)| async {
        let done = e.execute_prepared(p, q).await;
        if done.is_err() {
            unsent.store(true, Ordering::Relaxed);
        }
        done
    });
    let inserts = futures_util::future::join_all(inserts);
    let then = async { then(!unsent.load(Ordering::Relaxed)).await };
    let (inserted, then) = futures_util::future::join(inserts, then).await;
    for done in inserted {
        done?;
    }
    then?;
    drop(statements);
    Ok((before, seq, chained))
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
        .push(" ORDER BY seq")
        .limit(i64::from(limit));
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

/// Entries matching `q`, at most `q.limit`, in `seq` order (descending when
/// `q.newest_first`).
pub(crate) async fn query<E: Exec>(e: &E, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let mut s = Query::new(E::DIALECT);
    s.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM _plinth_audit WHERE 1 = 1");
    if let Some(id) = q.actor_id {
        s.push(" AND actor_id = ").bind(id);
    }
    if let Some(kind) = &q.actor_kind {
        s.push(" AND actor_kind = ").bind(kind);
    }
    if let Some(action) = &q.action {
        s.push(" AND action = ").bind(action);
    }
    if let Some(prefix) = &q.action_prefix {
        let n = prefix.chars().count();
        s.push(&format!(" AND substr(action, 1, {n}) = "))
            .bind(prefix);
    }
    if let Some(model) = &q.model {
        s.push(" AND model = ").bind(model);
    }
    if let Some(id) = q.record_id {
        s.push(" AND record_id = ").bind(id);
    }
    if let Some(t) = q.since {
        s.push(" AND at >= ").bind(t);
    }
    if let Some(t) = q.until {
        s.push(" AND at < ").bind(t);
    }
    let (cmp, order) = if q.newest_first {
        (" < ", " DESC")
    } else {
        (" > ", "")
    };
    if let Some(seq) = q.after_seq {
        s.push(" AND seq").push(cmp).bind(seq);
    }
    s.push(" ORDER BY seq")
        .push(order)
        .limit(i64::from(q.limit));
    s.rows_hint = usize::try_from(q.limit).unwrap_or(0).min(1000);
    e.rows(&s, |r| Ok(read(r)?.0)).await
}

/// Takes the chain's lock until the transaction ends (PostgreSQL; SQLite's one writer
/// already serialises every write).
async fn lock<E: Exec>(e: &E) -> Result<(), StoreError> {
    if E::DIALECT == Dialect::Postgres {
        let mut q = Query::new(E::DIALECT);
        q.push(&format!("SELECT pg_advisory_xact_lock({AUDIT_LOCK})"))
            .cached();
        e.execute(&q).await?;
    }
    Ok(())
}

/// The changes an `audit.checkpoint` entry records: the last pruned entry's `seq` and hash.
fn sealed(seq: i64, hash: &str) -> Json {
    json!({ "seq": { "to": seq }, "hash": { "to": hash } })
}

/// Removes, in one transaction, the oldest entries made before `before`, at most `limit`
/// (only a run from the oldest: the first entry made at or after `before` stops it), then
/// seals the checkpoint: an `audit.checkpoint` entry naming the last removed entry's `seq`
/// and hash, and that pair in `_plinth_audit_checkpoints`, where a verify starts. Holds the
/// chain's lock throughout, so instances pruning together remove each entry once.
pub(crate) async fn prune<E: Exec>(
    e: &E,
    now: Timestamp,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    lock(e).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, at, hash FROM _plinth_audit ORDER BY seq")
        .limit(i64::from(limit));
    q.rows_hint = usize::try_from(limit).unwrap_or(0).min(1000);
    let oldest = e
        .rows(&q, |r| Ok((r.int(0)?, r.time(1)?, r.text(2)?)))
        .await?;
    let old: Vec<_> = oldest
        .into_iter()
        .take_while(|(_, at, _)| *at < before)
        .collect();
    let Some((last_seq, _, last_hash)) = old.last().cloned() else {
        return Ok(0);
    };
    let ctx = crate::WriteCtx::new(Principal::local_admin(), "sweep");
    let changes = sealed(last_seq, &last_hash);
    let subject = Subject {
        action: CHECKPOINT_ACTION,
        model: None,
        target: None,
        changes: &changes.to_string(),
    };
    // Appended before the removal, so it extends the chain's head even when every entry
    // goes.
    let keys = crate::Keys::missing();
    let by = By {
        ctx: &ctx,
        now,
        keys: &keys,
    };
    let entry_seq = append_now(e, by, &subject).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("DELETE FROM _plinth_audit WHERE seq <= ")
        .bind(last_seq);
    e.execute(&q).await?;
    let mut q = Query::new(E::DIALECT);
    q.push("INSERT INTO _plinth_audit_checkpoints (seq, hash, at, entry_seq) VALUES (")
        .bind_all([
            last_seq.into(),
            (&last_hash).into(),
            now.into(),
            entry_seq.into(),
        ])
        .push(")");
    e.execute(&q).await?;
    Ok(old.len() as u64)
}

/// A sealed checkpoint: the last pruned entry's `seq` and hash, and the `seq` of the
/// `audit.checkpoint` entry that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checkpoint {
    seq: i64,
    hash: String,
    entry_seq: i64,
}

async fn newest_checkpoint<E: Exec>(e: &E) -> Result<Option<Checkpoint>, StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT seq, hash, entry_seq FROM _plinth_audit_checkpoints ORDER BY seq DESC LIMIT 1");
    e.row(&q, |r| {
        Ok(Checkpoint {
            seq: r.int(0)?,
            hash: r.text(1)?,
            entry_seq: r.int(2)?,
        })
    })
    .await
}

/// Walks that restart because a prune moved the checkpoint under them, at most.
const RESTARTS: u32 = 10;

/// The walk of a verify, one page at a time (each page may be its own statement on its own
/// connection). It starts from the newest checkpoint (or from the first entry, when nothing
/// was ever pruned); a break found while a prune moved the checkpoint meanwhile starts it
/// again.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    started: bool,
    checkpoint: Option<Checkpoint>,
    /// Whether the checkpoint's `audit.checkpoint` entry was seen and matched.
    sealed: bool,
    /// The last `seq` checked (the checkpoint's, or 0, before the first).
    last_seq: i64,
    last_hash: String,
    entries: u64,
    restarts: u32,
}

impl Walk {
    /// Checks the next page; `Some` when the walk is over (the chain ended or broke).
    pub(crate) async fn step<E: Exec>(
        &mut self,
        e: &E,
    ) -> Result<Option<AuditVerdict>, StoreError> {
        if !self.started {
            let checkpoint = newest_checkpoint(e).await?;
            *self = Self {
                started: true,
                last_seq: checkpoint.as_ref().map_or(0, |c| c.seq),
                last_hash: checkpoint
                    .as_ref()
                    .map_or_else(String::new, |c| c.hash.clone()),
                sealed: checkpoint.is_none(),
                checkpoint,
                entries: 0,
                restarts: self.restarts,
            };
        }
        let verdict = self.check_page(e).await?;
        if let Some(AuditVerdict::Broken { .. }) = verdict
            && self.restarts < RESTARTS
            && newest_checkpoint(e).await? != self.checkpoint
        {
            self.started = false;
            self.restarts += 1;
            return Ok(None);
        }
        Ok(verdict)
    }

    async fn check_page<E: Exec>(&mut self, e: &E) -> Result<Option<AuditVerdict>, StoreError> {
        let rows = page(e, self.last_seq, VERIFY_PAGE).await?;
        let checkpoint_broken = |c: &Checkpoint| {
            Ok(Some(AuditVerdict::Broken {
                seq: c.seq,
                reason: AuditBreak::Checkpoint,
            }))
        };
        if rows.is_empty() {
            if let Some(c) = &self.checkpoint
                && !self.sealed
            {
                return checkpoint_broken(c);
            }
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
            let own_hash_holds = entry.hash == hash(&entry, &text);
            if entry.prev_hash != self.last_hash {
                // The first entry after a checkpoint, intact itself, but not linked to it:
                // the checkpoint's hash is what was changed.
                if let Some(c) = &self.checkpoint
                    && self.entries == 0
                    && own_hash_holds
                {
                    return checkpoint_broken(c);
                }
                return broken(AuditBreak::Link);
            }
            if !own_hash_holds {
                return broken(AuditBreak::Hash);
            }
            if let Some(c) = &self.checkpoint
                && entry.seq == c.entry_seq
            {
                if entry.action != CHECKPOINT_ACTION || entry.changes != sealed(c.seq, &c.hash) {
                    return checkpoint_broken(c);
                }
                self.sealed = true;
            }
            self.last_seq = entry.seq;
            self.last_hash = entry.hash;
            self.entries += 1;
        }
        Ok(None)
    }
}

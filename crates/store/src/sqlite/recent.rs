//! The tail of the change log, kept in memory: the changes the writer committed last, as
//! `Store::changes_after` would read them back, so the change feed's reads at the head of
//! the log (the hub's, after every commit) are answered without a read connection, and
//! without parsing and opening each record again.
//!
//! The writer keeps it: after each commit it reads the audit trail's head, and extends the
//! tail only when the changes it appended lead on from the tail's end to that head with
//! nothing else in between (every record write of the batch logged by the append the
//! writer made itself, its plaintext kept). Anything else — an entry appended on another
//! path, a job run alone (a migration, a restore), a head that could not be read — starts
//! the tail again, empty, at the head: a read from before it goes to the database. So the
//! tail never claims a range it does not hold in full.

use crate::changes::{Change, ChangesPage};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Changes kept: the hub reads a few after each commit; a stream replaying from further
/// back reads the database.
const KEEP: usize = 1024;

/// The tail, shared by the writer (which keeps it) and the store (which reads it).
#[derive(Debug, Default)]
pub(super) struct Recent(Mutex<Tail>);

/// What the writer's append logged in a batch that committed.
#[derive(Debug)]
pub(super) struct Appended {
    /// The trail's head the append read, before its entries.
    pub(super) before: i64,
    /// The `seq` of its last entry.
    pub(super) after: i64,
    /// The changes it logged, in `seq` order; `None` when one's plaintext was not kept.
    pub(super) changes: Option<Vec<Change>>,
}

#[derive(Debug, Default)]
struct Tail {
    /// Every change with a `seq` in `(from, through]` is in `changes`; nothing is known
    /// when `false`.
    known: bool,
    from: i64,
    through: i64,
    changes: VecDeque<Change>,
}

impl Recent {
    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a commit (or a job run alone): the trail's head is now `head` (`None`: it could
    /// not be read) and the batch's own append logged `appended`, if it appended.
    pub(super) fn settle(&self, head: Option<i64>, appended: Option<Appended>) {
        let mut t = self.tail();
        let Some(head) = head else {
            *t = Tail::default();
            return;
        };
        match appended {
            Some(Appended {
                before,
                after,
                changes: Some(changes),
            }) if t.known && t.through == before && after == head => {
                t.changes.extend(changes);
                t.through = head;
                while t.changes.len() > KEEP {
                    if let Some(gone) = t.changes.pop_front() {
                        t.from = gone.seq;
                    }
                }
            }
            None if t.known && t.through == head => {}
            _ => {
                *t = Tail {
                    known: true,
                    from: head,
                    through: head,
                    changes: VecDeque::new(),
                }
            }
        }
    }

    /// Forgets the tail: until the next [`settle`](Self::settle), every read goes to the
    /// database.
    pub(super) fn forget(&self) {
        *self.tail() = Tail::default();
    }

    /// The page `Store::changes_after(after, limit)` reads, when the tail holds everything
    /// after `after`; `None` when it does not.
    pub(super) fn after(&self, after: i64, limit: u32) -> Option<ChangesPage> {
        let t = self.tail();
        if !t.known || after < t.from || after > t.through {
            return None;
        }
        let start = t.changes.partition_point(|c| c.seq <= after);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let changes: Vec<Change> = t.changes.range(start..).take(limit).cloned().collect();
        let full = t.changes.len() - start > limit;
        let through = match changes.last() {
            Some(last) if full => last.seq,
            _ => t.through,
        };
        Some(ChangesPage {
            changes,
            through,
            full,
        })
    }
}

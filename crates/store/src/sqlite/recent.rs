//! The tail of the change log, kept in memory: the changes the writer committed last, as
//! `Store::changes_after` would read them back, so the change feed's reads at the head of
//! the log (the hub's, after every commit) are answered without a read connection, and
//! without parsing and opening each record again.
//!
//! The writer keeps it: after each commit it reads the audit trail's head, and extends the
//! tail only when the changes it appended lead on from the tail's end to that head with
//! nothing else in between (every record write of the batch logged by the append the
//! writer made itself, its plaintext kept). Anything else — an entry appended on another
//! path or by another process, a job run alone (a migration, a restore), a prune that
//! removed rows, keys read again, a new schema — starts the tail again, empty, at the head:
//! a read from before it goes to the database. So the tail never claims a range it does
//! not hold in full, and answers a page exactly as the log would.

use crate::Keys;
use crate::changes::{Change, ChangesPage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Most changes kept: the hub reads a few after each commit; a stream replaying from
/// further back reads the database.
const KEEP: usize = 1024;
/// Most bytes of stored snapshots kept (records may be large).
const KEEP_BYTES: usize = 4 << 20;

/// The tail, shared by the writer (which keeps it) and the store (which reads it).
#[derive(Debug)]
pub(super) struct Recent {
    tail: Mutex<Tail>,
    /// The keys the kept records were opened under: once read again, what opened then may
    /// not open now (a key retired), and the tail is not used.
    keys: Keys,
    /// Bumped when the store's schema is replaced: the kept records have the fields of
    /// the models as they were, and the log reads against the models as they are.
    schema: AtomicU64,
}

/// What the writer's append logged in a batch that committed.
#[derive(Debug)]
pub(super) struct Appended {
    /// The trail's head the append read, before its entries.
    pub(super) before: i64,
    /// The `seq` of its last entry.
    pub(super) after: i64,
    /// The changes it logged, in `seq` order, each with its snapshot's size in bytes;
    /// `None` when one's record was not kept.
    pub(super) changes: Option<Vec<(Change, usize)>>,
}

#[derive(Debug, Default)]
struct Tail {
    /// Every change with a `seq` in `(from, through]` is in `changes`; nothing is known
    /// when `false`.
    known: bool,
    from: i64,
    through: i64,
    /// The keys' and the schema's generations when the tail started.
    keys: u64,
    schema: u64,
    changes: VecDeque<(Arc<Change>, usize)>,
    bytes: usize,
}

impl Recent {
    pub(super) fn new(keys: Keys) -> Self {
        Self {
            tail: Mutex::default(),
            keys,
            schema: AtomicU64::new(0),
        }
    }

    /// The store's schema was replaced: the tail is forgotten, and one kept after it
    /// started is not used once it changes again.
    pub(super) fn new_schema(&self) {
        self.schema.fetch_add(1, Ordering::AcqRel);
        self.forget();
    }

    fn generations(&self) -> (u64, u64) {
        (self.keys.generation(), self.schema.load(Ordering::Acquire))
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a commit (or a job run alone): the trail's head is now `head` (`None`: it could
    /// not be read) and the batch's own append logged `appended`, if it appended.
    pub(super) fn settle(&self, head: Option<i64>, appended: Option<Appended>) {
        let (keys, schema) = self.generations();
        let mut t = self.tail();
        let Some(head) = head else {
            *t = Tail::default();
            return;
        };
        let same = t.known && (t.keys, t.schema) == (keys, schema);
        match appended {
            Some(Appended {
                before,
                after,
                changes: Some(changes),
            }) if same && t.through == before && after == head => {
                for (change, bytes) in changes {
                    t.bytes += bytes;
                    t.changes.push_back((Arc::new(change), bytes));
                }
                t.through = head;
                while t.changes.len() > KEEP || t.bytes > KEEP_BYTES {
                    let Some((gone, bytes)) = t.changes.pop_front() else {
                        break;
                    };
                    t.from = gone.seq;
                    t.bytes -= bytes;
                }
            }
            None if same && t.through == head => {}
            _ => {
                *t = Tail {
                    known: true,
                    from: head,
                    through: head,
                    keys,
                    schema,
                    ..Tail::default()
                }
            }
        }
    }

    /// Forgets the tail: until the next [`settle`](Self::settle), every read goes to the
    /// database.
    pub(super) fn forget(&self) {
        *self.tail() = Tail::default();
    }

    /// The page `Store::changes_after(after, limit)` reads from the log (up to `limit`
    /// changes after `after`; `through` the last one's `seq`, or `after` when none; `full`
    /// when `limit` were read), when the tail holds everything after `after`; `None` when
    /// it does not.
    pub(super) fn after(&self, after: i64, limit: u32) -> Option<ChangesPage> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let now = self.generations();
        let kept: Vec<Arc<Change>> = {
            let t = self.tail();
            if !t.known || (t.keys, t.schema) != now || after < t.from || after > t.through {
                return None;
            }
            let start = t.changes.partition_point(|(c, _)| c.seq <= after);
            t.changes
                .range(start..)
                .take(limit)
                .map(|(c, _)| Arc::clone(c))
                .collect()
        };
        let changes: Vec<Change> = kept.iter().map(|c| Change::clone(c)).collect();
        Some(ChangesPage {
            through: changes.last().map_or(after, |c| c.seq),
            full: changes.len() >= limit,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Appended, KEEP, KEEP_BYTES, Recent};
    use crate::changes::Change;
    use crate::{Keyring, Keys};

    fn change(seq: i64) -> Change {
        Change::bare(seq, &format!("r{seq}"))
    }

    /// The append of entries `before + 1 ..= after`, each a change of `bytes`.
    fn appended(before: i64, after: i64, bytes: usize) -> Option<Appended> {
        Some(Appended {
            before,
            after,
            changes: Some(((before + 1)..=after).map(|s| (change(s), bytes)).collect()),
        })
    }

    fn seqs(r: &Recent, after: i64) -> Option<Vec<i64>> {
        let page = r.after(after, u32::MAX)?;
        Some(page.changes.iter().map(|c| c.seq).collect())
    }

    #[test]
    fn the_tail_keeps_its_newest_changes_within_a_count_and_a_size() {
        let r = Recent::new(Keys::missing());
        r.settle(Some(0), None);
        r.settle(Some(10), appended(0, 10, 100));
        assert_eq!(seqs(&r, 7), Some(vec![8, 9, 10]));
        assert_eq!(seqs(&r, 0).map(|s| s.len()), Some(10));
        // Past the count, the oldest go and reads from before them go to the log.
        let many = i64::try_from(KEEP).expect("a count");
        r.settle(Some(10 + many), appended(10, 10 + many, 100));
        assert_eq!(seqs(&r, 9), None);
        assert_eq!(seqs(&r, 10).map(|s| s.len()), Some(KEEP));
        // Past the size: two changes of more than half of it leave one.
        let head = 10 + many;
        r.settle(Some(head + 2), appended(head, head + 2, KEEP_BYTES / 2 + 1));
        assert_eq!(seqs(&r, head + 1), Some(vec![head + 2]));
        assert_eq!(seqs(&r, head), None);
        // Pages: at most `limit`, `through` the last one read (or `after`), `full` at the
        // limit, as the log reads them.
        let page = r.after(head + 1, 0).expect("a page");
        assert!(page.changes.is_empty() && page.full && page.through == head + 1);
        let page = r.after(head + 2, 5).expect("a page");
        assert!(page.changes.is_empty() && !page.full && page.through == head + 2);
        assert!(r.after(head + 3, 5).is_none());
    }

    #[test]
    fn the_tail_starts_again_when_what_it_holds_may_not_read_as_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("keys");
        std::fs::write(&file, Keyring::generate_text().expect("keys")).expect("write");
        let r = Recent::new(Keys::from_file(&file).expect("keys"));
        r.settle(Some(3), None);
        r.settle(Some(5), appended(3, 5, 10));
        assert_eq!(seqs(&r, 3), Some(vec![4, 5]));
        // An entry appended on another path: the head is past the tail's end.
        r.settle(Some(7), appended(6, 7, 10));
        assert_eq!(seqs(&r, 5), None);
        assert_eq!(seqs(&r, 7), Some(vec![]));
        // A change whose record was not kept.
        r.settle(Some(8), None);
        assert_eq!(seqs(&r, 7), None);
        r.settle(
            Some(9),
            Some(Appended {
                before: 8,
                after: 9,
                changes: None,
            }),
        );
        assert_eq!((seqs(&r, 8), seqs(&r, 9)), (None, Some(vec![])));
        r.settle(Some(10), appended(9, 10, 10));
        assert_eq!(seqs(&r, 9), Some(vec![10]));
        // The keys read again: a kept record may not open now.
        r.keys.reload().expect("reload");
        assert_eq!(seqs(&r, 9), None);
        r.settle(Some(11), appended(10, 11, 10));
        assert_eq!((seqs(&r, 10), seqs(&r, 11)), (None, Some(vec![])));
        // A new schema.
        r.settle(Some(12), appended(11, 12, 10));
        assert_eq!(seqs(&r, 11), Some(vec![12]));
        r.new_schema();
        assert_eq!(seqs(&r, 11), None);
        r.settle(Some(13), appended(12, 13, 10));
        assert_eq!((seqs(&r, 12), seqs(&r, 13)), (None, Some(vec![])));
        // A head that cannot be read.
        r.settle(None, None);
        assert_eq!(seqs(&r, 13), None);
    }
}

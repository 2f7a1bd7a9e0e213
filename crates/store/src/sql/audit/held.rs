//! [`AuditBatch`]: the audit entries a group commit holds until its last job, to append
//! them together.

use super::Drafted;

/// Entries a connection collects to append together at the end of its transaction: the
/// SQLite writer's group commit, where one head read and one run of inserts outside the
/// jobs' savepoints replace a read and an insert inside each.
#[derive(Debug, Default)]
pub(crate) struct AuditBatch(std::sync::Mutex<Option<Vec<Drafted>>>);

impl AuditBatch {
    /// The entries held (a `Mutex`, never contended: a PostgreSQL batch's futures must be
    /// `Send`).
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Vec<Drafted>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts collecting (a group commit begins).
    pub(crate) fn open(&self) {
        *self.held() = Some(Vec::new());
    }

    /// A batch already collecting.
    pub(crate) fn opened() -> Self {
        Self(std::sync::Mutex::new(Some(Vec::new())))
    }

    /// How many entries are held: a job's mark, to [`truncate`](Self::truncate) to if its
    /// savepoint is rolled back.
    pub(crate) fn len(&self) -> usize {
        self.held().as_ref().map_or(0, Vec::len)
    }

    /// Drops the entries of a rolled-back job.
    pub(crate) fn truncate(&self, mark: usize) {
        if let Some(held) = self.held().as_mut() {
            held.truncate(mark);
        }
    }

    /// Stops collecting; the entries to append before the commit.
    pub(crate) fn close(&self) -> Vec<Drafted> {
        self.held().take().unwrap_or_default()
    }

    /// Holds `d` if collecting; gives it back otherwise.
    pub(super) fn defer(&self, d: Drafted) -> Option<Drafted> {
        match self.held().as_mut() {
            Some(held) => {
                held.push(d);
                None
            }
            None => Some(d),
        }
    }
}

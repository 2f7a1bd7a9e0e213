//! The change feed's log: one row per record write (create, update, soft delete, restore,
//! purge), written in the transaction of the write with the `seq` of the write's audit
//! entry, so changes have one total order across every instance sharing the database and
//! appear to readers in that order (the audit chain's lock is held until commit). A row
//! holds the record as it stood after the write (before it, for a purge), pii values
//! sealed as in the record's table. Rows are kept for a window and then pruned; the log
//! remembers the highest `seq` it pruned, so a reader asking from before it is told to
//! start again rather than silently missing changes.

use plinth_core::{Record, Timestamp};

/// What a write did to a record, as the change feed names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The record was created.
    Created,
    /// Its fields changed.
    Updated,
    /// It was soft-deleted.
    Deleted,
    /// A soft delete was undone.
    Restored,
    /// It was removed for good.
    Purged,
}

impl ChangeKind {
    /// The event name: `created`, `updated`, `deleted`, `restored` or `purged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
            Self::Purged => "purged",
        }
    }

    /// The kind named `s` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "updated" => Self::Updated,
            "deleted" => Self::Deleted,
            "restored" => Self::Restored,
            "purged" => Self::Purged,
            _ => return None,
        })
    }
}

/// One change, as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The `seq` of the write's audit entry: increasing across the whole database, with
    /// gaps where the trail recorded something other than a record write.
    pub seq: i64,
    /// When the write was made.
    pub at: Timestamp,
    /// What it did.
    pub kind: ChangeKind,
    /// The model written (as declared now).
    pub model: String,
    /// The record after the write (before it, for [`ChangeKind::Purged`]), pii values
    /// opened; fields the model no longer declares are dropped, fields it declares since
    /// are null.
    pub record: Record,
}

#[cfg(test)]
impl Change {
    /// The creation, logged with `seq`, of a `resource` record named `name` with no
    /// declared field, made now (for tests).
    pub(crate) fn bare(seq: i64, name: &str) -> Self {
        let at = Timestamp::from_system(std::time::SystemTime::now());
        Self {
            seq,
            at,
            kind: ChangeKind::Created,
            model: "resource".to_owned(),
            record: Record {
                id: plinth_core::RecordId::new_v7(),
                name: name.to_owned(),
                status: plinth_core::Status::Active,
                created_at: at,
                updated_at: at,
                owner_id: None,
                version: 1,
                fields: Vec::new(),
            },
        }
    }
}

/// A page of the log, as `Store::changes_after` reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangesPage {
    /// The changes of the page still declared, in `seq` order.
    pub changes: Vec<Change>,
    /// The highest `seq` the page read (the `after` asked for when it read none): the next
    /// page is read after it, even when every row read was of a model no longer declared.
    pub through: i64,
    /// The page read as many rows as asked for: more may follow.
    pub full: bool,
}

/// Where the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeWindow {
    /// The highest `seq` pruned (0: nothing pruned yet). A reader that last saw a `seq`
    /// below this may have missed changes and must start again.
    pub pruned_through: i64,
    /// The audit trail's head: the highest `seq` committed (0 for an empty trail). A reader
    /// that last saw a `seq` above this saw another history (a restored backup) and must
    /// start again.
    pub head: i64,
}

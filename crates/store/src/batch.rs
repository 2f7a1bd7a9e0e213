//! Batch writes: many creates, updates and soft deletes of one model applied in one
//! transaction, all or nothing ([`Store::batch`](crate::Store::batch)).

use plinth_core::{Draft, Patch, Record, RecordId};

/// One write of a batch, as validated from its item.
#[derive(Debug, Clone)]
pub enum BatchOp {
    /// Inserts a record owned by the acting user.
    Create(Draft),
    /// Applies a patch to a live record (a replace is a patch that sets everything).
    Update {
        /// The record.
        id: RecordId,
        /// What changes.
        patch: Patch,
        /// The version the record must be at (`if_match`), if any.
        expected_version: Option<i64>,
    },
    /// Soft delete: status becomes `deleted`.
    Delete {
        /// The record.
        id: RecordId,
        /// The version the record must be at (`if_match`), if any.
        expected_version: Option<i64>,
    },
}

/// The result of a batch.
#[derive(Debug, Clone)]
pub struct Batched {
    /// The records written, one per item in order (for a replay, as they are now).
    pub records: Vec<Record>,
    /// True when an earlier batch with the same idempotency key wrote them.
    pub replayed: bool,
}

//! The storage error type. Each backend translates its driver's errors into this once, at
//! the boundary; nothing above `store` sees a driver type.

use plinth_core::ErrorCode;
use std::time::Duration;

/// The cause of an `Unavailable` write that found no space on the database's disk (logged;
/// the client sees only that the database is unavailable).
pub(crate) const DISK_FULL: &str = "the disk is full";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No record with that id.
    #[error("record not found")]
    NotFound,
    /// The write clashes with existing state (a unique value, a deleted record, a reused
    /// idempotency key, a record still referenced).
    #[error("{reason}")]
    Conflict {
        /// The field or header at fault, when there is one.
        field: Option<String>,
        /// Why, in words for the client.
        reason: String,
    },
    /// A reference field names a record that does not exist.
    #[error("{field} references no existing record")]
    InvalidReference {
        /// The reference field.
        field: String,
    },
    /// A file field names a file its record does not hold.
    #[error("{field} names a file this record does not hold")]
    UnknownFile {
        /// The file field.
        field: String,
    },
    /// A value the engine cannot store (NUL in PostgreSQL text, say).
    #[error("{reason}")]
    InvalidValue {
        /// Why.
        reason: String,
    },
    /// The `If-Match` version is not the current one.
    #[error("version {expected} is stale; the record is at version {current}")]
    Stale {
        /// What the client expected.
        expected: i64,
        /// What the record is at.
        current: i64,
    },
    /// The access policy refuses the write to this record: the caller may read it but not
    /// change it (a record it may not even read is [`StoreError::NotFound`] where the model
    /// hides it).
    #[error("not allowed")]
    Forbidden,
    /// Item `index` of a batch failed with `source`; nothing of the batch was written.
    #[error("item {index}: {source}")]
    Item {
        /// The item's position in the batch, from 0.
        index: usize,
        /// Why it failed.
        source: Box<StoreError>,
    },
    /// The schema change cannot be applied.
    #[error("{0}")]
    Migration(String),
    /// The transaction lost a race (serialization failure, deadlock); the engine retries it a
    /// few times before giving up with this.
    #[error("database contention: {0}")]
    Contention(String),
    /// Another process uses the database in a way this one must not run beside (a server,
    /// a migration); the message says which.
    #[error("{0}")]
    InUse(String),
    /// A read ran out of its time budget (waiting for a connection included) and was
    /// stopped; the same query will likely take as long again.
    #[error("the query took longer than {} ms; narrow the filter", .0.as_millis())]
    Timeout(Duration),
    /// The database cannot be reached or is too busy; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken database. Logged, never shown to clients.
    #[error("internal storage error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The client-visible code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::InvalidReference { .. }
            | Self::UnknownFile { .. }
            | Self::InvalidValue { .. } => ErrorCode::InvalidInput,
            Self::Stale { .. } => ErrorCode::PreconditionFailed,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::Item { source, .. } => source.code(),
            Self::Migration(_) | Self::Internal(_) => ErrorCode::Internal,
            Self::Unavailable(_) | Self::Contention(_) | Self::InUse(_) | Self::Timeout(_) => {
                ErrorCode::Unavailable
            }
        }
    }

    /// Wraps any error as internal.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }
}

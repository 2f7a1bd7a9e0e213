//! Translation of `rusqlite` errors into [`StoreError`], in one place.

use crate::StoreError;
use crate::error::DISK_FULL;
use crate::shared::unique_conflict;
use rusqlite::ErrorCode as Code;
use rusqlite::ffi;

/// Maps a driver error to a storage error.
pub(super) fn map(e: rusqlite::Error) -> StoreError {
    let rusqlite::Error::SqliteFailure(failure, message) = &e else {
        return StoreError::internal(e);
    };
    match failure.code {
        Code::ConstraintViolation => match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                // "UNIQUE constraint failed: order.owner_id, order.sku" names the columns.
                let columns: Vec<&str> = message
                    .as_deref()
                    .and_then(|m| m.rsplit_once(": "))
                    .map(|(_, cols)| {
                        cols.split(", ")
                            .map(|c| c.split_once('.').map_or(c, |(_, col)| col))
                            .collect()
                    })
                    .unwrap_or_default();
                unique_conflict(&columns)
            }
            _ => StoreError::internal(e),
        },
        // A read's progress handler stopped it (deadline or caller gone); the reader turns
        // a deadline into `Timeout`.
        Code::OperationInterrupted => {
            StoreError::Unavailable("the statement was interrupted".to_owned())
        }
        Code::DatabaseBusy | Code::DatabaseLocked => {
            StoreError::Unavailable("the database is busy".to_owned())
        }
        // The write is rolled back whole and the writer goes on; writes succeed again once
        // space is freed, without a restart.
        Code::DiskFull => StoreError::Unavailable(DISK_FULL.to_owned()),
        Code::CannotOpen
        | Code::SystemIoFailure
        | Code::ReadOnly
        | Code::FileLockingProtocolFailed => StoreError::Unavailable(format!(
            "the database cannot be used: {}",
            failure.code_description()
        )),
        _ => StoreError::internal(e),
    }
}

trait Describe {
    fn code_description(&self) -> &'static str;
}

impl Describe for ffi::Error {
    fn code_description(&self) -> &'static str {
        match self.code {
            Code::CannotOpen => "cannot open the file",
            Code::SystemIoFailure => "I/O error",
            Code::ReadOnly => "read-only",
            _ => "file locking failed",
        }
    }
}

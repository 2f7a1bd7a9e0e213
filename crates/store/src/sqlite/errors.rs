//! Translation of `rusqlite` errors into [`StoreError`], in one place.

use crate::StoreError;
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
                // "UNIQUE constraint failed: customer.email" names the column.
                let field = message
                    .as_deref()
                    .and_then(|m| m.rsplit_once(": "))
                    .and_then(|(_, cols)| cols.split(", ").next())
                    .and_then(|col| col.split_once('.'))
                    .map(|(_, col)| col.to_owned());
                StoreError::Conflict {
                    field,
                    reason: "another record already has this value".to_owned(),
                }
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
        Code::CannotOpen
        | Code::SystemIoFailure
        | Code::DiskFull
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
            Code::DiskFull => "disk full",
            Code::ReadOnly => "read-only",
            _ => "file locking failed",
        }
    }
}

//! Translation of `tokio_postgres` and pool errors into [`StoreError`], in one place.

use crate::StoreError;
use crate::error::DISK_FULL;
use crate::shared::unique_conflict;
use tokio_postgres::error::SqlState;

/// Maps a driver error to a storage error.
pub(super) fn map(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No server answer: the connection is closed, refused or timed out, or its TLS
        // handshake failed (the causes say why: a certificate's issuer or name, say).
        let mut message = format!("database connection failed: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let text = c.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = c.source();
        }
        return StoreError::Unavailable(message);
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        // The detail names the columns: `Key (owner_id, sku)=(…, …) already exists.` (Index
        // names may be shortened, so they are not parsed.)
        let columns: Vec<&str> = db
            .detail()
            .and_then(|d| d.strip_prefix("Key ("))
            .and_then(|d| d.split_once(")=("))
            .map(|(cols, _)| cols.split(", ").collect())
            .unwrap_or_default();
        return unique_conflict(&columns);
    }
    if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *code == SqlState::UNTRANSLATABLE_CHARACTER
    {
        return StoreError::InvalidValue {
            reason: "text cannot contain NUL (\\u0000) characters in PostgreSQL".to_owned(),
        };
    }
    if *code == SqlState::INVALID_CATALOG_NAME {
        return StoreError::Unavailable(format!("the database does not exist: {}", db.message()));
    }
    if *code == SqlState::DISK_FULL {
        // 53100: the server could not extend a file; the transaction is rolled back whole.
        return StoreError::Unavailable(format!("{DISK_FULL}: {}", db.message()));
    }
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return StoreError::Contention(db.message().to_owned());
    }
    let class = &code.code()[..2];
    // 08: connection exceptions; 57: operator intervention (shutdown, statement timeout);
    // 53: insufficient resources (too many connections); 40: transaction rollback.
    if matches!(class, "08" | "57" | "53" | "40") {
        return StoreError::Unavailable(format!("database unavailable: {}", db.message()));
    }
    StoreError::internal(format!(
        "{} ({}): {}",
        db.severity(),
        code.code(),
        db.message()
    ))
}

/// Maps a pool error.
pub(super) fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map(e),
        other => StoreError::Unavailable(format!("no database connection available: {other}")),
    }
}

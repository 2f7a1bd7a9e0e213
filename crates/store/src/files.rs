//! File fields' bookkeeping: which record's field holds which stored file (by name), and
//! which content (by SHA-256) that file is. The content itself lives outside the database
//! (the server's file storage); rows are written in the transaction of the record write
//! that adds or drops them.

use crate::StoreError;
use async_trait::async_trait;
use plinth_core::{ModelDef, RecordId, Timestamp};

/// A file uploaded with a write, already in storage, that the write's record will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// The file field.
    pub field: String,
    /// The stored name (what the record's value says).
    pub name: String,
    /// SHA-256 of the content, lowercase hex: where the content is stored.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// The type sniffed from the content.
    pub mime: String,
}

/// A file a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The file field.
    pub field: String,
    /// The stored name.
    pub name: String,
    /// SHA-256 of the content, lowercase hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// The type sniffed from the content.
    pub mime: String,
    /// When it was uploaded.
    pub created_at: Timestamp,
}

/// Reads of the file table (its writes ride on record writes: [`crate::WriteCtx::files`]).
#[async_trait]
pub trait FileStore: Send + Sync {
    /// The files record `id` of `model` holds, in every file field.
    async fn files_of(&self, model: &ModelDef, id: RecordId)
    -> Result<Vec<StoredFile>, StoreError>;
    /// One file of record `id`, by field and name.
    async fn file(
        &self,
        model: &ModelDef,
        id: RecordId,
        field: &str,
        name: &str,
    ) -> Result<Option<StoredFile>, StoreError>;
    /// Whether any record holds a file with this content.
    async fn file_in_use(&self, hash: &str) -> Result<bool, StoreError>;
}

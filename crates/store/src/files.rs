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

/// A file row as an export line holds it (`{"file": …}`, after its record's line).
pub(crate) fn file_json(model: &ModelDef, id: RecordId, f: &StoredFile) -> serde_json::Value {
    serde_json::json!({
        "model": model.name().as_str(), "record_id": id.to_string(), "field": f.field,
        "name": f.name, "hash": f.hash, "size": f.size, "mime": f.mime,
        "created_at": f.created_at.to_string(),
    })
}

/// A file row back from its export line, checked against `model`: a file field of it, a
/// stored file's name, a SHA-256.
pub(crate) fn file_from(
    model: &ModelDef,
    v: &serde_json::Value,
) -> Result<(RecordId, StoredFile), String> {
    let text = |k: &str| v[k].as_str().ok_or_else(|| format!("file without {k}"));
    let field = text("field")?;
    let declared = model
        .field(field)
        .is_some_and(|(_, f)| matches!(f.ty(), plinth_core::schema::FieldType::File(_)));
    if !declared {
        return Err(format!("{field:?} is not a file field of {}", model.name()));
    }
    let name = text("name")?;
    if !plinth_core::schema::file::is_file_name(name) {
        return Err(format!("{name:?} is not a stored file's name"));
    }
    let hash = text("hash")?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the hash is not a lowercase hex SHA-256".to_owned());
    }
    let file = StoredFile {
        field: field.to_owned(),
        name: name.to_owned(),
        hash: hash.to_owned(),
        size: v["size"].as_u64().ok_or("file without size")?,
        mime: text("mime")?.to_owned(),
        created_at: Timestamp::parse(text("created_at")?)?,
    };
    Ok((RecordId::parse(text("record_id")?)?, file))
}

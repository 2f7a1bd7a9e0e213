//! The [`FileStore`] reads of [`SqliteStore`]: point reads, inline on a reader.

use super::SqliteStore;
use crate::StoreError;
use crate::files::{FileStore, StoredFile};
use crate::sql::{files, ready};
use async_trait::async_trait;
use plinth_core::{ModelDef, RecordId};

#[async_trait]
impl FileStore for SqliteStore {
    async fn files_of(
        &self,
        model: &ModelDef,
        id: RecordId,
    ) -> Result<Vec<StoredFile>, StoreError> {
        self.read_point(|c| ready(files::of(c, model, id))).await
    }

    async fn file(
        &self,
        model: &ModelDef,
        id: RecordId,
        field: &str,
        name: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        self.read_point(|c| ready(files::one(c, model, id, field, name)))
            .await
    }

    async fn file_in_use(&self, hash: &str) -> Result<bool, StoreError> {
        self.read_point(|c| ready(files::in_use(c, hash))).await
    }
}

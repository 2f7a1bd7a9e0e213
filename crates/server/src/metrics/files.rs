//! The `FileStore` half of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::{ModelDef, RecordId};
use plinth_store::{FileStore, StoreError, StoredFile};

#[async_trait]
impl FileStore for MeteredStore {
    async fn files_of(
        &self,
        model: &ModelDef,
        id: RecordId,
    ) -> Result<Vec<StoredFile>, StoreError> {
        self.ops
            .time(Op::FilesOf, self.inner.files_of(model, id))
            .await
    }
    async fn file(
        &self,
        model: &ModelDef,
        id: RecordId,
        field: &str,
        name: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let call = self.inner.file(model, id, field, name);
        self.ops.time(Op::File, call).await
    }
    async fn file_in_use(&self, hash: &str) -> Result<bool, StoreError> {
        self.ops
            .time(Op::FileInUse, self.inner.file_in_use(hash))
            .await
    }
}

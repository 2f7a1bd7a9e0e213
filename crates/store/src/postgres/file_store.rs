//! The [`FileStore`] reads of [`PgStore`]: on the primary (a download follows the write
//! that added the file; a blob's last holder must not be missed on a lagging replica).

use super::{PRIMARY, PgStore};
use crate::StoreError;
use crate::files::{FileStore, StoredFile};
use crate::sql::files;
use async_trait::async_trait;
use plinth_core::{ModelDef, RecordId};

#[async_trait]
impl FileStore for PgStore {
    async fn files_of(
        &self,
        model: &ModelDef,
        id: RecordId,
    ) -> Result<Vec<StoredFile>, StoreError> {
        self.call(PRIMARY, async |c| files::of(c, model, id).await)
            .await
    }

    async fn file(
        &self,
        model: &ModelDef,
        id: RecordId,
        field: &str,
        name: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        self.call(PRIMARY, async |c| {
            files::one(c, model, id, field, name).await
        })
        .await
    }

    async fn file_in_use(&self, hash: &str) -> Result<bool, StoreError> {
        self.call(PRIMARY, async |c| files::in_use(c, hash).await)
            .await
    }
}

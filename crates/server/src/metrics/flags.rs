//! The `FlagStore` half of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::flags::{Flag, FlagChanges, FlagKey};
use plinth_store::{FlagStore, FlagVersion, NewFlag, StoreError, WriteCtx};

#[async_trait]
impl FlagStore for MeteredStore {
    async fn create_flag(&self, ctx: &WriteCtx, flag: NewFlag) -> Result<Flag, StoreError> {
        let call = self.inner.create_flag(ctx, flag);
        self.ops.time(Op::CreateFlag, call).await
    }
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError> {
        self.ops.time(Op::ListFlags, self.inner.list_flags()).await
    }
    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        self.ops.time(Op::GetFlag, self.inner.get_flag(key)).await
    }
    async fn update_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        changes: FlagChanges,
        expected: Option<FlagVersion>,
    ) -> Result<Flag, StoreError> {
        let call = self.inner.update_flag(ctx, key, changes, expected);
        self.ops.time(Op::UpdateFlag, call).await
    }
    async fn delete_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        expected: Option<FlagVersion>,
    ) -> Result<(), StoreError> {
        let call = self.inner.delete_flag(ctx, key, expected);
        self.ops.time(Op::DeleteFlag, call).await
    }
}

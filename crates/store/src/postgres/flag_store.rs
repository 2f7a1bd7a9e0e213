//! The [`FlagStore`] methods of [`PgStore`]: each change one transaction (retried on a lost
//! race), reads on the primary.

use super::{PRIMARY, PgStore};
use crate::sql::flags;
use crate::{FlagStore, FlagVersion, NewFlag, StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::flags::{Flag, FlagChanges, FlagKey};

#[async_trait]
impl FlagStore for PgStore {
    async fn create_flag(&self, ctx: &WriteCtx, flag: NewFlag) -> Result<Flag, StoreError> {
        self.in_tx(async |tx| flags::create_flag(tx, self.by(ctx), flag.clone()).await)
            .await
    }

    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError> {
        self.call(PRIMARY, async |c| flags::list_flags(c).await)
            .await
    }

    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        self.call(PRIMARY, async |c| flags::get_flag(c, key).await)
            .await
    }

    async fn update_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        changes: FlagChanges,
        expected: Option<FlagVersion>,
    ) -> Result<Flag, StoreError> {
        self.in_tx(async |tx| flags::update_flag(tx, self.by(ctx), key, &changes, expected).await)
            .await
    }

    async fn delete_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        expected: Option<FlagVersion>,
    ) -> Result<(), StoreError> {
        self.in_tx(async |tx| flags::delete_flag(tx, self.by(ctx), key, expected).await)
            .await
    }
}

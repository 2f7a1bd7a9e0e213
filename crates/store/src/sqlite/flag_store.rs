//! The [`FlagStore`] methods of [`SqliteStore`]: changes on the writer thread, reads on a
//! reader (the list as other scans are, one flag as a point lookup).

use super::SqliteStore;
use crate::sql::flags;
use crate::sql::ready;
use crate::sql::records::By;
use crate::{FlagStore, FlagVersion, NewFlag, StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::flags::{Flag, FlagChanges, FlagKey};

#[async_trait]
impl FlagStore for SqliteStore {
    async fn create_flag(&self, ctx: &WriteCtx, flag: NewFlag) -> Result<Flag, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(flags::create_flag(&w.conn, by, flag.clone()))
        })
        .await
    }

    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError> {
        // Every row: on the blocking pool within the read budget, not on the caller's thread.
        self.read(|c| ready(flags::list_flags(c))).await
    }

    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        self.read_point(|c| ready(flags::get_flag(c, key))).await
    }

    async fn update_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        changes: FlagChanges,
        expected: Option<FlagVersion>,
    ) -> Result<Flag, StoreError> {
        let (ctx, key) = (ctx.clone(), key.clone());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(flags::update_flag(&w.conn, by, &key, &changes, expected))
        })
        .await
    }

    async fn delete_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        expected: Option<FlagVersion>,
    ) -> Result<(), StoreError> {
        let (ctx, key) = (ctx.clone(), key.clone());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(flags::delete_flag(&w.conn, by, &key, expected))
        })
        .await
    }
}

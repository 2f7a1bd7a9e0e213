//! The [`AccountStore`] methods of [`PgStore`]: users, refresh-token families, API keys.

use super::{PRIMARY, PgStore};
use crate::sql::{accounts, sweep};
use crate::{
    AccountStore, ApiKey, NewApiKey, NewUser, Refresh, StoreError, User, UserChanges, WriteCtx,
};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use uuid::Uuid;

#[async_trait]
impl AccountStore for PgStore {
    async fn create_user(&self, ctx: &WriteCtx, user: NewUser) -> Result<User, StoreError> {
        self.in_tx(async |tx| accounts::create_user(tx, self.by(ctx), user.clone()).await)
            .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::get_user(c, &self.inner.keys, id).await
        })
        .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::find_user_by_email(c, &self.inner.keys, email).await
        })
        .await
    }

    async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<User>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::list_users(c, &self.inner.keys, after, limit).await
        })
        .await
    }

    async fn update_user(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        changes: UserChanges,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError> {
        self.in_tx(async |tx| {
            accounts::update_user(tx, self.by(ctx), id, &changes, expected_version).await
        })
        .await
    }

    async fn delete_user(&self, ctx: &WriteCtx, id: Uuid) -> Result<(), StoreError> {
        self.in_tx(async |tx| accounts::delete_user(tx, self.by(ctx), id).await)
            .await
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.call(PRIMARY, async |c| accounts::count_admins(c).await)
            .await
    }

    async fn insert_refresh(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
        started_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.in_tx(async |tx| {
            let by = self.by(ctx);
            accounts::insert_refresh(tx, by, user_id, family, token_hash, expires_at, started_at)
                .await
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        ctx: &WriteCtx,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        session_cutoff: Timestamp,
    ) -> Result<Refresh, StoreError> {
        self.in_tx(async |tx| {
            let by = self.by(ctx);
            accounts::rotate_refresh(tx, by, old_hash, new_hash, new_expires_at, session_cutoff)
                .await
        })
        .await
    }

    async fn sweep_refresh(
        &self,
        session_cutoff: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.call(PRIMARY, async |c| {
            sweep::sweep_refresh(c, self.now(), session_cutoff, limit).await
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| accounts::revoke_refresh_family(tx, self.by(ctx), token_hash).await)
            .await
    }

    async fn refresh_family_of(&self, token_hash: &str) -> Result<Option<Uuid>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::refresh_family_of(c, token_hash).await
        })
        .await
    }

    async fn refresh_family_live(&self, family: Uuid) -> Result<bool, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::refresh_family_live(c, family).await
        })
        .await
    }

    async fn create_api_key(&self, ctx: &WriteCtx, key: NewApiKey) -> Result<ApiKey, StoreError> {
        self.in_tx(async |tx| accounts::create_api_key(tx, self.by(ctx), key.clone()).await)
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::find_api_key(c, &self.inner.keys, key_hash).await
        })
        .await
    }

    async fn list_api_keys(&self, user_id: Option<Uuid>) -> Result<Vec<ApiKey>, StoreError> {
        self.call(PRIMARY, async |c| accounts::list_api_keys(c, user_id).await)
            .await
    }

    async fn revoke_api_key(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<ApiKey, StoreError> {
        self.in_tx(async |tx| accounts::revoke_api_key(tx, self.by(ctx), id, owner).await)
            .await
    }

    async fn import_user(&self, user: User) -> Result<(), StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::import_user(c, &self.inner.keys, &user).await
        })
        .await
    }

    async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::touch_api_key(c, id, self.now()).await
        })
        .await
    }
}

//! The `AccountStore` half of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use plinth_store::{
    AccountStore, ApiKey, NewApiKey, NewUser, Refresh, StoreError, User, UserChanges, WriteCtx,
};
use uuid::Uuid;

#[async_trait]
impl AccountStore for MeteredStore {
    async fn create_user(&self, ctx: &WriteCtx, user: NewUser) -> Result<User, StoreError> {
        self.ops
            .time(Op::CreateUser, self.inner.create_user(ctx, user))
            .await
    }
    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.ops.time(Op::GetUser, self.inner.get_user(id)).await
    }
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let call = self.inner.find_user_by_email(email);
        self.ops.time(Op::FindUserByEmail, call).await
    }
    async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<User>, StoreError> {
        self.ops
            .time(Op::ListUsers, self.inner.list_users(after, limit))
            .await
    }
    async fn update_user(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        changes: UserChanges,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError> {
        let call = self.inner.update_user(ctx, id, changes, expected_version);
        self.ops.time(Op::UpdateUser, call).await
    }
    async fn delete_user(&self, ctx: &WriteCtx, id: Uuid) -> Result<(), StoreError> {
        self.ops
            .time(Op::DeleteUser, self.inner.delete_user(ctx, id))
            .await
    }
    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.ops
            .time(Op::CountAdmins, self.inner.count_admins())
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
        let call = self
            .inner
            .insert_refresh(ctx, user_id, family, token_hash, expires_at, started_at);
        self.ops.time(Op::InsertRefresh, call).await
    }
    async fn rotate_refresh(
        &self,
        ctx: &WriteCtx,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        session_cutoff: Timestamp,
    ) -> Result<Refresh, StoreError> {
        let call =
            self.inner
                .rotate_refresh(ctx, old_hash, new_hash, new_expires_at, session_cutoff);
        self.ops.time(Op::RotateRefresh, call).await
    }
    async fn sweep_refresh(
        &self,
        session_cutoff: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let call = self.inner.sweep_refresh(session_cutoff, limit);
        self.ops.time(Op::SweepRefresh, call).await
    }
    async fn revoke_refresh_family(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let call = self.inner.revoke_refresh_family(ctx, token_hash);
        self.ops.time(Op::RevokeRefreshFamily, call).await
    }
    async fn refresh_family_of(&self, token_hash: &str) -> Result<Option<Uuid>, StoreError> {
        let call = self.inner.refresh_family_of(token_hash);
        self.ops.time(Op::RefreshFamilyOf, call).await
    }
    async fn refresh_family_live(&self, family: Uuid) -> Result<bool, StoreError> {
        let call = self.inner.refresh_family_live(family);
        self.ops.time(Op::RefreshFamilyLive, call).await
    }
    async fn create_api_key(&self, ctx: &WriteCtx, key: NewApiKey) -> Result<ApiKey, StoreError> {
        self.ops
            .time(Op::CreateApiKey, self.inner.create_api_key(ctx, key))
            .await
    }
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>, StoreError> {
        self.ops
            .time(Op::FindApiKey, self.inner.find_api_key(key_hash))
            .await
    }
    async fn list_api_keys(&self, user_id: Option<Uuid>) -> Result<Vec<ApiKey>, StoreError> {
        self.ops
            .time(Op::ListApiKeys, self.inner.list_api_keys(user_id))
            .await
    }
    async fn revoke_api_key(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<ApiKey, StoreError> {
        let call = self.inner.revoke_api_key(ctx, id, owner);
        self.ops.time(Op::RevokeApiKey, call).await
    }
    async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        self.ops
            .time(Op::TouchApiKey, self.inner.touch_api_key(id))
            .await
    }
    async fn import_user(&self, user: User) -> Result<(), StoreError> {
        self.ops
            .time(Op::ImportUser, self.inner.import_user(user))
            .await
    }
}

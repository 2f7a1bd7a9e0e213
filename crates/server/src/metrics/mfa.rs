//! The `MfaStore` part of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_store::{MfaStore, RecoveryCode, StoreError, TotpState, WriteCtx};
use uuid::Uuid;

#[async_trait]
impl MfaStore for MeteredStore {
    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpState>, StoreError> {
        self.ops
            .time(Op::GetTotp, self.inner.get_totp(user_id))
            .await
    }
    async fn begin_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        secret: &str,
    ) -> Result<bool, StoreError> {
        let call = self.inner.begin_totp(ctx, user_id, secret);
        self.ops.time(Op::BeginTotp, call).await
    }
    async fn confirm_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        step: i64,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.confirm_totp(ctx, user_id, step, code_hashes);
        self.ops.time(Op::ConfirmTotp, call).await
    }
    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let call = self.inner.spend_totp_step(user_id, step);
        self.ops.time(Op::SpendTotpStep, call).await
    }
    async fn spend_recovery_code(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let call = self.inner.spend_recovery_code(ctx, user_id, code_hash);
        self.ops.time(Op::SpendRecoveryCode, call).await
    }
    async fn replace_recovery_codes(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        let call = self.inner.replace_recovery_codes(ctx, user_id, code_hashes);
        self.ops.time(Op::ReplaceRecoveryCodes, call).await
    }
    async fn recovery_codes(&self, user_id: Uuid) -> Result<Vec<RecoveryCode>, StoreError> {
        // Untimed: read by `plinth export` only.
        self.inner.recovery_codes(user_id).await
    }
    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let call = self.inner.recovery_codes_left(user_id);
        self.ops.time(Op::RecoveryCodesLeft, call).await
    }
    async fn disable_totp(&self, ctx: &WriteCtx, user_id: Uuid) -> Result<bool, StoreError> {
        let call = self.inner.disable_totp(ctx, user_id);
        self.ops.time(Op::DisableTotp, call).await
    }
    async fn insert_mfa_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let call = self.inner.insert_mfa_token(user_id, token_hash, expires_at);
        self.ops.time(Op::InsertMfaToken, call).await
    }
    async fn find_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        let call = self.inner.find_mfa_token(token_hash, now);
        self.ops.time(Op::FindMfaToken, call).await
    }
    async fn spend_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        let call = self.inner.spend_mfa_token(token_hash, now);
        self.ops.time(Op::SpendMfaToken, call).await
    }
}

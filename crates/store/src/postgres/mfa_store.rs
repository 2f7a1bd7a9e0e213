//! The [`MfaStore`] methods of [`PgStore`]: each change in its own transaction with its
//! audit entry; the single-use checks are conditional updates, safe across instances.

use super::{PRIMARY, PgStore};
use crate::sql::accounts::mfa;
use crate::{MfaStore, RecoveryCode, StoreError, TotpState, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

#[async_trait]
impl MfaStore for PgStore {
    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpState>, StoreError> {
        self.call(PRIMARY, async |c| {
            mfa::get_totp(c, &self.inner.keys, user_id).await
        })
        .await
    }

    async fn begin_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        secret: &str,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| mfa::begin_totp(tx, self.by(ctx), user_id, secret).await)
            .await
    }

    async fn confirm_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        step: i64,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| {
            mfa::confirm_totp(tx, self.by(ctx), user_id, step, &code_hashes).await
        })
        .await
    }

    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.in_tx(async |tx| mfa::spend_totp_step(tx, user_id, step).await)
            .await
    }

    async fn spend_recovery_code(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| mfa::spend_recovery_code(tx, self.by(ctx), user_id, code_hash).await)
            .await
    }

    async fn replace_recovery_codes(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| {
            mfa::replace_recovery_codes(tx, self.by(ctx), user_id, &code_hashes).await
        })
        .await
    }

    async fn recovery_codes(&self, user_id: Uuid) -> Result<Vec<RecoveryCode>, StoreError> {
        self.call(PRIMARY, async |c| mfa::recovery_codes(c, user_id).await)
            .await
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        self.call(PRIMARY, async |c| {
            mfa::recovery_codes_left(c, user_id).await
        })
        .await
    }

    async fn disable_totp(&self, ctx: &WriteCtx, user_id: Uuid) -> Result<bool, StoreError> {
        self.in_tx(async |tx| mfa::disable_totp(tx, self.by(ctx), user_id).await)
            .await
    }

    async fn insert_mfa_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.in_tx(async |tx| mfa::insert_mfa_token(tx, now, user_id, token_hash, expires_at).await)
            .await
    }

    async fn find_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        self.call(PRIMARY, async |c| {
            mfa::find_mfa_token(c, token_hash, now).await
        })
        .await
    }

    async fn spend_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        self.in_tx(async |tx| mfa::spend_mfa_token(tx, token_hash, now).await)
            .await
    }
}

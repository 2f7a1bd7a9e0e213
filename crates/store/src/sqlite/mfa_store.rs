//! `MfaStore` for SQLite: each a shared statement of `crate::sql::accounts::mfa`, run on the
//! writer thread (every change, so the single-use checks see each other in order) or a
//! reader (point reads).

use super::SqliteStore;
use super::writer::Writer;
use crate::sql::accounts::mfa;
use crate::sql::ready;
use crate::sql::records::By;
use crate::{MfaStore, RecoveryCode, StoreError, TotpState, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

impl SqliteStore {
    /// Runs an audited change on the writer: `f` gets the connection and who writes when.
    async fn mfa_write<T, F>(&self, ctx: &WriteCtx, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Writer, By<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            f(w, by)
        })
        .await
    }
}

#[async_trait]
impl MfaStore for SqliteStore {
    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpState>, StoreError> {
        self.read_point(|c| ready(mfa::get_totp(c, &self.inner.keys, user_id)))
            .await
    }

    async fn begin_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        secret: &str,
    ) -> Result<bool, StoreError> {
        let secret = secret.to_owned();
        self.mfa_write(ctx, move |w, by| {
            ready(mfa::begin_totp(&w.conn, by, user_id, &secret))
        })
        .await
    }

    async fn confirm_totp(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        step: i64,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        self.mfa_write(ctx, move |w, by| {
            ready(mfa::confirm_totp(&w.conn, by, user_id, step, &code_hashes))
        })
        .await
    }

    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.write(move |w| ready(mfa::spend_totp_step(&w.conn, user_id, step)))
            .await
    }

    async fn spend_recovery_code(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let hash = code_hash.to_owned();
        self.mfa_write(ctx, move |w, by| {
            ready(mfa::spend_recovery_code(&w.conn, by, user_id, &hash))
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        code_hashes: Vec<String>,
    ) -> Result<bool, StoreError> {
        self.mfa_write(ctx, move |w, by| {
            ready(mfa::replace_recovery_codes(
                &w.conn,
                by,
                user_id,
                &code_hashes,
            ))
        })
        .await
    }

    async fn recovery_codes(&self, user_id: Uuid) -> Result<Vec<RecoveryCode>, StoreError> {
        self.read_point(|c| ready(mfa::recovery_codes(c, user_id)))
            .await
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        self.read_point(|c| ready(mfa::recovery_codes_left(c, user_id)))
            .await
    }

    async fn disable_totp(&self, ctx: &WriteCtx, user_id: Uuid) -> Result<bool, StoreError> {
        self.mfa_write(ctx, move |w, by| {
            ready(mfa::disable_totp(&w.conn, by, user_id))
        })
        .await
    }

    async fn insert_mfa_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        self.write(move |w| {
            let now = w.now();
            ready(mfa::insert_mfa_token(
                &w.conn, now, user_id, &hash, expires_at,
            ))
        })
        .await
    }

    async fn find_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        self.read_point(|c| ready(mfa::find_mfa_token(c, token_hash, now)))
            .await
    }

    async fn spend_mfa_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Uuid>, StoreError> {
        let hash = token_hash.to_owned();
        self.write(move |w| ready(mfa::spend_mfa_token(&w.conn, &hash, now)))
            .await
    }
}

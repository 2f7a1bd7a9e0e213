//! The [`AccountTokenStore`] methods of [`PgStore`]: each one transaction (retried on a
//! lost race).

use super::PgStore;
use crate::sql::accounts::tokens;
use crate::{AccountTokenStore, NewAccountToken, NewUser, StoreError, TokenUse, User, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;

#[async_trait]
impl AccountTokenStore for PgStore {
    async fn sign_up(
        &self,
        ctx: &WriteCtx,
        user: NewUser,
        token: Option<NewAccountToken>,
    ) -> Result<User, StoreError> {
        self.in_tx(async |tx| tokens::sign_up(tx, self.by(ctx), user.clone(), token.clone()).await)
            .await
    }

    async fn issue_account_token(
        &self,
        ctx: &WriteCtx,
        token: NewAccountToken,
    ) -> Result<(), StoreError> {
        self.in_tx(async |tx| tokens::issue_account_token(tx, self.by(ctx), &token).await)
            .await
    }

    async fn redeem_account_token(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
        now: Timestamp,
        apply: TokenUse,
    ) -> Result<Option<User>, StoreError> {
        self.in_tx(async |tx| {
            tokens::redeem_account_token(tx, self.by(ctx), token_hash, now, &apply).await
        })
        .await
    }

    async fn sweep_account_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.in_tx(async |tx| tokens::sweep_account_tokens(tx, now, limit).await)
            .await
    }
}

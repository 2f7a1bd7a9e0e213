//! The `AccountTokenStore` third of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_store::{
    AccountTokenStore, NewAccountToken, NewUser, StoreError, TokenUse, User, WriteCtx,
};

#[async_trait]
impl AccountTokenStore for MeteredStore {
    async fn sign_up(
        &self,
        ctx: &WriteCtx,
        user: NewUser,
        token: Option<NewAccountToken>,
    ) -> Result<User, StoreError> {
        let call = self.inner.sign_up(ctx, user, token);
        self.ops.time(Op::SignUp, call).await
    }
    async fn issue_account_token(
        &self,
        ctx: &WriteCtx,
        token: NewAccountToken,
    ) -> Result<(), StoreError> {
        let call = self.inner.issue_account_token(ctx, token);
        self.ops.time(Op::IssueAccountToken, call).await
    }
    async fn redeem_account_token(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
        now: Timestamp,
        apply: TokenUse,
    ) -> Result<Option<User>, StoreError> {
        let call = self.inner.redeem_account_token(ctx, token_hash, now, apply);
        self.ops.time(Op::RedeemAccountToken, call).await
    }
    async fn sweep_account_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let call = self.inner.sweep_account_tokens(now, limit);
        self.ops.time(Op::SweepAccountTokens, call).await
    }
}

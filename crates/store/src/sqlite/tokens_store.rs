//! The [`AccountTokenStore`] methods of [`SqliteStore`]: each one transaction on the writer
//! thread.

use super::SqliteStore;
use crate::sql::accounts::tokens;
use crate::sql::ready;
use crate::sql::records::By;
use crate::{AccountTokenStore, NewAccountToken, NewUser, StoreError, TokenUse, User, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;

#[async_trait]
impl AccountTokenStore for SqliteStore {
    async fn sign_up(
        &self,
        ctx: &WriteCtx,
        user: NewUser,
        token: Option<NewAccountToken>,
    ) -> Result<User, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(tokens::sign_up(&w.conn, by, user.clone(), token.clone()))
        })
        .await
    }

    async fn issue_account_token(
        &self,
        ctx: &WriteCtx,
        token: NewAccountToken,
    ) -> Result<(), StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(tokens::issue_account_token(&w.conn, by, &token))
        })
        .await
    }

    async fn redeem_account_token(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
        now: Timestamp,
        apply: TokenUse,
    ) -> Result<Option<User>, StoreError> {
        let (ctx, hash) = (ctx.clone(), token_hash.to_owned());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(tokens::redeem_account_token(
                &w.conn, by, &hash, now, &apply,
            ))
        })
        .await
    }

    async fn sweep_account_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |w| ready(tokens::sweep_account_tokens(&w.conn, now, limit)))
            .await
    }
}

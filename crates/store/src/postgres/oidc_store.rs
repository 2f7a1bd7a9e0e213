//! The [`OidcStore`] methods of [`PgStore`]: each in its own transaction, so taking a
//! pending login and resolving an account are all or nothing.

use super::{PRIMARY, PgStore};
use crate::sql::accounts::oidc;
use crate::{
    OidcIdentity, OidcOutcome, OidcSignIn, OidcStore, PendingOidcLogin, StoreError, WriteCtx,
};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl OidcStore for PgStore {
    async fn put_oidc_login(&self, login: PendingOidcLogin) -> Result<(), StoreError> {
        self.in_tx(async |tx| oidc::put_login(tx, &self.inner.keys, self.now(), &login).await)
            .await
    }

    async fn take_oidc_login(
        &self,
        state_hash: &str,
        provider: &str,
    ) -> Result<Option<PendingOidcLogin>, StoreError> {
        self.in_tx(async |tx| {
            oidc::take_login(tx, &self.inner.keys, self.now(), state_hash, provider).await
        })
        .await
    }

    async fn oidc_identities(&self, user_id: Uuid) -> Result<Vec<OidcIdentity>, StoreError> {
        self.call(PRIMARY, async |c| oidc::identities(c, user_id).await)
            .await
    }

    async fn oidc_sign_in(
        &self,
        ctx: &WriteCtx,
        sign_in: OidcSignIn,
    ) -> Result<OidcOutcome, StoreError> {
        self.in_tx(async |tx| oidc::sign_in(tx, self.by(ctx), &sign_in).await)
            .await
    }
}

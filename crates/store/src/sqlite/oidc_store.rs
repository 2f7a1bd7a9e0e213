//! The [`OidcStore`] methods of [`SqliteStore`]: each a shared statement of
//! `crate::sql::accounts::oidc`, run on the writer thread (taking a login deletes it).

use super::SqliteStore;
use crate::sql::accounts::oidc;
use crate::sql::ready;
use crate::sql::records::By;
use crate::{
    OidcIdentity, OidcOutcome, OidcSignIn, OidcStore, PendingOidcLogin, StoreError, WriteCtx,
};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl OidcStore for SqliteStore {
    async fn put_oidc_login(&self, login: PendingOidcLogin) -> Result<(), StoreError> {
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(oidc::put_login(&w.conn, &keys, now, &login))
        })
        .await
    }

    async fn take_oidc_login(
        &self,
        state_hash: &str,
        provider: &str,
    ) -> Result<Option<PendingOidcLogin>, StoreError> {
        let keys = self.inner.keys.clone();
        let (hash, provider) = (state_hash.to_owned(), provider.to_owned());
        self.write(move |w| {
            let now = w.now();
            ready(oidc::take_login(&w.conn, &keys, now, &hash, &provider))
        })
        .await
    }

    async fn oidc_identities(&self, user_id: Uuid) -> Result<Vec<OidcIdentity>, StoreError> {
        self.read_point(|c| ready(oidc::identities(c, user_id)))
            .await
    }

    async fn oidc_sign_in(
        &self,
        ctx: &WriteCtx,
        sign_in: OidcSignIn,
    ) -> Result<OidcOutcome, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(oidc::sign_in(&w.conn, by, &sign_in))
        })
        .await
    }
}

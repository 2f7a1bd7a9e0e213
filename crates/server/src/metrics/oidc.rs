//! The `OidcStore` half of `MeteredStore`: passed through untimed (a sign-in is rare next
//! to record traffic; its HTTP latency is the request's).

use super::store::MeteredStore;
use async_trait::async_trait;
use plinth_store::{
    OidcIdentity, OidcOutcome, OidcSignIn, OidcStore, PendingOidcLogin, StoreError, WriteCtx,
};
use uuid::Uuid;

#[async_trait]
impl OidcStore for MeteredStore {
    async fn put_oidc_login(&self, login: PendingOidcLogin) -> Result<(), StoreError> {
        self.inner.put_oidc_login(login).await
    }
    async fn take_oidc_login(
        &self,
        state_hash: &str,
        provider: &str,
    ) -> Result<Option<PendingOidcLogin>, StoreError> {
        self.inner.take_oidc_login(state_hash, provider).await
    }
    async fn oidc_identities(&self, user_id: Uuid) -> Result<Vec<OidcIdentity>, StoreError> {
        self.inner.oidc_identities(user_id).await
    }
    async fn oidc_sign_in(
        &self,
        ctx: &WriteCtx,
        sign_in: OidcSignIn,
    ) -> Result<OidcOutcome, StoreError> {
        self.inner.oidc_sign_in(ctx, sign_in).await
    }
}

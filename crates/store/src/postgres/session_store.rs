//! The [`SessionStore`] methods of [`PgStore`]: an account's sessions, listed and ended.

use super::{PRIMARY, PgStore};
use crate::sql::accounts;
use crate::{Session, SessionStore, StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

#[async_trait]
impl SessionStore for PgStore {
    async fn list_sessions(
        &self,
        user_id: Uuid,
        session_cutoff: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.call(PRIMARY, async |c| {
            accounts::list_sessions(c, self.now(), user_id, session_cutoff).await
        })
        .await
    }

    async fn revoke_session(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
    ) -> Result<bool, StoreError> {
        self.in_tx(async |tx| accounts::revoke_session(tx, self.by(ctx), user_id, family).await)
            .await
    }

    async fn revoke_sessions(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        self.in_tx(async |tx| accounts::revoke_sessions(tx, self.by(ctx), user_id, except).await)
            .await
    }
}

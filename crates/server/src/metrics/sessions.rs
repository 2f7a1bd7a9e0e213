//! The `SessionStore` part of `MeteredStore`.

use super::store::{MeteredStore, Op};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_store::{Session, SessionStore, StoreError, WriteCtx};
use uuid::Uuid;

#[async_trait]
impl SessionStore for MeteredStore {
    async fn list_sessions(
        &self,
        user_id: Uuid,
        session_cutoff: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let call = self.inner.list_sessions(user_id, session_cutoff);
        self.ops.time(Op::ListSessions, call).await
    }
    async fn revoke_session(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
    ) -> Result<bool, StoreError> {
        let call = self.inner.revoke_session(ctx, user_id, family);
        self.ops.time(Op::RevokeSession, call).await
    }
    async fn revoke_sessions(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let call = self.inner.revoke_sessions(ctx, user_id, except);
        self.ops.time(Op::RevokeSessions, call).await
    }
}

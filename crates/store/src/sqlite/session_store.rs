//! `SessionStore` for SQLite: the list on a reader, each ending on the writer thread.

use super::SqliteStore;
use crate::sql::records::By;
use crate::sql::{accounts, ready};
use crate::{Session, SessionStore, StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn list_sessions(
        &self,
        user_id: Uuid,
        session_cutoff: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Timestamp::from_system(std::time::SystemTime::now());
        self.read(move |c| ready(accounts::list_sessions(c, now, user_id, session_cutoff)))
            .await
    }

    async fn revoke_session(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
    ) -> Result<bool, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(accounts::revoke_session(&w.conn, by, user_id, family))
        })
        .await
    }

    async fn revoke_sessions(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(accounts::revoke_sessions(&w.conn, by, user_id, except))
        })
        .await
    }
}

//! Sessions as their user sees them: the live refresh-token families of an account, listed
//! and ended one by one or all at once, as the [`SessionStore`] trait every engine
//! implements.
//!
//! A session is a refresh-token family: it starts at a login (`family_started_at`) and each
//! refresh adds a token to it. What the list shows of a session's last use (its time, the
//! client's address and user agent) is its newest token's. Ending a session revokes every
//! token of its family, audits it in the same transaction, and (on PostgreSQL) announces it
//! so every instance drops the credentials it cached: the session's access tokens stop
//! working at once.

use crate::{StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::Timestamp;
use uuid::Uuid;

/// The most sessions [`SessionStore::list_sessions`] returns (the newest).
pub const SESSIONS_LISTED_MAX: u32 = 1000;

/// A live session of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's id: its refresh-token family.
    pub id: Uuid,
    /// When the session started (the login).
    pub created_at: Timestamp,
    /// When it was last used: its newest token's creation (the login, or the last refresh).
    pub last_used_at: Timestamp,
    /// The client's address at that last use, if it was recorded.
    pub client_addr: Option<String>,
    /// The client's `User-Agent` at that last use, if it sent one and it was recorded.
    pub user_agent: Option<String>,
}

/// Listing and ending sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The live sessions of `user_id`, newest first (at most [`SESSIONS_LISTED_MAX`]): those
    /// with a token neither spent, revoked nor expired, started after `session_cutoff` (by
    /// the caller's clock, as for [`crate::AccountStore::rotate_refresh`]).
    async fn list_sessions(
        &self,
        user_id: Uuid,
        session_cutoff: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;
    /// Ends the session `family` of `user_id`: false (and nothing changed) when no token of
    /// that family belongs to that user and is still unrevoked, so another user's session
    /// is never revealed. Audited as `auth.session_revoked` by `ctx` and announced to other
    /// instances, in the revoking transaction.
    async fn revoke_session(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
    ) -> Result<bool, StoreError>;
    /// Ends every session of `user_id` but `except`; returns how many were ended. Audited
    /// (when any was) as one `auth.sessions_revoked` with the count, and announced.
    async fn revoke_sessions(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError>;
}

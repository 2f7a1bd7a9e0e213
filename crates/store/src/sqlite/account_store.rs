//! `AccountStore` for SQLite: users, refresh tokens and API keys, each a shared statement
//! of `crate::sql` run on the writer thread (writes) or a reader (point reads).

use super::SqliteStore;
use crate::sql::records::By;
use crate::sql::{accounts, ready, sweep};
use crate::{
    AccountStore, ApiKey, NewApiKey, NewUser, Refresh, StoreError, User, UserChanges, WriteCtx,
};
use async_trait::async_trait;
use plinth_core::Timestamp;
use plinth_core::auth::Email;
use uuid::Uuid;

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, ctx: &WriteCtx, user: NewUser) -> Result<User, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::create_user(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                user.clone(),
            ))
        })
        .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.read_point(|c| ready(accounts::get_user(c, &self.inner.keys, id)))
            .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let email = email.clone();
        self.read_point(|c| ready(accounts::find_user_by_email(c, &self.inner.keys, &email)))
            .await
    }

    async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<User>, StoreError> {
        let keys = self.inner.keys.clone();
        self.read(move |c| ready(accounts::list_users(c, &keys, after, limit)))
            .await
    }

    async fn update_user(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        changes: UserChanges,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::update_user(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                id,
                &changes,
                expected_version,
            ))
        })
        .await
    }

    async fn delete_user(&self, ctx: &WriteCtx, id: Uuid) -> Result<(), StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::delete_user(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                id,
            ))
        })
        .await
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.read(|c| ready(accounts::count_admins(c))).await
    }

    async fn insert_refresh(
        &self,
        ctx: &WriteCtx,
        user_id: Uuid,
        family: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
        started_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (ctx, hash) = (ctx.clone(), token_hash.to_owned());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(accounts::insert_refresh(
                &w.conn, by, user_id, family, &hash, expires_at, started_at,
            ))
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        ctx: &WriteCtx,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        session_cutoff: Timestamp,
    ) -> Result<Refresh, StoreError> {
        let (ctx, old, new) = (ctx.clone(), old_hash.to_owned(), new_hash.to_owned());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(accounts::rotate_refresh(
                &w.conn,
                by,
                &old,
                &new,
                new_expires_at,
                session_cutoff,
            ))
        })
        .await
    }

    async fn sweep_refresh(
        &self,
        session_cutoff: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |w| {
            let now = w.now();
            ready(sweep::sweep_refresh(&w.conn, now, session_cutoff, limit))
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        ctx: &WriteCtx,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let (ctx, hash) = (ctx.clone(), token_hash.to_owned());
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::revoke_refresh_family(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                &hash,
            ))
        })
        .await
    }

    async fn refresh_family_of(&self, token_hash: &str) -> Result<Option<Uuid>, StoreError> {
        self.read_point(|c| ready(accounts::refresh_family_of(c, token_hash)))
            .await
    }

    async fn refresh_family_live(&self, family: Uuid) -> Result<bool, StoreError> {
        self.read_point(|c| ready(accounts::refresh_family_live(c, family)))
            .await
    }

    async fn create_api_key(&self, ctx: &WriteCtx, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::create_api_key(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                key.clone(),
            ))
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>, StoreError> {
        let hash = key_hash.to_owned();
        self.read_point(|c| ready(accounts::find_api_key(c, &self.inner.keys, &hash)))
            .await
    }

    async fn list_api_keys(&self, user_id: Option<Uuid>) -> Result<Vec<ApiKey>, StoreError> {
        self.read(move |c| ready(accounts::list_api_keys(c, user_id)))
            .await
    }

    async fn revoke_api_key(
        &self,
        ctx: &WriteCtx,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<ApiKey, StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let now = w.now();
            ready(accounts::revoke_api_key(
                &w.conn,
                By {
                    ctx: &ctx,
                    now,
                    keys: &keys,
                },
                id,
                owner,
            ))
        })
        .await
    }

    async fn import_user(&self, user: User) -> Result<(), StoreError> {
        let keys = self.inner.keys.clone();
        self.write(move |w| ready(accounts::import_user(&w.conn, &keys, &user)))
            .await
    }

    async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        self.write(move |w| {
            let now = w.now();
            ready(accounts::touch_api_key(&w.conn, id, now))
        })
        .await
    }
}

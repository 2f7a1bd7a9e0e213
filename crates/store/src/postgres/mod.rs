//! The PostgreSQL engine, for scale-out: several stateless Plinth instances share one
//! database.
//!
//! A pool of connections (deadpool) with prepared statements cached per connection. Each
//! write is one transaction, retried a bounded number of times when it loses a race
//! (serialization failure, deadlock). Conditional writes are single statements guarded by
//! `version`, so `If-Match` has exactly one winner across instances; idempotency keys are
//! claimed with `INSERT … ON CONFLICT DO NOTHING` first, so they hold across instances too.
//! Migrations run under a transaction-scoped advisory lock: instances starting together
//! migrate once.
//!
//! Layout: `values` (parameters and rows), `ddl` (migrations), `records`, `list`,
//! `accounts`, `errors` (SQLSTATE → [`StoreError`]).

mod accounts;
mod connect;
mod ddl;
mod errors;
mod list;
mod records;
mod values;

use crate::ReadFrom;
use crate::shared::idempotency_scope;
use crate::{
    AccountStore, ApiKey, Created, IdempotencyClaim, NewApiKey, NewUser, Page, Refresh, Store,
    StoreError, User, UserChanges, WriteCtx,
};
use async_trait::async_trait;
pub use connect::PgOptions;
use connect::{build_pool, listen};
use deadpool_postgres::Pool;
use plinth_core::auth::Email;
use plinth_core::migrate::Plan;
use plinth_core::{
    Draft, ListQuery, ListScope, ModelDef, Patch, Record, RecordId, Schema, Timestamp,
};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// Attempts of a write transaction that keeps losing races.
const WRITE_ATTEMPTS: u32 = 4;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Connections to the read replica, when one is configured.
    replica: Option<Pool>,
    /// The longest any store call may take (statement timeout plus connect timeout).
    op_timeout: Duration,
    /// Fed by the LISTEN connection (see `listen`): accounts or keys changed somewhere.
    invalidations: tokio::sync::broadcast::Sender<()>,
    /// The LISTEN task, aborted on close.
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The last timestamp handed out: times are strictly increasing within an instance.
    last_ts: AtomicI64,
    /// The schema last migrated to: purge and reference checks need it.
    schema: RwLock<Arc<Schema>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.inner.pool.status())
            .finish()
    }
}

/// Runs `$body` in a transaction bound to `$tx`, committing on `Ok`; retries the whole
/// transaction when it loses a race.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let mut client = $store.client().await?;
            let $tx = client.transaction().await.map_err(errors::map)?;
            let result = async { $body }.await;
            let outcome = match result {
                Ok(v) => $tx.commit().await.map_err(errors::map).map(|()| v),
                Err(e) => {
                    let _ = $tx.rollback().await;
                    Err(e)
                }
            };
            match outcome {
                Err(StoreError::Contention(why)) if attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, why = %why, "retrying a write that lost a race");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                other => break other,
            }
        }
    }};
}

impl PgStore {
    /// Connects (the pool opens connections lazily; one is tried now so a bad URL fails at
    /// start).
    pub async fn open(opts: PgOptions) -> Result<Self, StoreError> {
        let pool = build_pool(&opts.url, &opts)?;
        let replica = opts
            .read_url
            .as_deref()
            .map(|url| build_pool(url, &opts))
            .transpose()?;
        let empty = Schema::from_decls(&[])
            .map_err(|_| StoreError::internal("default schema is invalid"))?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                replica,
                op_timeout: opts.statement_timeout + opts.connect_timeout,
                invalidations: tokio::sync::broadcast::channel(16).0,
                listener: std::sync::Mutex::new(None),
                last_ts: AtomicI64::new(0),
                schema: RwLock::new(Arc::new(empty)),
            }),
        };
        // The internal tables (users, keys, tokens) exist from the start, as on SQLite, so
        // account commands work before the first migration.
        store
            .bounded(async { in_tx!(store, |tx| ddl::lock_and_init(&tx).await) })
            .await?;
        let listener = tokio::spawn(listen(opts.url.clone(), Arc::downgrade(&store.inner)));
        if let Ok(mut slot) = store.inner.listener.lock() {
            *slot = Some(listener);
        }
        if let Some(replica) = &store.inner.replica {
            store
                .bounded(async {
                    let client = replica.get().await.map_err(errors::pool)?;
                    client.simple_query("SELECT 1").await.map_err(errors::map)
                })
                .await?;
        }
        Ok(store)
    }

    /// Bounds a store call: a database that stops answering (a frozen server, a partition)
    /// must not hang requests, whose answer is then a prompt 503.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.op_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time".to_owned(),
            )),
        }
    }

    /// A connection for a read: the replica's when there is one and `from` allows it.
    async fn reader(&self, from: ReadFrom) -> Result<deadpool_postgres::Object, StoreError> {
        match (&self.inner.replica, from) {
            (Some(replica), ReadFrom::Replica) => replica.get().await.map_err(errors::pool),
            _ => self.client().await,
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(errors::pool)
    }

    fn now(&self) -> Timestamp {
        let now = Timestamp::from_system(std::time::SystemTime::now()).as_micros();
        let prev = self.inner.last_ts.fetch_max(now, Ordering::AcqRel);
        let t = if now > prev {
            now
        } else {
            self.inner.last_ts.fetch_add(1, Ordering::AcqRel) + 1
        };
        Timestamp::from_micros(t).unwrap_or(Timestamp::from_system(std::time::SystemTime::now()))
    }

    fn schema(&self) -> Arc<Schema> {
        self.inner
            .schema
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    fn visibility(&self, ctx: &WriteCtx) -> crate::shared::Visibility {
        crate::shared::Visibility::of(ctx, self.schema())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn plan(&self, schema: &Schema) -> Result<Plan, StoreError> {
        self.bounded(async {
            in_tx!(self, |tx| {
                ddl::lock_and_init(&tx).await?;
                ddl::plan(&tx, schema).await
            })
        })
        .await
    }

    async fn migrate(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let steps = in_tx!(self, |tx| {
                ddl::lock_and_init(&tx).await?;
                ddl::migrate(&tx, schema, allow_destructive).await
            })?;
            if let Ok(mut s) = self.inner.schema.write() {
                *s = Arc::new(schema.clone());
            }
            Ok(steps)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(errors::map)?;
            Ok(())
        })
        .await
    }

    async fn create(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        draft: Draft,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Created, StoreError> {
        self.bounded(async {
            let vis = self.visibility(ctx);
            let scope = idempotency_scope(ctx);
            in_tx!(self, |tx| {
                let now = self.now();
                let claim = idempotency.clone().map(|c| (scope.clone(), c));
                records::create(
                    &tx,
                    &vis,
                    model,
                    draft.clone(),
                    ctx.actor.user_id(),
                    now,
                    claim,
                )
                .await
            })
        })
        .await
    }

    async fn get(&self, model: &Arc<ModelDef>, id: RecordId) -> Result<Option<Record>, StoreError> {
        self.bounded(async { self.get_from(model, id, ReadFrom::Primary).await })
            .await
    }

    async fn get_from(
        &self,
        model: &Arc<ModelDef>,
        id: RecordId,
        from: ReadFrom,
    ) -> Result<Option<Record>, StoreError> {
        self.bounded(async {
            let client = self.reader(from).await?;
            records::get(&client, model, id).await
        })
        .await
    }

    async fn list_from(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<Page, StoreError> {
        self.bounded(async {
            let client = self.reader(from).await?;
            list::list(&client, model, query, scope).await
        })
        .await
    }

    fn invalidations(&self) -> Option<tokio::sync::broadcast::Receiver<()>> {
        Some(self.inner.invalidations.subscribe())
    }

    fn has_read_replica(&self) -> bool {
        self.inner.replica.is_some()
    }

    async fn list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError> {
        self.bounded(async { self.list_from(model, query, scope, ReadFrom::Primary).await })
            .await
    }

    async fn update(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        patch: Patch,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        self.bounded(async {
            let vis = self.visibility(ctx);
            in_tx!(self, |tx| records::update(
                &tx,
                &vis,
                model,
                id,
                &patch,
                expected_version,
                self.now()
            )
            .await)
        })
        .await
    }

    async fn delete(
        &self,
        _ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            records::set_status(&client, model, id, false, expected_version, self.now()).await
        })
        .await
    }

    async fn restore(
        &self,
        _ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Record, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            records::set_status(&client, model, id, true, None, self.now()).await
        })
        .await
    }

    async fn purge(
        &self,
        _ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let schema = self.schema();
            in_tx!(self, |tx| records::purge(
                &tx,
                &schema,
                model,
                id,
                expected_version
            )
            .await)
        })
        .await
    }

    async fn import_record(&self, model: &Arc<ModelDef>, record: Record) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            records::insert_exact(&client, model, &record).await
        })
        .await
    }

    async fn close(&self) {
        if let Some(listener) = self.inner.listener.lock().ok().and_then(|mut l| l.take()) {
            listener.abort();
        }
        self.inner.pool.close();
        if let Some(replica) = &self.inner.replica {
            replica.close();
        }
        tracing::info!("database closed");
    }
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_user(&self, _ctx: &WriteCtx, user: NewUser) -> Result<User, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::create_user(&client, user, self.now()).await
        })
        .await
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::get_user(&client, id).await
        })
        .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::find_user_by_email(&client, email).await
        })
        .await
    }

    async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<User>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::list_users(&client, after, limit).await
        })
        .await
    }

    async fn update_user(
        &self,
        _ctx: &WriteCtx,
        id: Uuid,
        changes: UserChanges,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError> {
        self.bounded(async {
            in_tx!(self, |tx| accounts::update_user(
                &tx,
                id,
                &changes,
                expected_version,
                self.now()
            )
            .await)
        })
        .await
    }

    async fn delete_user(&self, _ctx: &WriteCtx, id: Uuid) -> Result<(), StoreError> {
        self.bounded(async { in_tx!(self, |tx| accounts::delete_user(&tx, id).await) })
            .await
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::count_admins(&client).await
        })
        .await
    }

    async fn insert_refresh(
        &self,
        user_id: Uuid,
        family: Uuid,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::insert_refresh(&client, user_id, family, token_hash, expires_at, self.now())
                .await
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
    ) -> Result<Refresh, StoreError> {
        self.bounded(async {
            in_tx!(self, |tx| accounts::rotate_refresh(
                &tx,
                old_hash,
                new_hash,
                new_expires_at,
                self.now()
            )
            .await)
        })
        .await
    }

    async fn revoke_refresh_family(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::revoke_refresh_family(&client, token_hash, self.now()).await
        })
        .await
    }

    async fn create_api_key(&self, _ctx: &WriteCtx, key: NewApiKey) -> Result<ApiKey, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::create_api_key(&client, key, self.now()).await
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::find_api_key(&client, key_hash).await
        })
        .await
    }

    async fn list_api_keys(&self, user_id: Option<Uuid>) -> Result<Vec<ApiKey>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::list_api_keys(&client, user_id).await
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        _ctx: &WriteCtx,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<ApiKey, StoreError> {
        self.bounded(async {
            in_tx!(self, |tx| accounts::revoke_api_key(
                &tx,
                id,
                owner,
                self.now()
            )
            .await)
        })
        .await
    }

    async fn import_user(&self, user: User) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::import_user(&client, &user).await
        })
        .await
    }

    async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            accounts::touch_api_key(&client, id, self.now()).await
        })
        .await
    }
}

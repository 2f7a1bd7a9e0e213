//! The PostgreSQL engine, for scale-out: several stateless Plinth instances share one
//! database.
//!
//! A pool of connections (deadpool) with prepared statements cached per connection. Record
//! writes (creates, updates, deletes, restores) are group-committed: those arriving while
//! a transaction is open share the next one (see `group`); every other write is one
//! transaction. Either is retried a bounded number of times when it loses a race
//! (serialization failure, deadlock). Conditional writes are single statements guarded by
//! `version`, so `If-Match` has exactly one winner across instances; idempotency keys are
//! claimed with `INSERT … ON CONFLICT DO NOTHING` first, so they hold across instances too.
//! Migrations run under a transaction-scoped advisory lock: instances starting together
//! migrate once.
//!
//! The statements themselves are the shared ones of `crate::sql`, run through the
//! [`Exec`](crate::sql::Exec) of `exec`.
//!
//! Layout: `connect` (options, pools, LISTEN), `run` (a call bounded in time, on a pooled
//! client or in a retried transaction), `group` (group commit), `exec` (binding parameters, reading rows), `lists`
//! (lists and totals: gated, bounded in time, cancelled when abandoned; expansions), `batch`
//! (batch writes), `ddl` (migrations), `schema` (the migration methods), `changes` (the
//! change log's), `claim` (the advisory lock servers share and migrations take alone),
//! `errors` (SQLSTATE → [`StoreError`]), `account_store` ([`AccountStore`](crate::AccountStore)),
//! `backup` (a snapshot as JSON lines, its restore in one transaction).

mod account_store;
mod backup;
mod batch;
mod changes;
mod claim;
mod connect;
mod ddl;
mod errors;
mod exec;
mod file_store;
mod flag_store;
mod fresh;
mod group;
mod lists;
mod mfa_store;
mod oidc_store;
mod run;
mod schema;
mod session_store;
mod tls;
mod tokens_store;

use crate::ReadFrom;
use crate::backup::{BackupError, Restored, Taken};
use crate::gate::ListGate;
use crate::shared::idempotency_scope;
use crate::sql::records::{By, StatusChange};
use crate::sql::{audit, records, reseal, sweep};
use crate::transfer::{Line, TransferError};
use crate::{AuditEntry, AuditEvent, AuditQuery, AuditVerdict, ChangesPage, Resealed, SealedTable};
use crate::{Claim, Created, IdempotencyClaim, Page, Store, StoreError, WriteCtx};
use async_trait::async_trait;
pub use connect::PgOptions;
use connect::{build_pool, listen};
use deadpool_postgres::Pool;
use plinth_core::migrate::Plan;
use plinth_core::{
    Draft, ListQuery, ListScope, ModelDef, Patch, Record, RecordId, Schema, Timestamp,
};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Attempts of a write transaction that keeps losing races.
const WRITE_ATTEMPTS: u32 = 4;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The TLS of the primary's connections (cancel requests use it too).
    tls: tls::PgTls,
    /// Connections to the read replica, when one is configured, and their TLS.
    replica: Option<(Pool, tls::PgTls)>,
    /// The longest any store call may take (statement timeout plus connect timeout).
    op_timeout: Duration,
    /// The time budget of a record list (see `lists`).
    query_timeout: Duration,
    /// Admits record lists to the primary pool's connections, so other calls always find
    /// one.
    lists: ListGate,
    /// The same for the replica pool (each pool has `pool_size` connections of its own).
    replica_lists: ListGate,
    /// Fed by the LISTEN connection (see `listen`): accounts, keys or flags changed
    /// somewhere.
    invalidations: tokio::sync::broadcast::Sender<crate::Invalidation>,
    /// Bumped after a write that logged a change commits, in another instance or this one,
    /// by its notice (through `listen`); by the write itself while no LISTEN connection is
    /// up. (Bumped by both, the change feed would read the log twice a write.)
    signal: tokio::sync::watch::Sender<u64>,
    /// Whether the LISTEN connection is up, so that this instance's own notices arrive.
    listening: Arc<std::sync::atomic::AtomicBool>,
    /// The LISTEN task, aborted on close.
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The last timestamp handed out: times are strictly increasing within an instance.
    last_ts: AtomicI64,
    /// The schema last migrated to: purge and reference checks need it.
    schema: RwLock<Arc<Schema>>,
    /// The database URL, for the claim's own connection.
    url: String,
    /// The claim this process holds, on its own connection, until close.
    claim: tokio::sync::Mutex<Option<(Claim, claim::Held)>>,
    /// The keys that seal personal data.
    keys: crate::Keys,
    /// Versions of Plinth's own tables are applied (see [`PgOptions::upgrade`]).
    upgrade: bool,
    /// The group commit of record writes.
    group: group::Group,
    /// Records written per model since its table's statistics were refreshed.
    fresh: fresh::Freshness,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.inner.pool.status())
            .finish()
    }
}

impl PgStore {
    /// Takes the options' claim, if any, then connects (the pool opens connections lazily;
    /// one is tried now so a bad URL fails at start) and creates Plinth's own tables.
    pub async fn open(opts: PgOptions) -> Result<Self, StoreError> {
        let op_timeout = opts.statement_timeout + opts.connect_timeout;
        // The claim comes first: a refused process creates and changes nothing.
        let claim = match opts.claim {
            Some(claim) => Some((
                claim,
                claim::Held::take(&opts.url, claim, op_timeout).await?,
            )),
            None => None,
        };
        let (pool, tls) = build_pool(&opts.url, &opts)?;
        let replica = opts
            .read_url
            .as_deref()
            .map(|url| build_pool(url, &opts))
            .transpose()?;
        let empty = Schema::from_decls(&[])
            .map_err(|_| StoreError::internal("default schema is invalid"))?;
        let (group, queue) = group::Group::new();
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                tls: tls.clone(),
                replica,
                op_timeout,
                query_timeout: opts.query_timeout,
                lists: ListGate::new(opts.pool_size.max(1)),
                replica_lists: ListGate::new(opts.pool_size.max(1)),
                invalidations: tokio::sync::broadcast::channel(16).0,
                signal: tokio::sync::watch::channel(0).0,
                listening: Arc::default(),
                listener: std::sync::Mutex::new(None),
                last_ts: AtomicI64::new(0),
                schema: RwLock::new(Arc::new(empty)),
                url: opts.url.clone(),
                claim: tokio::sync::Mutex::new(claim),
                keys: opts.keys.clone(),
                upgrade: opts.upgrade,
                group,
                fresh: fresh::Freshness::default(),
            }),
        };
        group::Group::start(&store, queue);
        if opts.read_only {
            // Nothing to create or to listen for: a connection tried now proves the URL.
            store
                .call(PRIMARY, async |c| {
                    c.0.simple_query("SELECT 1").await.map_err(errors::map)
                })
                .await?;
            return Ok(store);
        }
        // The internal tables (users, keys, tokens) exist from the start, as on SQLite, so
        // account commands work before the first migration.
        if opts.upgrade {
            ddl::upgrade(&store).await?;
        }
        store
            .in_tx(async |tx| ddl::lock_and_init(tx.0, &opts.keys, opts.upgrade).await)
            .await?;
        let (listen_config, _) = tls::parse_url(&opts.url)?;
        let listener = tokio::spawn(listen(listen_config, tls, Arc::downgrade(&store.inner)));
        if let Ok(mut slot) = store.inner.listener.lock() {
            *slot = Some(listener);
        }
        if store.inner.replica.is_some() {
            store
                .call(ReadFrom::Replica, async |c| {
                    c.0.simple_query("SELECT 1").await.map_err(errors::map)
                })
                .await?;
        }
        Ok(store)
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

    /// The writer and time of a write attempt (each attempt of a retried write takes a new
    /// time).
    fn by<'a>(&'a self, ctx: &'a WriteCtx) -> By<'a> {
        By {
            ctx,
            now: self.now(),
            keys: &self.inner.keys,
        }
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

const PRIMARY: ReadFrom = ReadFrom::Primary;

#[async_trait]
impl Store for PgStore {
    async fn schema_status(&self) -> Result<crate::SchemaStatus, StoreError> {
        self.call(PRIMARY, async |c| crate::sql::versions::status(c).await)
            .await
    }

    async fn schema_down(&self, to: u32, allow_destructive: bool) -> Result<Vec<u32>, StoreError> {
        ddl::down(self, to, allow_destructive).await
    }

    async fn plan(&self, schema: &Schema) -> Result<Plan, StoreError> {
        self.plan_now(schema).await
    }

    async fn plan_sql(&self, schema: &Schema) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let plan = self.plan(schema).await?;
        Ok(crate::sql::steps::rendered(
            crate::sql::Dialect::Postgres,
            &plan,
        ))
    }

    async fn recorded(&self) -> Result<Vec<plinth_core::ModelDecl>, StoreError> {
        self.call(PRIMARY, async |c| ddl::applied(c.0).await).await
    }

    async fn import(&self, schema: &Schema, lines: Vec<Line>) -> Result<(), TransferError> {
        self.import_now(schema, &lines).await
    }

    async fn claim(&self, claim: Claim) -> Result<(), StoreError> {
        let held = claim::Held::take(&self.inner.url, claim, self.inner.op_timeout).await?;
        *self.inner.claim.lock().await = Some((claim, held));
        Ok(())
    }

    async fn migrate(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.migrate_now(schema, allow_destructive).await
    }

    async fn backup_to(&self, dest: &Path) -> Result<Taken, BackupError> {
        self.take_backup(dest).await
    }

    async fn restore_from(&self, source: &Path, force: bool) -> Result<Restored, BackupError> {
        self.restore_backup(source, force).await
    }

    async fn adopt(&self, schema: &Schema) -> Result<Vec<String>, StoreError> {
        self.adopt_now(schema).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A server whose claim is lost is not ready: a migration could run beside it.
        if let Some((_, held)) = self.inner.claim.lock().await.as_ref()
            && !held.is_held()
        {
            return Err(StoreError::Unavailable(
                "this server's claim on the database is lost; it is being taken again".to_owned(),
            ));
        }
        self.call(PRIMARY, async |c| {
            c.0.simple_query("SELECT 1").await.map_err(errors::map)?;
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
        let created = self
            .create_grouped(group::Write::Create {
                ctx: ctx.clone(),
                model: Arc::clone(model),
                vis: self.visibility(ctx),
                staged: records::Staged::new(&self.inner.keys, ctx, model, &draft)?,
                draft,
                claim: idempotency.map(|c| (idempotency_scope(ctx), c)),
            })
            .await?;
        if !created.replayed {
            self.wrote(model.name().as_str(), 1);
        }
        Ok(created)
    }

    async fn batch(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        ops: Vec<crate::BatchOp>,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<crate::Batched, StoreError> {
        self.batch_now(ctx, model, ops, idempotency).await
    }

    async fn get(&self, model: &Arc<ModelDef>, id: RecordId) -> Result<Option<Record>, StoreError> {
        self.get_from(model, id, PRIMARY).await
    }

    async fn get_from(
        &self,
        model: &Arc<ModelDef>,
        id: RecordId,
        from: ReadFrom,
    ) -> Result<Option<Record>, StoreError> {
        self.call(from, async |c| {
            records::get(c, &self.inner.keys, model, id).await
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
        self.list_within(model, query, scope, from).await
    }
    async fn count(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<u64, StoreError> {
        self.count_within(model, query, scope, from).await
    }
    async fn explain_list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError> {
        self.explain_within(model, query, scope).await
    }
    async fn get_many(
        &self,
        model: &Arc<ModelDef>,
        ids: &[RecordId],
        from: ReadFrom,
    ) -> Result<Vec<Record>, StoreError> {
        self.get_many_from(model, ids, from).await
    }

    fn invalidations(&self) -> Option<tokio::sync::broadcast::Receiver<crate::Invalidation>> {
        Some(self.inner.invalidations.subscribe())
    }

    fn has_read_replica(&self) -> bool {
        self.inner.replica.is_some()
    }

    fn engine_stats(&self) -> crate::EngineStats {
        crate::EngineStats {
            group: Some(self.inner.group.stats()),
            ..connect::stats(&self.inner.pool)
        }
    }

    async fn list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError> {
        self.list_from(model, query, scope, PRIMARY).await
    }

    async fn update(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        patch: Patch,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        self.change_grouped(group::Write::Update {
            ctx: ctx.clone(),
            model: Arc::clone(model),
            vis: self.visibility(ctx),
            id,
            patch,
            expected: expected_version,
        })
        .await
    }

    async fn delete(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        self.change_grouped(group::Write::Status {
            ctx: ctx.clone(),
            model: Arc::clone(model),
            id,
            change: StatusChange::Delete,
            expected: expected_version,
        })
        .await
    }

    async fn restore(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Record, StoreError> {
        self.change_grouped(group::Write::Status {
            ctx: ctx.clone(),
            model: Arc::clone(model),
            id,
            change: StatusChange::Restore,
            expected: None,
        })
        .await
    }

    async fn purge(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let schema = self.schema();
        let written = self
            .in_tx(async |tx| {
                records::purge(tx, self.by(ctx), &schema, model, id, expected_version).await
            })
            .await;
        self.changed(written)
    }

    async fn import_record(&self, model: &Arc<ModelDef>, record: Record) -> Result<(), StoreError> {
        self.call(PRIMARY, async |c| {
            records::insert(c, &self.inner.keys, model, &record, None).await
        })
        .await?;
        self.wrote(model.name().as_str(), 1);
        Ok(())
    }

    async fn sweep_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.call(PRIMARY, async |c| {
            sweep::sweep_idempotency(c, before, limit).await
        })
        .await
    }

    async fn changes_after(&self, after: i64, limit: u32) -> Result<ChangesPage, StoreError> {
        self.changes_after_now(after, limit).await
    }
    async fn change_window(&self) -> Result<crate::ChangeWindow, StoreError> {
        self.change_window_now().await
    }
    async fn prune_changes(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.prune_changes_now(before, limit).await
    }
    fn change_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.change_signal_now()
    }

    async fn audit_list(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(PRIMARY, async |c| audit::list(c, after_seq, limit).await)
            .await
    }

    async fn audit_event(&self, ctx: &WriteCtx, event: AuditEvent) -> Result<(), StoreError> {
        self.in_tx(async |tx| {
            let e = &event;
            audit::append_event(tx, self.by(ctx), e.event, e.target, &e.changes).await
        })
        .await
    }

    async fn reseal(
        &self,
        table: &SealedTable,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Resealed, StoreError> {
        let keys = &self.inner.keys;
        self.in_tx(async |tx| reseal::reseal(tx, keys, table, after, limit).await)
            .await
    }

    async fn count_sealed(
        &self,
        table: &SealedTable,
        key: &str,
        under: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.call(PRIMARY, async |c| reseal::count(c, table, key, under).await)
            .await
    }

    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(PRIMARY, async |c| audit::query(c, query).await)
            .await
    }

    async fn audit_prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.in_tx(async |tx| {
            let now = self.now();
            audit::prune(tx, now, before, limit).await
        })
        .await
    }

    async fn audit_verify(&self) -> Result<AuditVerdict, StoreError> {
        let mut walk = audit::Walk::default();
        loop {
            let verdict = self.call(PRIMARY, async |c| walk.step(c).await).await?;
            if let Some(verdict) = verdict {
                return Ok(verdict);
            }
        }
    }

    async fn close(&self) {
        self.inner.claim.lock().await.take();
        self.inner.group.stop();
        if let Some(listener) = self.inner.listener.lock().ok().and_then(|mut l| l.take()) {
            listener.abort();
        }
        self.inner.lists.close();
        self.inner.replica_lists.close();
        self.inner.pool.close();
        if let Some((replica, _)) = &self.inner.replica {
            replica.close();
        }
        tracing::info!("database closed");
    }
}

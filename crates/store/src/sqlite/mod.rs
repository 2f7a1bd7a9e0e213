//! The embedded SQLite engine.
//!
//! One database file in WAL mode. Writes go to a single writer thread that commits them in
//! groups (`writer`); reads take one of a fixed pool of read-only connections on the
//! blocking thread pool, so they never wait behind the writer (WAL readers see the last
//! committed state).
//!
//! The statements themselves are the shared ones of `crate::sql`, run through the
//! synchronous [`Exec`](crate::sql::Exec) of `exec`.
//!
//! Layout: `writer` (the writer thread, group commit), `cache` (records kept after gets,
//! dropped by the writer), `readers` (read connections, each
//! read bounded in time and stopped when its caller goes away), `reads` (lists, totals,
//! expansions, the audit walk), `ddl` (migrations), `schema` (migration methods),
//! `changes` (the change log's), `exec` (parameters and rows), `errors` (`rusqlite` errors
//! into [`StoreError`]), `files` (file modes, the lock file), `options` ([`SqliteOptions`]),
//! `batch` (batch writes), `backup`, and `account_store`, `flag_store`, `file_store` (those
//! traits' methods).

mod account_store;
mod backup;
mod batch;
mod cache;
mod changes;
mod checkpoint;
mod ddl;
mod errors;
mod exec;
mod file_store;
mod files;
mod flag_store;
mod mfa_store;
mod oidc_store;
mod options;
mod readers;
mod reads;
mod recent;
mod schema;
mod session_store;
mod tokens_store;
mod writer;

use crate::backup::{BackupError, Restored, Taken};
use crate::shared::idempotency_scope;
use crate::sql::records::{By, StatusChange};
use crate::sql::{audit, ready, records, reseal, sweep};
use crate::transfer::{Line, TransferError};
use crate::{AuditEntry, AuditEvent, AuditQuery, AuditVerdict, ChangesPage, Resealed, SealedTable};
use crate::{Claim, Created, IdempotencyClaim, Keys, Page, ReadFrom, Store, StoreError, WriteCtx};
use async_trait::async_trait;
use checkpoint::Checkpointer;
pub use options::SqliteOptions;
use plinth_core::Timestamp;
use plinth_core::migrate::Plan;
use plinth_core::{Draft, ListQuery, ListScope, ModelDef, Patch, Record, RecordId, Schema};
use readers::Readers;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use writer::Writer;

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Queue of the writer thread, the only connection that writes (see `writer`).
    writer: writer::Queue,
    /// The read connections.
    readers: Readers,
    /// The schema last migrated to: purge needs it to find references.
    schema: RwLock<Arc<Schema>>,
    /// The lock file held by a [`Claim`], until close (see `files::lock`).
    claim: Mutex<Option<std::fs::File>>,
    /// Opened for reading only: close neither optimises nor checkpoints.
    read_only: bool,
    /// The keys that seal personal data.
    keys: Keys,
    /// Bumped after a write that logged a change commits (see `changes`).
    signal: tokio::sync::watch::Sender<u64>,
    /// The change log's tail, kept by the writer (see `recent`).
    recent: Arc<recent::Recent>,
    /// Records kept after a get, dropped by the writer when written (see `cache`).
    records: Arc<cache::RecordCache>,
}

impl SqliteStore {
    /// Takes the claim of the options, if any, then opens (creating if needed) the database
    /// file and its connections.
    pub async fn open(opts: SqliteOptions) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&opts))
            .await
            .map_err(StoreError::internal)?
    }

    fn open_blocking(opts: &SqliteOptions) -> Result<Self, StoreError> {
        let claim = match opts.claim {
            Some(claim) => {
                files::prepare_dir(&opts.path)?;
                Some(files::lock(&opts.path, claim)?)
            }
            None => None,
        };
        if !opts.read_only {
            files::prepare(&opts.path)?;
        }
        let mut writer = exec::open_conn(&opts.path, opts.busy_timeout, opts.read_only)?;
        if !opts.read_only && opts.upgrade {
            ddl::init_internal(&writer, &opts.keys)?;
        }
        let readers = (0..opts.readers.max(1))
            .map(|_| exec::open_conn(&opts.path, opts.busy_timeout, true))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpointer = Checkpointer::open(&mut writer, opts)?;
        let empty = Schema::from_decls(&[])
            .map_err(|_| StoreError::internal("default schema is invalid"))?;
        let recent = Arc::new(recent::Recent::new(opts.keys.clone()));
        let records = Arc::new(cache::RecordCache::new(opts.record_cache));
        Ok(Self {
            inner: Arc::new(Inner {
                path: opts.path.clone(),
                writer: writer::spawn(
                    writer,
                    checkpointer,
                    Arc::clone(&recent),
                    Arc::clone(&records),
                )?,
                readers: Readers::new(readers, opts.query_timeout),
                schema: RwLock::new(Arc::new(empty)),
                claim: Mutex::new(claim),
                read_only: opts.read_only,
                keys: opts.keys.clone(),
                signal: tokio::sync::watch::channel(0).0,
                recent,
                records,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer thread inside the next group commit; the answer arrives once
    /// that commit is durable. `f` may run more than once (see [`writer::Job`]).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        let (msg, reply) = writer::write_job(f);
        self.send(msg, reply).await
    }

    /// Runs `f` alone on the writer thread, outside any batch (it may manage its own
    /// transaction).
    async fn exclusive<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        let (msg, reply) = writer::exclusive_job(f);
        self.send(msg, reply).await
    }

    async fn send<T>(
        &self,
        msg: writer::Msg,
        reply: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let closed = || StoreError::Unavailable("the database is closed".to_owned());
        self.inner.writer.send(msg).await.map_err(|()| closed())?;
        reply.await.map_err(|_| closed())?
    }

    /// Runs `f` on a read connection, inside the blocking pool, within the time budget.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.readers.read(f).await
    }

    /// Runs a primary-key or unique-index lookup on a read connection, on the calling
    /// thread.
    async fn read_point<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        self.inner.readers.read_point(f).await
    }

    /// What the writer of `ctx` may reference.
    fn visibility(&self, ctx: &WriteCtx) -> crate::shared::Visibility {
        crate::shared::Visibility::of(ctx, self.schema())
    }

    fn schema(&self) -> Arc<Schema> {
        self.inner
            .schema
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn schema_status(&self) -> Result<crate::SchemaStatus, StoreError> {
        self.read(|conn| ready(crate::sql::versions::status(conn)))
            .await
    }

    async fn schema_down(&self, to: u32, allow_destructive: bool) -> Result<Vec<u32>, StoreError> {
        self.exclusive(move |w| ddl::down(&w.conn, to, allow_destructive))
            .await
    }

    fn engine_stats(&self) -> crate::EngineStats {
        self.engine_stats_now()
    }

    async fn recorded(&self) -> Result<Vec<plinth_core::ModelDecl>, StoreError> {
        self.read(ddl::applied).await
    }

    async fn import(&self, schema: &Schema, lines: Vec<Line>) -> Result<(), TransferError> {
        self.import_now(schema, lines).await
    }

    async fn claim(&self, claim: Claim) -> Result<(), StoreError> {
        let file = files::lock(&self.inner.path, claim)?;
        if let Ok(mut held) = self.inner.claim.lock() {
            *held = Some(file);
        }
        Ok(())
    }

    async fn plan(&self, schema: &Schema) -> Result<Plan, StoreError> {
        let schema = schema.clone();
        self.exclusive(move |w| ddl::plan(&w.conn, &schema)).await
    }

    async fn plan_sql(&self, schema: &Schema) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let plan = self.plan(schema).await?;
        Ok(crate::sql::steps::rendered(
            crate::sql::Dialect::Sqlite,
            &plan,
        ))
    }

    async fn migrate(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.migrate_now(schema, allow_destructive).await
    }

    async fn adopt(&self, schema: &Schema) -> Result<Vec<String>, StoreError> {
        self.adopt_now(schema).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(errors::map))
            .await
    }

    async fn create(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        draft: Draft,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Created, StoreError> {
        let model = Arc::clone(model);
        let scope = idempotency_scope(ctx);
        let staged = records::Staged::new(&self.inner.keys, ctx, &model, &draft)?;
        let (vis, ctx) = (self.visibility(ctx), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let now = w.now();
                ready(records::create(
                    &w.conn,
                    By {
                        ctx: &ctx,
                        now,
                        keys: &keys,
                    },
                    &vis,
                    &model,
                    draft.clone(),
                    &staged,
                    idempotency.clone().map(|c| (scope.clone(), c)),
                ))
            })
            .await;
        self.changed(written)
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
        self.get_kept(model, id).await
    }

    async fn list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError> {
        self.list_now(model, query, scope).await
    }
    async fn count(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        _: ReadFrom,
    ) -> Result<u64, StoreError> {
        self.count_now(model, query, scope).await
    }
    async fn explain_list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError> {
        self.explain_now(model, query, scope).await
    }
    async fn get_many(
        &self,
        model: &Arc<ModelDef>,
        ids: &[RecordId],
        _: ReadFrom,
    ) -> Result<Vec<Record>, StoreError> {
        self.get_many_now(model, ids).await
    }

    async fn update(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        patch: Patch,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        let model = Arc::clone(model);
        let (vis, ctx) = (self.visibility(ctx), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let now = w.now();
                ready(records::update(
                    &w.conn,
                    By {
                        ctx: &ctx,
                        now,
                        keys: &keys,
                    },
                    &vis,
                    &model,
                    id,
                    &patch,
                    expected_version,
                ))
            })
            .await;
        self.changed(written)
    }

    async fn delete(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        let (model, ctx) = (Arc::clone(model), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let now = w.now();
                ready(records::set_status(
                    &w.conn,
                    By {
                        ctx: &ctx,
                        now,
                        keys: &keys,
                    },
                    &model,
                    id,
                    StatusChange::Delete,
                    expected_version,
                ))
            })
            .await;
        self.changed(written)
    }

    async fn restore(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Record, StoreError> {
        let (model, ctx) = (Arc::clone(model), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let now = w.now();
                ready(records::set_status(
                    &w.conn,
                    By {
                        ctx: &ctx,
                        now,
                        keys: &keys,
                    },
                    &model,
                    id,
                    StatusChange::Restore,
                    None,
                ))
            })
            .await;
        self.changed(written)
    }

    async fn purge(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let (model, schema, ctx) = (Arc::clone(model), self.schema(), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let now = w.now();
                ready(records::purge(
                    &w.conn,
                    By {
                        ctx: &ctx,
                        now,
                        keys: &keys,
                    },
                    &schema,
                    &model,
                    id,
                    expected_version,
                ))
            })
            .await;
        self.changed(written)
    }

    async fn import_record(&self, model: &Arc<ModelDef>, record: Record) -> Result<(), StoreError> {
        let (model, keys) = (Arc::clone(model), self.inner.keys.clone());
        self.write(move |w| ready(records::insert(&w.conn, &keys, &model, &record, None)))
            .await
    }

    async fn sweep_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |w| ready(sweep::sweep_idempotency(&w.conn, before, limit)))
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
        self.read(move |c| ready(audit::list(c, after_seq, limit)))
            .await
    }

    async fn audit_event(&self, ctx: &WriteCtx, event: AuditEvent) -> Result<(), StoreError> {
        let ctx = ctx.clone();
        let keys = self.inner.keys.clone();
        self.write(move |w| {
            let by = By {
                ctx: &ctx,
                now: w.now(),
                keys: &keys,
            };
            ready(audit::append_event(
                &w.conn,
                by,
                event.event,
                event.target,
                &event.changes,
            ))
        })
        .await
    }

    async fn reseal(
        &self,
        table: &SealedTable,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Resealed, StoreError> {
        let (table, keys) = (table.clone(), self.inner.keys.clone());
        self.write(move |w| ready(reseal::reseal(&w.conn, &keys, &table, after, limit)))
            .await
    }

    async fn count_sealed(
        &self,
        table: &SealedTable,
        key: &str,
        under: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let (table, key) = (table.clone(), key.to_owned());
        self.read(move |c| ready(reseal::count(c, &table, &key, under)))
            .await
    }

    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let query = query.clone();
        self.read(move |c| ready(audit::query(c, &query))).await
    }

    async fn audit_prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |w| {
            let now = w.now();
            ready(audit::prune(&w.conn, now, before, limit))
        })
        .await
    }

    async fn audit_verify(&self) -> Result<AuditVerdict, StoreError> {
        self.audit_verify_now().await
    }

    async fn backup_to(&self, dest: &Path) -> Result<Taken, BackupError> {
        self.take_backup(dest).await
    }

    async fn restore_from(&self, source: &Path, force: bool) -> Result<Restored, BackupError> {
        self.restore_backup(source, force).await
    }

    async fn close(&self) {
        // Stop new reads, then drop the idle readers; then checkpoint and close the writer.
        self.inner.readers.close();
        let read_only = self.inner.read_only;
        let result = self
            .exclusive(move |w| {
                w.close();
                if read_only {
                    return Ok(());
                }
                w.conn
                    .execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(errors::map)
            })
            .await;
        if let Ok(mut held) = self.inner.claim.lock() {
            held.take();
        }
        match result {
            Ok(()) => tracing::info!("database closed"),
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => tracing::warn!(error = %e, "database close reported an error"),
        }
    }
}

#[cfg(test)]
mod tests;

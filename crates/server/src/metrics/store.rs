//! `MeteredStore`: the one place store calls are timed. It wraps the engine's `Store` trait
//! object in `AppState`, so every call site is counted without knowing it.

use super::histogram::Timing;
use async_trait::async_trait;
use plinth_core::migrate::Plan;
use plinth_core::{
    Draft, ListQuery, ListScope, ModelDef, Patch, Record, RecordId, Schema, Timestamp,
};
use plinth_store::backup::{BackupError, Restored, Taken};
use plinth_store::transfer::{Line, TransferError};
use plinth_store::{
    AuditEntry, AuditEvent, AuditQuery, AuditVerdict, ChangeWindow, ChangesPage, Claim, Created,
    EngineStats, IdempotencyClaim, Page, ReadFrom, Resealed, SealedTable, Store, StoreError,
    WriteCtx,
};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

macro_rules! ops {
    ($($op:ident = $name:literal,)*) => {
        /// A store operation: one per method of `Store` and `AccountStore` that reaches the
        /// database.
        #[derive(Debug, Clone, Copy)]
        pub(super) enum Op { $($op,)* }
        /// The `operation` label of each [`Op`], in order.
        const NAMES: &[&str] = &[$($name,)*];
    };
}

ops! {
    Claim = "claim", Recorded = "recorded", Import = "import", Plan = "plan",
    Migrate = "migrate", Ping = "ping", Create = "create", Get = "get", List = "list",
    Count = "count", GetMany = "get_many",
    Update = "update", Delete = "delete", Restore = "restore", Purge = "purge",
    ImportRecord = "import_record", SweepIdempotency = "sweep_idempotency",
    AuditList = "audit_list", AuditEvent = "audit_event", AuditQuery = "audit_query",
    AuditVerify = "audit_verify", AuditPrune = "audit_prune", Reseal = "reseal",
    CountSealed = "count_sealed", CreateUser = "create_user", GetUser = "get_user",
    FindUserByEmail = "find_user_by_email", ListUsers = "list_users",
    UpdateUser = "update_user", DeleteUser = "delete_user", CountAdmins = "count_admins",
    InsertRefresh = "insert_refresh", RotateRefresh = "rotate_refresh",
    SweepRefresh = "sweep_refresh", RevokeRefreshFamily = "revoke_refresh_family",
    RefreshFamilyOf = "refresh_family_of", RefreshFamilyLive = "refresh_family_live",
    CreateApiKey = "create_api_key", FindApiKey = "find_api_key",
    ListApiKeys = "list_api_keys", RevokeApiKey = "revoke_api_key",
    TouchApiKey = "touch_api_key", ImportUser = "import_user", BackupTo = "backup_to",
    RestoreFrom = "restore_from", CreateFlag = "create_flag", ListFlags = "list_flags",
    GetFlag = "get_flag", UpdateFlag = "update_flag", DeleteFlag = "delete_flag",
    ChangesAfter = "changes_after", ChangeWindow = "change_window",
    PruneChanges = "prune_changes", FilesOf = "files_of", File = "file",
    FileInUse = "file_in_use", Batch = "batch",
    GetTotp = "get_totp", BeginTotp = "begin_totp", ConfirmTotp = "confirm_totp",
    SpendTotpStep = "spend_totp_step", SpendRecoveryCode = "spend_recovery_code",
    ReplaceRecoveryCodes = "replace_recovery_codes", RecoveryCodesLeft = "recovery_codes_left",
    DisableTotp = "disable_totp", InsertMfaToken = "insert_mfa_token",
    FindMfaToken = "find_mfa_token", SpendMfaToken = "spend_mfa_token",
    SignUp = "sign_up", IssueAccountToken = "issue_account_token",
    RedeemAccountToken = "redeem_account_token", SweepAccountTokens = "sweep_account_tokens",
    ListSessions = "list_sessions", RevokeSession = "revoke_session",
    RevokeSessions = "revoke_sessions",
}

/// A label set of one label.
type One = [(&'static str, &'static str); 1];

/// `store_operation_duration_seconds{operation}`: a histogram per operation, each made at
/// start so a call only indexes an array.
#[derive(Debug, Clone)]
pub(super) struct StoreOps(Arc<[Timing]>);

impl StoreOps {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<One, Timing>::default();
        let handles = NAMES
            .iter()
            .map(|name| family.get_or_create(&[("operation", *name)]).clone())
            .collect();
        registry.register(
            "store_operation_duration_seconds",
            "Time of each store call, by operation, failures included",
            family,
        );
        Self(handles)
    }

    pub(super) async fn time<T>(&self, op: Op, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        if let Some(h) = self.0.get(op as usize) {
            h.observe(started.elapsed());
        }
        out
    }

    /// As [`StoreOps::time`], for the calls every read makes: the inner store's boxed
    /// future wrapped in a plain one, without an async block of its own around it.
    fn timed<'a, T: 'a>(&'a self, op: Op, call: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        Box::pin(Timed {
            call,
            started: Instant::now(),
            timing: self.0.get(op as usize),
        })
    }
}

/// A boxed future of the `Store` trait's methods.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store call that observes its time into `timing` when it completes.
struct Timed<'a, T> {
    call: BoxFuture<'a, T>,
    started: Instant,
    timing: Option<&'a Timing>,
}

impl<T> Future for Timed<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let out = std::task::ready!(this.call.as_mut().poll(cx));
        if let Some(h) = this.timing {
            h.observe(this.started.elapsed());
        }
        Poll::Ready(out)
    }
}

/// A `Store` that times every call of the store it wraps.
#[derive(Debug)]
pub(crate) struct MeteredStore {
    pub(super) inner: Arc<dyn Store>,
    pub(super) ops: StoreOps,
}

impl MeteredStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: &super::Metrics) -> Self {
        Self {
            inner,
            ops: metrics.store.clone(),
        }
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn claim(&self, claim: Claim) -> Result<(), StoreError> {
        self.ops.time(Op::Claim, self.inner.claim(claim)).await
    }
    async fn schema_status(&self) -> Result<plinth_store::SchemaStatus, StoreError> {
        self.inner.schema_status().await
    }
    async fn schema_down(&self, to: u32, allow_destructive: bool) -> Result<Vec<u32>, StoreError> {
        self.inner.schema_down(to, allow_destructive).await
    }
    async fn recorded(&self) -> Result<Vec<plinth_core::ModelDecl>, StoreError> {
        self.ops.time(Op::Recorded, self.inner.recorded()).await
    }
    async fn import(&self, schema: &Schema, lines: Vec<Line>) -> Result<(), TransferError> {
        self.ops
            .time(Op::Import, self.inner.import(schema, lines))
            .await
    }
    async fn plan(&self, schema: &Schema) -> Result<Plan, StoreError> {
        self.ops.time(Op::Plan, self.inner.plan(schema)).await
    }
    async fn plan_sql(&self, schema: &Schema) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.ops.time(Op::Plan, self.inner.plan_sql(schema)).await
    }
    async fn migrate(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        let call = self.inner.migrate(schema, allow_destructive);
        self.ops.time(Op::Migrate, call).await
    }
    async fn adopt(&self, schema: &Schema) -> Result<Vec<String>, StoreError> {
        self.ops.time(Op::Migrate, self.inner.adopt(schema)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.ops.time(Op::Ping, self.inner.ping()).await
    }
    async fn backup_to(&self, dest: &Path) -> Result<Taken, BackupError> {
        self.ops
            .time(Op::BackupTo, self.inner.backup_to(dest))
            .await
    }
    async fn restore_from(&self, source: &Path, force: bool) -> Result<Restored, BackupError> {
        let call = self.inner.restore_from(source, force);
        self.ops.time(Op::RestoreFrom, call).await
    }
    async fn create(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        draft: Draft,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Created, StoreError> {
        let call = self.inner.create(ctx, model, draft, idempotency);
        self.ops.time(Op::Create, call).await
    }
    async fn batch(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        ops: Vec<plinth_store::BatchOp>,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<plinth_store::Batched, StoreError> {
        let call = self.inner.batch(ctx, model, ops, idempotency);
        self.ops.time(Op::Batch, call).await
    }
    // Gets by id, the cheapest calls, are timed without an async block of their own (see
    // `StoreOps::timed`): the signatures are those `async_trait` makes.
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        model: &'life1 Arc<ModelDef>,
        id: RecordId,
    ) -> BoxFuture<'async_trait, Result<Option<Record>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.ops.timed(Op::Get, self.inner.get(model, id))
    }
    fn get_from<'life0, 'life1, 'async_trait>(
        &'life0 self,
        model: &'life1 Arc<ModelDef>,
        id: RecordId,
        from: ReadFrom,
    ) -> BoxFuture<'async_trait, Result<Option<Record>, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.ops
            .timed(Op::Get, self.inner.get_from(model, id, from))
    }
    async fn list_from(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<Page, StoreError> {
        let call = self.inner.list_from(model, query, scope, from);
        self.ops.time(Op::List, call).await
    }
    async fn count(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<u64, StoreError> {
        let call = self.inner.count(model, query, scope, from);
        self.ops.time(Op::Count, call).await
    }
    /// Not an operation the API runs: unmetered.
    async fn explain_list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.explain_list(model, query, scope).await
    }
    async fn get_many(
        &self,
        model: &Arc<ModelDef>,
        ids: &[RecordId],
        from: ReadFrom,
    ) -> Result<Vec<Record>, StoreError> {
        let call = self.inner.get_many(model, ids, from);
        self.ops.time(Op::GetMany, call).await
    }
    fn invalidations(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<plinth_store::Invalidation>> {
        self.inner.invalidations()
    }
    fn has_read_replica(&self) -> bool {
        self.inner.has_read_replica()
    }
    fn engine_stats(&self) -> EngineStats {
        self.inner.engine_stats()
    }
    async fn list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError> {
        self.ops
            .time(Op::List, self.inner.list(model, query, scope))
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
        let call = self.inner.update(ctx, model, id, patch, expected_version);
        self.ops.time(Op::Update, call).await
    }
    async fn delete(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError> {
        let call = self.inner.delete(ctx, model, id, expected_version);
        self.ops.time(Op::Delete, call).await
    }
    async fn restore(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Record, StoreError> {
        self.ops
            .time(Op::Restore, self.inner.restore(ctx, model, id))
            .await
    }
    async fn purge(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let call = self.inner.purge(ctx, model, id, expected_version);
        self.ops.time(Op::Purge, call).await
    }
    async fn import_record(&self, model: &Arc<ModelDef>, record: Record) -> Result<(), StoreError> {
        let call = self.inner.import_record(model, record);
        self.ops.time(Op::ImportRecord, call).await
    }
    async fn sweep_idempotency(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let call = self.inner.sweep_idempotency(before, limit);
        self.ops.time(Op::SweepIdempotency, call).await
    }
    async fn changes_after(&self, after: i64, limit: u32) -> Result<ChangesPage, StoreError> {
        let call = self.inner.changes_after(after, limit);
        self.ops.time(Op::ChangesAfter, call).await
    }
    async fn change_window(&self) -> Result<ChangeWindow, StoreError> {
        self.ops
            .time(Op::ChangeWindow, self.inner.change_window())
            .await
    }
    async fn prune_changes(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let call = self.inner.prune_changes(before, limit);
        self.ops.time(Op::PruneChanges, call).await
    }
    fn change_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.change_signal()
    }
    async fn audit_list(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let call = self.inner.audit_list(after_seq, limit);
        self.ops.time(Op::AuditList, call).await
    }
    async fn audit_event(&self, ctx: &WriteCtx, event: AuditEvent) -> Result<(), StoreError> {
        let call = self.inner.audit_event(ctx, event);
        self.ops.time(Op::AuditEvent, call).await
    }
    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.ops
            .time(Op::AuditQuery, self.inner.audit_query(query))
            .await
    }
    async fn audit_verify(&self) -> Result<AuditVerdict, StoreError> {
        self.ops
            .time(Op::AuditVerify, self.inner.audit_verify())
            .await
    }
    async fn audit_prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let call = self.inner.audit_prune(before, limit);
        self.ops.time(Op::AuditPrune, call).await
    }
    async fn reseal(
        &self,
        table: &SealedTable,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Resealed, StoreError> {
        let call = self.inner.reseal(table, after, limit);
        self.ops.time(Op::Reseal, call).await
    }
    async fn count_sealed(
        &self,
        table: &SealedTable,
        key: &str,
        under: bool,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let call = self.inner.count_sealed(table, key, under);
        self.ops.time(Op::CountSealed, call).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

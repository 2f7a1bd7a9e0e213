//! Storage for Plinth: the [`Store`] trait every engine implements, and the embedded SQLite
//! engine.
//!
//! Layout:
//! - [`accounts`]: [`AccountStore`]: users, refresh-token families, API keys.
//! - [`batch`]: [`BatchOp`] and [`Batched`], the writes of [`Store::batch`].
//! - [`backup`]: `plinth backup` / `plinth restore`: an exact copy of one database, its
//!   formats, checksum and checks.
//! - [`audit`]: the audit trail's entries ([`AuditEntry`]) and how a chain check ends
//!   ([`AuditVerdict`]).
//! - [`changes`]: the change log the realtime feed reads ([`Change`], [`ChangeWindow`]):
//!   one row per record write, with its audit entry's `seq`.
//! - [`files`]: [`FileStore`]: which record holds which uploaded file (`_plinth_files`).
//! - [`flags`]: [`FlagStore`]: feature flags in `_plinth_flags`.
//! - [`mfa`]: [`MfaStore`]: TOTP secrets (sealed), recovery codes and second-step sign-in
//!   tokens (digests).
//! - [`error`]: [`StoreError`], the only error type that leaves this crate.
//! - `gate` (private): `ListGate`, how many record lists (and pattern lists) may hold read
//!   connections at once, so gets always find one.
//! - [`postgres`]: [`PgStore`], a connection pool over a PostgreSQL database shared by any
//!   number of instances.
//! - [`sessions`]: [`SessionStore`]: an account's live sessions, listed and ended.
//! - [`seal`]: [`Keyring`] and [`Keys`]: sealing of personal data (AES-256-GCM) and its
//!   blind indexes (HMAC-SHA-256).
//! - `sql` (private): every statement and its outcome logic, written once for both engines
//!   over a small per-engine adapter (`sql::Exec`).
//! - [`tokens`]: [`AccountTokenStore`]: one-time account tokens (verification, reset,
//!   email change), spent in the transaction that applies them.
//! - [`stats`]: [`EngineStats`], what an engine reports for monitoring (the SQLite
//!   writer's queue and batches, the PostgreSQL pool).
//! - [`transfer`]: `plinth export` / `plinth import`: every model and user as JSON lines.
//! - [`sqlite`]: [`SqliteStore`], one writer connection and a pool of readers over a WAL
//!   database file.
//!
//! API boundary: callers pass validated domain types from `plinth-core` (a [`Draft`], a
//! [`Patch`], a [`ListQuery`]) and get [`Record`]s back. No SQL, driver type or driver
//! error crosses this boundary.

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod changes;
pub mod error;
pub mod files;
pub mod flags;
mod gate;
pub mod mfa;
pub mod oidc;
pub mod postgres;
pub mod seal;
pub mod sessions;
mod shared;
mod sql;
pub mod sqlite;
pub mod stats;
pub mod tokens;
pub mod transfer;
pub mod versions;

pub use accounts::{AccountStore, ApiKey, NewApiKey, NewUser, Refresh, User, UserChanges};
pub use audit::{AuditBreak, AuditEntry, AuditEvent, AuditQuery, AuditVerdict, Event};
pub use batch::{BatchOp, Batched};
pub use changes::{Change, ChangeKind, ChangeWindow, ChangesPage};
pub use error::StoreError;
pub use files::{FileStore, NewFile, StoredFile};
pub use flags::{FlagStore, FlagVersion, NewFlag};
pub use mfa::{MfaStore, RecoveryCode, TotpState};
pub use oidc::{OidcIdentity, OidcOutcome, OidcRefusal, OidcSignIn, OidcStore, PendingOidcLogin};
pub use postgres::{PgOptions, PgStore};
pub use seal::{KeyError, Keyring, Keys, SealedTable};
pub use sessions::{Session, SessionStore};
pub use sql::reseal::Resealed;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use stats::EngineStats;
pub use tokens::{AccountTokenStore, NewAccountToken, TokenPurpose, TokenUse};
pub use versions::{SchemaStatus, SchemaVersion};

use async_trait::async_trait;
use plinth_core::migrate::Plan;
use plinth_core::{
    Draft, ListQuery, ListScope, ModelDef, Patch, Principal, Record, RecordId, Schema,
};
use std::sync::Arc;

/// What another instance changed, as its notice says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Accounts or API keys: cached credentials are stale.
    Credentials,
    /// Feature flags: the flags held in memory are stale.
    Flags,
    /// Anything (notices may have been missed): drop every copy.
    All,
}

impl Invalidation {
    /// Whether cached credentials must go.
    pub fn credentials(self) -> bool {
        matches!(self, Self::Credentials | Self::All)
    }

    /// Whether the flags held in memory must be loaded again.
    pub fn flags(self) -> bool {
        matches!(self, Self::Flags | Self::All)
    }
}

/// Where a read may be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The primary: what this client just wrote is there.
    Primary,
    /// A read replica, if one is configured (may lag the primary slightly).
    Replica,
}

/// How a process uses a database, claimed with [`Store::claim`] for as long as the store
/// stays open (the process's life): a schema change (or a restore) must not run under a
/// server, whose statements assume the schema it migrated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// `plinth serve`. On SQLite one server at a time; on PostgreSQL any number of
    /// instances together (each holds a shared lock), none beside a `Maintain` claim.
    Serve,
    /// `plinth migrate`, `plinth import` or `plinth restore`: alone, no server and no other
    /// maintenance.
    Maintain,
}

/// Who is writing, and under which request; passed to every write so the audit trail can
/// be written in the same transaction as the change.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// The acting principal.
    pub actor: Principal,
    /// The request id, for correlating audit entries and logs.
    pub request_id: String,
    /// The client's address, when the write came over the network.
    pub client_addr: Option<String>,
    /// Whether the actor authenticated with an API key (the audit trail says so).
    pub via_api_key: bool,
    /// The client's `User-Agent`, already cleaned (bounded, no control characters): kept
    /// with the refresh tokens a login or a refresh stores, so a user can tell their
    /// sessions apart. `None` elsewhere.
    pub user_agent: Option<String>,
    /// Files uploaded with this write (already in file storage), which the written record's
    /// file fields name: their rows are added in the write's transaction.
    pub files: Vec<NewFile>,
}

impl WriteCtx {
    /// A write by `actor` under `request_id`, not over the network and not with an API key.
    pub fn new(actor: Principal, request_id: impl Into<String>) -> Self {
        Self {
            actor,
            request_id: request_id.into(),
            client_addr: None,
            via_api_key: false,
            user_agent: None,
            files: Vec::new(),
        }
    }
}

/// A client's `Idempotency-Key` on a create, scoped to the principal and the model.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    /// The key as sent.
    pub key: String,
    /// A digest of the request body: the same key with another body is a conflict.
    pub body_digest: String,
}

/// The result of a create.
#[derive(Debug, Clone)]
pub struct Created {
    /// The record (for a replay, as it is now).
    pub record: Record,
    /// True when an earlier request with the same idempotency key made the record.
    pub replayed: bool,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Records in sort order.
    pub records: Vec<Record>,
    /// Whether more records follow the last one.
    pub has_more: bool,
    /// The relevance of the last record, in a list sorted by relevance (its cursor's).
    pub rank: Option<f64>,
}

/// A storage engine.
///
/// Writes are serialised per database; reads never wait behind a writer. Every write bumps
/// `version` by exactly one and sets `updated_at`; `expected_version` (from `If-Match`)
/// makes a write conditional.
#[async_trait]
pub trait Store:
    AccountStore
    + AccountTokenStore
    + SessionStore
    + MfaStore
    + OidcStore
    + FlagStore
    + FileStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Claims the database for `claim` until the store is closed, or refuses with
    /// [`StoreError::InUse`] when another process's claim excludes it. On PostgreSQL, a
    /// server's own start migration then applies destructive steps only while no other
    /// instance runs.
    async fn claim(&self, claim: Claim) -> Result<(), StoreError>;
    /// The model declarations the last migration recorded (none on a new database).
    async fn recorded(&self) -> Result<Vec<plinth_core::ModelDecl>, StoreError>;
    /// `plinth import`, in one transaction: migrates to `schema` (refusing steps that lose
    /// data), refuses a database holding users or records, and inserts `lines`. Any
    /// failure leaves the database as it was.
    async fn import(
        &self,
        schema: &Schema,
        lines: Vec<transfer::Line>,
    ) -> Result<(), transfer::TransferError>;
    /// The versions of Plinth's own tables: which this binary knows, which are applied.
    async fn schema_status(&self) -> Result<versions::SchemaStatus, StoreError>;
    /// Rolls Plinth's own tables back to version `to`, one transaction per version from the
    /// top (for an older binary; this one re-applies them when it next opens the database).
    /// Refuses downs that lose data unless allowed. Returns the versions rolled back.
    async fn schema_down(&self, to: u32, allow_destructive: bool) -> Result<Vec<u32>, StoreError>;
    /// Plans the migration from the schema recorded in the database to `schema`.
    async fn plan(&self, schema: &Schema) -> Result<Plan, StoreError>;
    /// The same plan as each step's description with the SQL statements `migrate` runs for
    /// it, in this engine's dialect (none for a step refused whatever the data).
    async fn plan_sql(&self, schema: &Schema) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// Brings the database to `schema` in one transaction; refuses destructive steps unless
    /// allowed. Returns the steps applied.
    async fn migrate(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError>;
    /// Serves `schema` without migrating when the database holds everything it declares
    /// and more ([`Plan::only_drops`]): nothing in the database changes, the undeclared
    /// columns and tables are kept and unseen here. Returns the steps a migration would
    /// have taken; refused, like [`Store::migrate`] without `allow_destructive`, when the
    /// plan does anything else.
    async fn adopt(&self, schema: &Schema) -> Result<Vec<String>, StoreError>;
    /// Checks that the database answers, and that a claim taken is still held (on
    /// PostgreSQL a lost claim connection is re-taken; until then this fails).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Inserts a record owned by the acting user.
    async fn create(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        draft: Draft,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Created, StoreError>;
    /// Applies `ops` in order in one transaction, all or nothing, or replays the batch an
    /// earlier request with the same idempotency key wrote. Each op is authorised against
    /// the record read locked inside the transaction; the first that fails fails the batch
    /// with [`StoreError::Item`].
    async fn batch(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        ops: Vec<BatchOp>,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Batched, StoreError>;
    /// Reads one record, whatever its status.
    async fn get(&self, model: &Arc<ModelDef>, id: RecordId) -> Result<Option<Record>, StoreError>;
    /// Reads one record, from a read replica when the engine has one and `from` allows it.
    async fn get_from(
        &self,
        model: &Arc<ModelDef>,
        id: RecordId,
        from: ReadFrom,
    ) -> Result<Option<Record>, StoreError> {
        let _ = from;
        self.get(model, id).await
    }
    /// Reads one page, from a read replica when the engine has one and `from` allows it.
    async fn list_from(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<Page, StoreError> {
        let _ = from;
        self.list(model, query, scope).await
    }
    /// Notices that accounts, keys or flags changed through another instance, so in-process
    /// copies must be dropped; `None` when no other instance can share the database
    /// (SQLite). [`Invalidation::All`] is also sent after the listener reconnects, since
    /// notices may have been missed meanwhile.
    fn invalidations(&self) -> Option<tokio::sync::broadcast::Receiver<Invalidation>> {
        None
    }
    /// Whether reads may be served by a replica (then callers track read-your-own-writes).
    fn has_read_replica(&self) -> bool {
        false
    }
    /// The engine's figures for monitoring, now (cheap: no I/O).
    fn engine_stats(&self) -> EngineStats {
        EngineStats::default()
    }
    /// Reads one page.
    async fn list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError>;
    /// The query plans of the statements [`Store::list`] runs for the same arguments (a
    /// second one, where a page has it, after a line `then, while the page is short:`), one
    /// line per plan node in the engine's words (SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's
    /// `EXPLAIN`), read on the primary: which index a list uses (`plinth bench --scale`).
    async fn explain_list(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError>;
    /// How many records the list of `query` holds over all its pages: the same status,
    /// filters and `scope`, its cursor and limit aside (one `COUNT` over every match).
    async fn count(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
        from: ReadFrom,
    ) -> Result<u64, StoreError>;
    /// The records of `model` among `ids`, whatever their status, in no particular order,
    /// read in one statement; an id with no record is left out.
    async fn get_many(
        &self,
        model: &Arc<ModelDef>,
        ids: &[RecordId],
        from: ReadFrom,
    ) -> Result<Vec<Record>, StoreError>;
    /// Applies a patch (a PUT is a patch that sets everything) to a record that is not
    /// deleted.
    async fn update(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        patch: Patch,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError>;
    /// Soft delete: status becomes `deleted`.
    async fn delete(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<Record, StoreError>;
    /// Undoes a soft delete: status becomes `active`.
    async fn restore(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Record, StoreError>;
    /// Removes a record for good; refused while other records reference it.
    async fn purge(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        id: RecordId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Inserts a record exactly as given (id, times, owner, version, status): for `plinth
    /// import`, never for API writes.
    async fn import_record(&self, model: &Arc<ModelDef>, record: Record) -> Result<(), StoreError>;
    /// Deletes up to `limit` idempotency keys created before `before`; returns how many.
    async fn sweep_idempotency(
        &self,
        before: plinth_core::Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Audit entries after `after_seq` (0: from the first), at most `limit`, in `seq` order.
    async fn audit_list(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// Changes after `after` (0: from the oldest kept), reading at most `limit` rows, in `seq`
    /// order, always from the primary. Changes to models no longer declared are skipped,
    /// but counted in the page's `through` and `full`.
    async fn changes_after(&self, after: i64, limit: u32) -> Result<ChangesPage, StoreError>;
    /// Where the change log stands: the highest `seq` pruned and the trail's head.
    async fn change_window(&self) -> Result<ChangeWindow, StoreError>;
    /// Removes up to `limit` of the oldest changes made before `before` (one transaction),
    /// raising [`ChangeWindow::pruned_through`]; returns how many.
    async fn prune_changes(
        &self,
        before: plinth_core::Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Bumped once for each change this process commits, and when another instance says it
    /// did (on PostgreSQL, through the notice channel, which also carries this process's
    /// own notices once the write has committed, while it listens; also after the listener
    /// reconnects, since notices may have been missed): the change feed's cue to read the
    /// log. On SQLite, and on PostgreSQL while not listening, it is bumped before the write
    /// returns.
    fn change_signal(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Appends an event that goes with no write (a failed or throttled login) in a
    /// transaction of its own.
    async fn audit_event(&self, ctx: &WriteCtx, event: AuditEvent) -> Result<(), StoreError>;
    /// Audit entries matching `query`'s filters, one page in its order.
    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// Walks the audit chain from its newest checkpoint (or its first entry): how many
    /// entries it holds, or the first one whose sequence, link or hash is broken, or a
    /// checkpoint that does not match the entry that sealed it.
    async fn audit_verify(&self) -> Result<AuditVerdict, StoreError>;
    /// Removes up to `limit` of the oldest audit entries made before `before`, behind a
    /// sealed checkpoint (one transaction); returns how many.
    async fn audit_prune(
        &self,
        before: plinth_core::Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Seals again under the active key the values of up to `limit` rows of `table` after
    /// the row `after` (by id) that are sealed under another key, in one transaction; a row
    /// changed meanwhile is skipped (compare-and-set on the sealed text read).
    async fn reseal(
        &self,
        table: &SealedTable,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Resealed, StoreError>;
    /// How many values of each column of `table` are sealed under `key` (`under`), or under
    /// another key than `key` (`!under`), by their prefix; columns with none are left out.
    async fn count_sealed(
        &self,
        table: &SealedTable,
        key: &str,
        under: bool,
    ) -> Result<Vec<(String, u64)>, StoreError>;
    /// Takes a backup into `dest` (which must not exist; nor its `.sha256` sidecar): one
    /// committed state, taken beside running servers and their writes (see [`backup`]).
    async fn backup_to(&self, dest: &std::path::Path)
    -> Result<backup::Taken, backup::BackupError>;
    /// Replaces the database's contents with the backup at `source`, after checking its
    /// checksum, format and schema version; refused when the database holds data, unless
    /// `force`. Run under [`Claim::Maintain`]: nothing else may use the database meanwhile.
    async fn restore_from(
        &self,
        source: &std::path::Path,
        force: bool,
    ) -> Result<backup::Restored, backup::BackupError>;
    /// Flushes and closes the database; later calls fail with `Unavailable`.
    async fn close(&self);
}

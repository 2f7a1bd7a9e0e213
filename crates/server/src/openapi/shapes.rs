//! Shapes the handlers read or write by hand (field by field through `BodyFields`, or with
//! a hand-written `Serialize`), declared here for the document only. Each names the code it
//! describes; `tests/it/openapi.rs` checks real answers against them.
#![allow(
    dead_code,
    reason = "these types are never built: only their schemas are used"
)]

use utoipa::ToSchema;

/// The placeholder for a declared model's record in the template paths; each model's own
/// schema replaces it (`openapi::models`).
#[derive(ToSchema)]
pub(crate) struct Record {}

/// The placeholder for a declared model's record as a list or read answers it (`fields`
/// may leave keys out, `expand` may inline a referenced record).
#[derive(ToSchema)]
pub(crate) struct Shaped {}

/// The placeholder for a declared model's create or PUT body.
#[derive(ToSchema)]
pub(crate) struct RecordInput {}

/// The placeholder for a declared model's PATCH body.
#[derive(ToSchema)]
pub(crate) struct RecordPatch {}

/// The placeholder for a declared model's `multipart/form-data` body (uploads).
#[derive(ToSchema)]
pub(crate) struct RecordUpload {}

/// A batch write's body (`routes::records::batch`).
#[derive(ToSchema)]
pub(crate) struct BatchRequest {
    /// The writes, applied in order in one transaction.
    #[schema(inline, min_items = 1, max_items = 1000)]
    items: Vec<BatchItem>,
}

/// One write of a batch, by its `op`: `update` changes only the fields in `data` (a PATCH),
/// `replace` sets every one (a PUT), `delete` is a soft delete. `if_match` is `*` or one
/// `ETag` (`"3"`, quotes included).
#[derive(ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum BatchItem {
    /// Creates a record.
    Create {
        /// The record's fields.
        data: RecordInput,
    },
    /// Changes the fields given.
    Update {
        /// The record's id.
        #[schema(format = "uuid")]
        id: String,
        /// The fields to change.
        data: RecordPatch,
        if_match: Option<String>,
    },
    /// Sets every client-settable field.
    Replace {
        /// The record's id.
        #[schema(format = "uuid")]
        id: String,
        /// The record's fields.
        data: RecordInput,
        if_match: Option<String>,
    },
    /// Soft-deletes the record.
    Delete {
        /// The record's id.
        #[schema(format = "uuid")]
        id: String,
        if_match: Option<String>,
    },
}

/// `/healthz` and `/readyz` (`routes::health`).
#[derive(ToSchema)]
pub(crate) struct Health {
    /// `ok` (alive) or `ready`.
    #[schema(pattern = "^(ok|ready)$")]
    status: String,
    /// Seconds since the server started (`/readyz` only).
    uptime_seconds: Option<u64>,
}

/// `/api/v1/version` (`routes::meta`).
#[derive(ToSchema)]
pub(crate) struct Version {
    /// Always `plinth`.
    name: String,
    /// The build's version.
    version: String,
    /// The API's version, `v1`.
    api: String,
}

/// One entry of `GET /api/v1/models` (`routes::meta::list_models`).
#[derive(ToSchema)]
pub(crate) struct ModelInfo {
    /// The model's name: `/api/v1/{name}`.
    name: String,
    /// Whether guests may read it.
    guest_read: bool,
    /// Which records users read: `all` or `own`.
    user_read: String,
    /// Whether a refused read answers 404 rather than 403.
    hide_forbidden: bool,
    /// Whether it has a `searchable` field (so lists take `q`).
    searchable: bool,
    /// The declared fields, as `plinth.toml` declares them (models.md): `name`, `type` and
    /// each constraint given. The base fields are not listed.
    #[schema(value_type = Vec<Object>)]
    fields: Vec<()>,
    /// What the caller may attempt.
    #[schema(inline)]
    can: ModelCan,
}

/// What the caller may attempt on a model (a user's `update` and `delete`: their own
/// records).
#[derive(ToSchema)]
pub(crate) struct ModelCan {
    read: bool,
    create: bool,
    update: bool,
    delete: bool,
    restore: bool,
    purge: bool,
}

/// `POST /api/v1/auth/login` (`routes::auth::session::login`).
#[derive(ToSchema)]
pub(crate) struct Login {
    /// The account's email (at most 254 bytes).
    email: String,
    password: String,
}

/// `POST /api/v1/auth/login/mfa` (`routes::auth::mfa_login`).
#[derive(ToSchema)]
pub(crate) struct MfaLogin {
    /// The `mfa_token` the first step answered.
    mfa_token: String,
    /// A current TOTP code (six digits) or an unused recovery code.
    code: String,
}

/// `POST /api/v1/auth/mfa/totp/confirm`.
#[derive(ToSchema)]
pub(crate) struct MfaConfirm {
    /// The current code of the new secret (six digits).
    code: String,
}

/// `DELETE /api/v1/auth/mfa/totp` and `POST /api/v1/auth/mfa/recovery-codes`.
#[derive(ToSchema)]
pub(crate) struct MfaProof {
    /// The account's password.
    password: String,
    /// A current TOTP code or an unused recovery code.
    code: String,
}

/// `POST /api/v1/auth/refresh` and `/logout`.
#[derive(ToSchema)]
pub(crate) struct RefreshToken {
    /// A refresh token from a login or a refresh.
    refresh_token: String,
}

/// `PATCH /api/v1/auth/me`: a new password, proven by the current one.
#[derive(ToSchema)]
pub(crate) struct PasswordChange {
    current_password: String,
    /// At least 12 characters, not the email.
    new_password: String,
}

/// `POST /api/v1/auth/api-keys`.
#[derive(ToSchema)]
pub(crate) struct NewKey {
    /// 1 to 100 printable characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// At most the creator's and the owner's role; by default the lower of the two.
    #[schema(nullable = false)]
    role: Option<Role>,
    /// When the key stops working (RFC 3339, in the future); with a maximum lifetime set,
    /// at most that far ahead, and that far by default.
    #[schema(format = DateTime, nullable = false)]
    expires_at: Option<String>,
    /// Admins only: the account the key acts as.
    #[schema(format = "uuid", nullable = false)]
    user_id: Option<String>,
}

/// `POST /api/v1/users`.
#[derive(ToSchema)]
pub(crate) struct NewUser {
    #[schema(format = Email)]
    email: String,
    /// At least 12 characters, not the email.
    password: String,
    /// `user` unless given.
    #[schema(nullable = false)]
    role: Option<Role>,
}

/// `PATCH /api/v1/users/{id}`: only the keys sent change.
#[derive(ToSchema)]
pub(crate) struct UserChange {
    #[schema(format = Email, nullable = false)]
    email: Option<String>,
    #[schema(nullable = false)]
    password: Option<String>,
    #[schema(nullable = false)]
    role: Option<Role>,
}

/// An account's role.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum Role {
    Admin,
    User,
}

/// One audit entry, as `audit::AuditJson` writes it.
#[derive(ToSchema)]
pub(crate) struct AuditEntry {
    /// Position in the one order of entries: 1, 2, 3, … without gaps.
    seq: i64,
    #[schema(format = DateTime)]
    at: String,
    actor: AuditActor,
    /// `record.create`, `record.update`, `auth.login`, `account.create`, …
    action: String,
    target: AuditTarget,
    request_id: String,
    /// The client's address (admins only).
    client_addr: Option<String>,
    /// `{"field": {"from": …, "to": …}}`; pii values and emails are `REDACTED`.
    #[schema(value_type = Object)]
    changes: serde_json::Value,
    /// The previous entry's hash (empty for the first).
    prev_hash: String,
    hash: String,
}

/// Who made an audited write.
#[derive(ToSchema)]
pub(crate) struct AuditActor {
    /// `user`, `api_key`, `system` or `guest`.
    kind: String,
    #[schema(format = "uuid")]
    id: Option<String>,
    /// The actor's role: `admin`, `user`, `local admin` or `guest`.
    label: String,
}

/// What an audited write touched.
#[derive(ToSchema)]
pub(crate) struct AuditTarget {
    model: Option<String>,
    #[schema(format = "uuid")]
    id: Option<String>,
}

/// `POST /api/v1/flags` (`routes::flags`, read field by field).
#[derive(ToSchema)]
pub(crate) struct NewFlag {
    /// 1 to 64 lowercase letters and digits, in words joined by single `-`, `_` or `.`,
    /// starting with a letter; not `evaluate`.
    #[schema(pattern = "^[a-z][a-z0-9]*([-_.][a-z0-9]+)*$", max_length = 64)]
    key: String,
    #[schema(max_length = 1000, nullable = false)]
    description: Option<String>,
    /// False unless given.
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// 0 to 100 with two decimals at most; 0 unless given.
    #[schema(minimum = 0, maximum = 100, nullable = false)]
    rollout: Option<f64>,
    /// `user:<uuid>`, `role:admin`, `role:user` or `api_key:<uuid>` entries.
    #[schema(max_items = 1000, nullable = false)]
    allow: Option<Vec<String>>,
    /// The same kinds of entries.
    #[schema(max_items = 1000, nullable = false)]
    deny: Option<Vec<String>>,
    #[schema(format = DateTime)]
    on_from: Option<String>,
    #[schema(format = DateTime)]
    off_after: Option<String>,
}

/// `GET /api/v1/flags/evaluate`: the flags on for the caller, each key `true` (a flag
/// left out is off).
#[derive(ToSchema)]
pub(crate) struct FlagAnswers(
    #[allow(dead_code, reason = "read by utoipa only")] std::collections::BTreeMap<String, bool>,
);

/// `PATCH /api/v1/flags/{key}`: any part of [`NewFlag`] but the key; `null` clears a
/// schedule bound.
#[derive(ToSchema)]
pub(crate) struct FlagChange {
    #[schema(max_length = 1000, nullable = false)]
    description: Option<String>,
    #[schema(nullable = false)]
    enabled: Option<bool>,
    #[schema(minimum = 0, maximum = 100, nullable = false)]
    rollout: Option<f64>,
    #[schema(max_items = 1000, nullable = false)]
    allow: Option<Vec<String>>,
    #[schema(max_items = 1000, nullable = false)]
    deny: Option<Vec<String>>,
    #[schema(format = DateTime)]
    on_from: Option<String>,
    #[schema(format = DateTime)]
    off_after: Option<String>,
}

/// The `data` of a change event on the change feed (`crate::realtime`). Control events
/// carry other data: `ready` `{"position"}`, `reset` `{"reason", "position"}`, `end`
/// `{"reason"}`.
#[derive(ToSchema)]
pub(crate) struct ChangeEvent {
    /// The change's position, increasing across the database (also the event's `id`).
    seq: i64,
    /// `created`, `updated`, `deleted`, `restored` or `purged` (also the event's name).
    #[schema(
        rename = "type",
        pattern = "^(created|updated|deleted|restored|purged)$"
    )]
    kind: String,
    /// The model written.
    model: String,
    /// When the write was made (RFC 3339, UTC).
    at: String,
    /// The record as `GET /api/v1/{model}/{id}` shows it to the subscriber, after the write
    /// (before it, for `purged`).
    #[schema(value_type = Object)]
    record: serde_json::Value,
}

/// `GET /api/v1/audit/verify` (`routes::audit::Verdict`): every key is always present; those
/// that do not apply are `null`.
#[derive(ToSchema)]
pub(crate) struct AuditVerdict {
    /// Whether every entry is in place: sequence, links, hashes and the newest checkpoint.
    intact: bool,
    /// Entries checked, when intact; `null` when broken.
    #[schema(minimum = 0)]
    entries: Option<u64>,
    /// The `seq` of the first entry (oldest first) that breaks the chain; `null` when intact.
    seq: Option<i64>,
    /// What is wrong with that entry (`hash mismatch: the entry was changed`, say); `null`
    /// when intact.
    reason: Option<String>,
}

/// `GET /api/v1/metrics/series` (`routes::metrics::Series`).
#[derive(ToSchema)]
pub(crate) struct MetricsSeries {
    /// The length of each point's interval, in seconds (10).
    #[schema(minimum = 1)]
    interval_seconds: u64,
    /// One per interval over the last 10 minutes (60), oldest first; the last is the
    /// current interval, still filling.
    #[schema(inline)]
    points: Vec<MetricsPoint>,
}

/// One interval of [`MetricsSeries`].
#[derive(ToSchema)]
pub(crate) struct MetricsPoint {
    /// The interval's start (RFC 3339, UTC).
    #[schema(format = DateTime)]
    at: String,
    /// Answers sent in the interval (of any status).
    #[schema(minimum = 0)]
    requests: u64,
    /// Of those, answers with a status of 500 or more.
    #[schema(minimum = 0)]
    errors: u64,
    /// The 99th percentile of their latency in milliseconds, estimated from a histogram as
    /// Prometheus's `histogram_quantile` does; `null` when the interval had no answers.
    #[schema(minimum = 0)]
    p99_ms: Option<f64>,
}

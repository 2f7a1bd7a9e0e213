//! `GET /api/v1/audit` (admins: the whole trail, filtered) and
//! `GET /api/v1/{model}/{id}/history` (one record's entries, to whoever may read it). Both
//! answer newest first, a page at a time, with an opaque cursor bound to the query.
//! `GET /api/v1/audit/verify` (admins) checks the whole hash chain, as `plinth audit verify`.

use crate::audit::{AuditJson, cut_for};
use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs, RecordParam};
use crate::openapi::shapes::AuditEntry as AuditEntryShape;
use crate::openapi::shapes::AuditVerdict as AuditVerdictShape;
use crate::reply::{Page, Reply};
use crate::state::AppState;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::policy::{self, Action};
use plinth_core::query::DEFAULT_LIMIT;
use plinth_core::{ModelName, RecordId, Role, Timestamp};
use plinth_store::{AuditEntry, AuditQuery, AuditVerdict};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(record_history))
        .routes(routes!(verify_audit))
}

/// Longest `action` filter accepted, in characters.
const MAX_ACTION_LEN: usize = 64;
/// Longest cursor accepted, in characters.
const MAX_CURSOR_LEN: usize = 256;

/// The audit trail, newest first: filters `actor` (a user id), `actor_kind`, `action`
/// (exact, or `prefix.*`), `model`, `record`, `since` (inclusive) and `until` (exclusive,
/// RFC 3339); `limit` and `cursor` as in record lists.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("actor" = Option<String>, Query, description = "a user id"),
        ("actor_kind" = Option<String>, Query, pattern = "^(user|api_key|system|guest)$"),
        ("action" = Option<String>, Query, max_length = 64, description = "an action (`record.update`) or a prefix (`record.*`)"),
        ("model" = Option<String>, Query, description = "a model name, or `_users`, `_api_keys`, `_keys`"),
        ("record" = Option<String>, Query, description = "a record id"),
        ("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("until" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 20 by default"),
        ("cursor" = Option<String>, Query, description = "`page.next_cursor` of the page before, with the same filters"),
    ),
    responses(
        (status = 200, description = "one page of entries, newest first", body = [AuditEntryShape]),
        (status = 400, description = "an unknown or repeated parameter, a bad value, or a cursor of another query"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins read the audit trail"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Reply, ApiError> {
    caller.require_admin("only admins read the audit trail")?;
    let mut query = AuditQuery {
        newest_first: true,
        ..AuditQuery::default()
    };
    let paging = parse(&pairs, "audit", |k, v| {
        match k {
            "actor" => query.actor_id = Some(uuid(k, v)?),
            "actor_kind" => {
                if !matches!(v, "user" | "api_key" | "system" | "guest") {
                    return Err(ApiError::invalid(
                        k,
                        "must be user, api_key, system or guest",
                    ));
                }
                query.actor_kind = Some(v.to_owned());
            }
            "action" => match action(v)? {
                (a, false) => query.action = Some(a),
                (p, true) => query.action_prefix = Some(p),
            },
            // Accounts' and keys' events name a model no declaration can take.
            "model"
                if [
                    plinth_store::audit::USERS,
                    plinth_store::audit::API_KEYS,
                    plinth_store::audit::KEYS,
                    plinth_store::audit::ALERTS,
                    plinth_store::audit::FLAGS,
                ]
                .contains(&v) =>
            {
                query.model = Some(v.to_owned());
            }
            "model" => {
                let name = ModelName::parse(v).map_err(|reason| ApiError::invalid(k, reason))?;
                query.model = Some(name.to_string());
            }
            "record" => query.record_id = Some(RecordId::from_uuid(uuid(k, v)?)),
            "since" => query.since = Some(time(k, v)?),
            "until" => query.until = Some(time(k, v)?),
            _ => {
                return Err(ApiError::invalid(
                    k,
                    "unknown parameter; use actor, actor_kind, action, model, record, since, \
                     until, limit or cursor",
                ));
            }
        }
        Ok(())
    })?;
    let entries = fetch(&state, query, &paging).await?;
    answer(entries, paging, |e| e)
}

/// One record's entries, newest first, to whoever may read the record (the same 401, 403
/// and 404 as a `GET` of it); `limit` and `cursor`. A deleted record's history stays
/// readable like the record; a purged record's only to admins. Non-admins see only the
/// changes of fields they may read, and no client address.
#[utoipa::path(get, path = "/api/v1/{model}/{id}/history", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 20 by default"),
        ("cursor" = Option<String>, Query, description = "`page.next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "one page of the record's entries, newest first", body = [AuditEntryShape]),
        (status = 400, description = "a bad id, limit or cursor, or another parameter"),
        (status = 401, description = "a bad credential, or a guest where the model refuses guests"),
        (status = 403, description = "the caller may not read the record (models with hide_forbidden = false)"),
        (status = 404, description = "no such record, or one the caller may not read"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
async fn record_history(
    State(state): State<AppState>,
    caller: Caller,
    RecordParam(model, id): RecordParam,
    QueryPairs(pairs): QueryPairs,
) -> Result<Reply, ApiError> {
    policy::precheck(&caller.0, model.policy(), Action::Read)?;
    let record = state
        .store()
        .get_from(&model, id, state.read_from(&caller))
        .await?;
    match &record {
        Some(r) => policy::authorize(&caller.0, model.policy(), Action::Read, Some(r.owner_id))?,
        // Purged (or never made): only an admin may learn its history exists.
        None if caller.0.role() != Role::Admin => return Err(ApiError::record_not_found()),
        None => {}
    }
    let scope = format!("history:{}:{id}", model.name());
    let paging = parse(&pairs, &scope, |k, _| {
        Err(ApiError::invalid(
            k,
            "unknown parameter; use limit or cursor",
        ))
    })?;
    let query = AuditQuery {
        model: Some(model.name().to_string()),
        record_id: Some(id),
        newest_first: true,
        ..AuditQuery::default()
    };
    let entries = fetch(&state, query, &paging).await?;
    if record.is_none() && entries.is_empty() && paging.after.is_none() {
        return Err(ApiError::record_not_found());
    }
    let access = caller.0.field_access();
    answer(entries, paging, |e| cut_for(&model, access, e))
}

/// The whole chain checked, oldest entry first, as `plinth audit verify` does: links, hashes,
/// sequence and the newest checkpoint. A broken chain is an answer, not an error: 200 with
/// `intact: false`, the first entry that breaks it and why. Takes no parameters.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "whether the chain is intact; if not, where it breaks", body = AuditVerdictShape),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins verify the audit trail"),
    ))]
#[tracing::instrument(skip_all)]
async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    caller.require_admin("only admins verify the audit trail")?;
    query.refuse_any()?;
    let verdict = match state.store().audit_verify().await? {
        AuditVerdict::Intact { entries } => Verdict {
            intact: true,
            entries: Some(entries),
            seq: None,
            reason: None,
        },
        AuditVerdict::Broken { seq, reason } => Verdict {
            intact: false,
            entries: None,
            seq: Some(seq),
            reason: Some(reason.to_string()),
        },
    };
    Reply::data(&verdict).map(Reply::private)
}

/// What `verify_audit` answers: always the four keys, the ones that do not apply `null`.
#[derive(serde::Serialize)]
struct Verdict {
    intact: bool,
    /// Entries checked, when intact.
    entries: Option<u64>,
    /// The first entry that breaks the chain, when broken.
    seq: Option<i64>,
    /// What is wrong with it.
    reason: Option<String>,
}

/// A page's size and start, and the fingerprint of the query its cursor is bound to.
struct Paging {
    limit: u32,
    after: Option<i64>,
    fingerprint: String,
}

/// Reads `limit` and `cursor`, and hands every other parameter to `filter`; each may
/// appear once. The cursor must come from the same query (`scope` and filters).
fn parse(
    pairs: &[(String, String)],
    scope: &str,
    mut filter: impl FnMut(&str, &str) -> Result<(), ApiError>,
) -> Result<Paging, ApiError> {
    let mut seen: Vec<&str> = Vec::new();
    let (mut limit, mut cursor) = (DEFAULT_LIMIT, None);
    for (k, v) in pairs {
        if seen.contains(&k.as_str()) {
            return Err(ApiError::invalid(k, "may appear only once"));
        }
        seen.push(k);
        match k.as_str() {
            "limit" => {
                limit = super::page_limit(v)?;
            }
            "cursor" => cursor = Some(v.as_str()),
            _ => filter(k, v)?,
        }
    }
    let fingerprint = fingerprint(scope, pairs);
    let after = cursor.map(|c| decode(c, &fingerprint)).transpose()?;
    Ok(Paging {
        limit,
        after,
        fingerprint,
    })
}

async fn fetch(
    state: &AppState,
    mut query: AuditQuery,
    paging: &Paging,
) -> Result<Vec<AuditEntry>, ApiError> {
    query.after_seq = paging.after;
    query.limit = paging.limit + 1;
    Ok(state.store().audit_query(&query).await?)
}

/// The page: at most `limit` entries, each as `show` makes it, and the cursor past the last.
fn answer(
    mut entries: Vec<AuditEntry>,
    paging: Paging,
    show: impl Fn(AuditEntry) -> AuditEntry,
) -> Result<Reply, ApiError> {
    let more = entries.len() > paging.limit as usize;
    entries.truncate(paging.limit as usize);
    let next_cursor = match (more, entries.last()) {
        (true, Some(last)) => Some(encode(last.seq, &paging.fingerprint)),
        _ => None,
    };
    let entries: Vec<AuditEntry> = entries.into_iter().map(show).collect();
    let data: Vec<AuditJson<'_>> = entries.iter().map(AuditJson).collect();
    Reply::page(
        &data,
        Page {
            next_cursor,
            limit: paging.limit,
            total: None,
        },
    )
    .map(Reply::private)
}

fn uuid(k: &str, v: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(v).map_err(|_| ApiError::invalid(k, "must be a UUID"))
}

fn time(k: &str, v: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(v).map_err(|reason| ApiError::invalid(k, reason))
}

/// An `action` filter: `(action, false)` exactly, or `(prefix, true)` for `prefix.*`.
fn action(v: &str) -> Result<(String, bool), ApiError> {
    let bad = || {
        ApiError::invalid(
            "action",
            format!(
                "must be an action such as record.update, or a prefix such as record.*, of \
                 at most {MAX_ACTION_LEN} characters"
            ),
        )
    };
    let (body, prefix) = match v.strip_suffix(".*") {
        Some(p) => (p, true),
        None => (v, false),
    };
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    };
    if v.len() > MAX_ACTION_LEN || !body.split('.').all(word) {
        return Err(bad());
    }
    Ok(if prefix {
        (format!("{body}."), true)
    } else {
        (body.to_owned(), false)
    })
}

/// A digest of the endpoint and its filters (not `limit` or `cursor`), in any order.
fn fingerprint(scope: &str, pairs: &[(String, String)]) -> String {
    let mut filters: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "limit" | "cursor"))
        .collect();
    filters.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(scope.as_bytes());
    for (k, v) in filters {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    format!("{h:016x}")
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    /// The last entry's `seq`.
    s: i64,
    /// The query's fingerprint.
    f: String,
}

fn encode(seq: i64, fingerprint: &str) -> String {
    let wire = Wire {
        s: seq,
        f: fingerprint.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

fn decode(cursor: &str, fingerprint: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("cursor", "is not a cursor returned by this endpoint");
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if wire.f != fingerprint {
        return Err(ApiError::invalid(
            "cursor",
            "belongs to a different query (filters changed)",
        ));
    }
    if wire.s < 1 {
        return Err(bad());
    }
    Ok(wire.s)
}

#[cfg(test)]
mod tests {
    use super::{action, decode, encode};

    #[test]
    fn actions_are_exact_or_a_prefix_of_lowercase_words() {
        assert_eq!(
            action("record.update").ok(),
            Some(("record.update".to_owned(), false))
        );
        assert_eq!(action("record.*").ok(), Some(("record.".to_owned(), true)));
        for bad in [
            "", "*", ".*", "record.", "Record.x", "a..b", "a.%", "a._x", "a.b*",
        ] {
            assert!(action(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_only_within_their_query() {
        let c = encode(42, "00ff");
        assert_eq!(decode(&c, "00ff").ok(), Some(42));
        assert!(decode(&c, "00fe").is_err());
        assert!(decode(&encode(0, "00ff"), "00ff").is_err());
        assert!(decode("!!", "00ff").is_err());
    }
}

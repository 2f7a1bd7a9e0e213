//! `/api/v1/flags[/{key}]`: feature flags, managed by admins; `GET /api/v1/flags/evaluate`:
//! the caller's flags, on or off, for any caller.
//!
//! Every change is made through the store (audited with it), then this instance loads its
//! flags again at once; other instances hear of it from the store's notice.

mod body;

pub(crate) use body::FlagJson;

use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, QueryPairs, WriteContext};
use crate::flags::evaluate;
use crate::openapi::shapes::{FlagAnswers, FlagChange, NewFlag as NewFlagShape};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use plinth_core::ErrorCode;
use plinth_core::flags::{Flag, FlagKey, FlagRule, Rollout, Subject};
use plinth_store::{FlagVersion, NewFlag, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flags, create_flag))
        .routes(routes!(evaluate_flags))
        .routes(routes!(read_flag, update_flag, delete_flag))
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require_admin("only admins manage feature flags")
}

fn path_key(s: &str) -> Result<FlagKey, ApiError> {
    body::flag_key(s).map_err(|reason| ApiError::invalid("key", reason))
}

/// A store error in a flag's words.
fn flag_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "no such flag"),
        StoreError::Stale { .. } => stale_flag(),
        // The store's own schedule check, on the flag as changed meanwhile.
        StoreError::InvalidValue { reason } => match reason.strip_prefix("off_after ") {
            Some(reason) => ApiError::invalid("off_after", reason),
            None => StoreError::InvalidValue { reason }.into(),
        },
        other => other.into(),
    }
}

/// 412 in a flag's words.
fn stale_flag() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "the flag is not the one If-Match names: it changed, or was deleted and made again",
    )
}

/// A flag's entity tag: its id and version, so a tag of a flag deleted and made again
/// under the same key names nothing.
fn flag_etag(flag: &Flag) -> String {
    format!("\"{}.{}\"", flag.id, flag.version)
}

/// A flag with its `ETag`.
fn flag_reply(flag: &Flag) -> Result<Reply, ApiError> {
    Ok(Reply::data(&FlagJson::from(flag))?.with_entity_tag(flag_etag(flag)))
}

/// The schedule must not end before it starts.
fn check_rule(rule: &FlagRule) -> Result<(), ApiError> {
    rule.check()
        .map_err(|(field, reason)| ApiError::invalid(field, reason))
}

/// Makes a flag: `{"key", "description"?, "enabled"?, "rollout"?, "allow"?, "deny"?,
/// "on_from"?, "off_after"?}`; a new flag is disabled at 0 % unless the body says
/// otherwise.
#[utoipa::path(post, path = "/api/v1/flags", tag = "flags",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewFlagShape,
    responses(
        (status = 201, description = "the flag", body = FlagJson,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "a bad key (a `plinth.*` one Plinth does not know), rollout, audience entry or schedule, or an unknown field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage feature flags"),
        (status = 409, description = "a flag with this key exists"),
    ))]
#[tracing::instrument(skip_all)]
async fn create_flag(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    req: Request,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let body = body::read(&ApiJson::read(req, &state).await?, true)?;
    let Some(key) = body.key else {
        return Err(ApiError::invalid("key", "is required"));
    };
    let c = body.changes;
    let rule = FlagRule {
        enabled: c.enabled.unwrap_or(false),
        rollout: c.rollout.unwrap_or(Rollout::NONE),
        allow: c.allow.unwrap_or_default(),
        deny: c.deny.unwrap_or_default(),
        on_from: c.on_from.flatten(),
        off_after: c.off_after.flatten(),
    };
    check_rule(&rule)?;
    let new = NewFlag {
        key,
        description: c.description.unwrap_or_default(),
        rule,
    };
    let flag = state.store().create_flag(&ctx, new).await?;
    state.flags().changed(state.store().as_ref()).await;
    tracing::info!(target: "plinth::security", event = "flag_created", key = %flag.key, "feature flag created");
    Ok(flag_reply(&flag)?
        .with_status(StatusCode::CREATED)
        .with_location(format!("/api/v1/flags/{}", flag.key)))
}

/// Every flag, by key. Takes no parameters.
#[utoipa::path(get, path = "/api/v1/flags", tag = "flags",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "every flag, by key", body = [FlagJson]),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage feature flags"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_flags(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    query.refuse_any()?;
    let flags = state.store().list_flags().await?;
    let shown: Vec<FlagJson<'_>> = flags.iter().map(FlagJson::from).collect();
    Reply::data(&shown)
}

/// One flag.
#[utoipa::path(get, path = "/api/v1/flags/{key}", tag = "flags",
    security(("bearer" = []), ("api_key" = [])),
    params(("key" = String, Path, description = "the flag's key")),
    responses(
        (status = 200, description = "the flag", body = FlagJson, headers(("ETag" = String))),
        (status = 400, description = "not a flag key"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage feature flags"),
        (status = 404, description = "no such flag"),
    ))]
#[tracing::instrument(skip_all)]
async fn read_flag(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let flag = state
        .store()
        .get_flag(&path_key(&key)?)
        .await?
        .ok_or_else(|| flag_error(StoreError::NotFound))?;
    flag_reply(&flag)
}

/// Changes a flag: any of the create's fields but `key`; `null` clears a schedule bound.
/// With `If-Match`, only the version it names.
#[utoipa::path(patch, path = "/api/v1/flags/{key}", tag = "flags",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("key" = String, Path, description = "the flag's key"),
        ("If-Match" = Option<String>, Header, description = "the ETags the change expects, or `*`"),
    ),
    request_body = FlagChange,
    responses(
        (status = 200, description = "the flag as changed", body = FlagJson, headers(("ETag" = String))),
        (status = 400, description = "a bad key, rollout, audience entry or schedule, an unknown field, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage feature flags"),
        (status = 404, description = "no such flag"),
        (status = 412, description = "If-Match names no version the flag is at"),
    ))]
#[tracing::instrument(skip_all)]
async fn update_flag(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    Path(key): Path<String>,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let key = path_key(&key)?;
    let body = body::read(&ApiJson::read(req, &state).await?, false)?;
    let current = state
        .store()
        .get_flag(&key)
        .await?
        .ok_or_else(|| flag_error(StoreError::NotFound))?;
    let expected = if_match
        .expect_tag(&flag_etag(&current), FlagVersion::of(&current))
        .map_err(|_| stale_flag())?;
    check_rule(&body.changes.apply(&current).rule)?;
    let flag = state
        .store()
        .update_flag(&ctx, &key, body.changes, expected)
        .await
        .map_err(flag_error)?;
    // A change to nothing new leaves the version (and the flags held) as they were.
    if flag.version > current.version {
        state.flags().changed(state.store().as_ref()).await;
        tracing::info!(target: "plinth::security", event = "flag_changed", key = %flag.key, "feature flag changed");
    }
    flag_reply(&flag)
}

/// Deletes a flag; with `If-Match`, only the version it names.
#[utoipa::path(delete, path = "/api/v1/flags/{key}", tag = "flags",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("key" = String, Path, description = "the flag's key"),
        ("If-Match" = Option<String>, Header, description = "the ETags the deletion expects, or `*`"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "not a flag key, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage feature flags"),
        (status = 404, description = "no such flag"),
        (status = 412, description = "If-Match names no version the flag is at"),
    ))]
#[tracing::instrument(skip_all)]
async fn delete_flag(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    Path(key): Path<String>,
    if_match: IfMatch,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let key = path_key(&key)?;
    let expected = match &if_match {
        IfMatch::Any => None,
        IfMatch::Tags(_) => {
            let current = state
                .store()
                .get_flag(&key)
                .await?
                .ok_or_else(|| flag_error(StoreError::NotFound))?;
            if_match
                .expect_tag(&flag_etag(&current), FlagVersion::of(&current))
                .map_err(|_| stale_flag())?
        }
    };
    state
        .store()
        .delete_flag(&ctx, &key, expected)
        .await
        .map_err(flag_error)?;
    state.flags().changed(state.store().as_ref()).await;
    tracing::info!(target: "plinth::security", event = "flag_deleted", key = %key, "feature flag deleted");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// The caller's flags: `{"<key>": true}` for each flag on for the caller, but Plinth's own
/// (`plinth.*`). A flag that is off is left out, for every caller, so the names of flags
/// disabled, scheduled or targeted at others stay private. Takes no parameters.
#[utoipa::path(get, path = "/api/v1/flags/evaluate", tag = "flags",
    security((), ("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "the flags on for the caller", body = FlagAnswers),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "a bad credential"),
    ))]
#[tracing::instrument(skip_all)]
async fn evaluate_flags(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    query.refuse_any()?;
    let set = state.flags().current(state.store().as_ref()).await?;
    let subject = Subject::of(&caller.0, caller.1);
    Reply::data(&evaluate(&set, &subject, state.auth().now()))
}

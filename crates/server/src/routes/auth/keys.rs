//! `/api/v1/auth/api-keys`: API keys for machines. A key is shown once, stored as a digest,
//! and acts as its user with at most that user's role.

use super::me::current_user;
use super::{BodyFields, role_from_client};
use crate::auth::new_api_key;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, NotApiKey, QueryPairs, WriteContext};
use crate::openapi::shapes::{NewKey, Role as RoleShape};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use plinth_core::auth::role_name;
use plinth_core::{ErrorCode, Role, Timestamp};
use plinth_store::{ApiKey, NewApiKey};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest key name, in characters.
const NAME_MAX: usize = 100;

/// An API key as the API shows it: its secret only in the answer that creates it.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
struct KeyJson<'a> {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    user_id: String,
    name: &'a str,
    /// The key's first characters, to tell keys apart.
    prefix: &'a str,
    #[schema(value_type = RoleShape)]
    role: &'static str,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    /// The key itself: only when it is created, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    key: Option<&'a str>,
}

fn key_json<'a>(k: &'a ApiKey, secret: Option<&'a str>) -> KeyJson<'a> {
    KeyJson {
        id: k.id.to_string(),
        user_id: k.user_id.to_string(),
        name: &k.name,
        prefix: &k.prefix,
        role: role_name(k.role),
        expires_at: k.expires_at.map(|t| t.to_string()),
        last_used_at: k.last_used_at.map(|t| t.to_string()),
        revoked_at: k.revoked_at.map(|t| t.to_string()),
        created_at: k.created_at.to_string(),
        key: secret,
    }
}

fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(s).map_err(|_| ApiError::invalid("id", "must be a UUID"))
}

/// Creates a key: `{"name", "role"?, "expires_at"?, "user_id"? (admins)}`. `201` with the key,
/// which is never shown again.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "api keys",
    security(("bearer" = [])),
    request_body = NewKey,
    responses(
        (status = 201, description = "the key, with its secret shown this once", body = KeyJson),
        (status = 400, description = "a bad name, role, expiry or user_id, or an unknown field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key, a role above the creator's or owner's, or a user_id from a non-admin"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn create_key(
    State(state): State<AppState>,
    _: NotApiKey,
    WriteContext { caller, ctx }: WriteContext,
    req: Request,
) -> Result<Reply, ApiError> {
    let me = current_user(&state, &caller).await?;
    let body = ApiJson::read(req, &state).await?;
    let mut fields = BodyFields::new(&body, &["name", "role", "expires_at", "user_id"], &[])?;
    let name = fields.required("name").map(str::trim);
    if let Some(n) = name
        && (n.is_empty() || n.chars().count() > NAME_MAX || n.chars().any(char::is_control))
    {
        fields.reject(
            "name",
            format!("must be 1 to {NAME_MAX} printable characters"),
        );
    }
    let role = fields.string("role");
    let expires_at = match fields.string("expires_at").map(Timestamp::parse) {
        Some(Ok(t)) if t <= state.auth().now() => {
            fields.reject("expires_at", "must be in the future");
            None
        }
        Some(Ok(t)) => Some(t),
        Some(Err(reason)) => {
            fields.reject("expires_at", reason);
            None
        }
        None => None,
    };
    // With a maximum lifetime, a key gets it by default and may not ask for longer.
    let latest = state.auth().config().api_key_max_ttl.and_then(|ttl| {
        let micros = i64::try_from(ttl.as_micros()).ok()?;
        Timestamp::from_micros(state.auth().now().as_micros().checked_add(micros)?)
    });
    let expires_at = match (expires_at, latest) {
        (Some(t), Some(latest)) if t > latest => {
            fields.reject(
                "expires_at",
                format!("must be no later than {latest} (the longest a key may live here)"),
            );
            None
        }
        (None, latest) => latest,
        (t, _) => t,
    };
    let user_id = fields.string("user_id");
    fields.finish()?;
    let owner = match user_id {
        None => me.clone(),
        Some(_) if caller.0.role() != Role::Admin => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only admins create keys for other users",
            ));
        }
        Some(id) => state
            .store()
            .get_user(
                Uuid::try_parse(id).map_err(|_| ApiError::invalid("user_id", "must be a UUID"))?,
            )
            .await?
            .ok_or_else(|| ApiError::invalid("user_id", "no such user"))?,
    };
    let role = match role {
        Some(r) => role_from_client(r)?,
        None => owner.role.min(caller.0.role()),
    };
    if role > caller.0.role() || role > owner.role {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a key cannot have a higher role than its creator or its user",
        ));
    }
    let (secret, prefix, digest) = new_api_key()?;
    let new = NewApiKey {
        user_id: owner.id,
        name: name.unwrap_or_default().to_owned(),
        prefix,
        key_hash: digest.into_string(),
        role,
        expires_at,
    };
    let key = state.store().create_api_key(&ctx, new).await?;
    tracing::info!(target: "plinth::security", event = "api_key_created", key = %key.prefix, user_id = %key.user_id, "API key created");
    Ok(Reply::data(&key_json(&key, Some(&secret)))?.with_status(StatusCode::CREATED))
}

/// Lists keys: an admin's own by default, everyone's with `?all=true`, one user's with
/// `?user_id=`; a user sees only their own.
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "api keys",
    security(("bearer" = [])),
    params(
        ("all" = Option<bool>, Query, description = "admins: every account's keys (only `true`)"),
        ("user_id" = Option<String>, Query, description = "admins: one account's keys"),
    ),
    responses(
        (status = 200, description = "the keys, without their secrets", body = [KeyJson]),
        (status = 400, description = "another parameter, or a user_id that is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key, or a parameter from a non-admin"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn list_keys(
    State(state): State<AppState>,
    _: NotApiKey,
    caller: Caller,
    QueryPairs(query): QueryPairs,
) -> Result<Reply, ApiError> {
    let me = current_user(&state, &caller).await?;
    let admin = caller.0.role() == Role::Admin;
    let filter = match query.as_slice() {
        [] => Some(me.id),
        [(k, v)] if k == "all" && v == "true" && admin => None,
        [(k, v)] if k == "user_id" && admin => Some(parse_id(v)?),
        _ if !admin => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "users list only their own keys",
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                "query",
                "accepts all=true or user_id=<id>",
            ));
        }
    };
    let keys = state.store().list_api_keys(filter).await?;
    let data: Vec<KeyJson<'_>> = keys.iter().map(|k| key_json(k, None)).collect();
    Reply::data(&data)
}

/// One key (never its secret). Users see only their own; others' are 404.
#[utoipa::path(get, path = "/api/v1/auth/api-keys/{id}", tag = "api keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the key's id (a UUID)")),
    responses(
        (status = 200, description = "the key, without its secret", body = KeyJson),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 404, description = "no such key (or another user's)"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn read_key(
    State(state): State<AppState>,
    _: NotApiKey,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let me = current_user(&state, &caller).await?;
    let id = parse_id(&id)?;
    let owner = (caller.0.role() != Role::Admin).then_some(me.id);
    let keys = state.store().list_api_keys(owner).await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such API key"))?;
    Reply::data(&key_json(key, None))
}

/// Revokes a key at once: `204`. Users revoke only their own.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "api keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the key's id (a UUID)")),
    responses(
        (status = 204, description = "revoked"),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 404, description = "no such key (or another user's)"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn revoke_key(
    State(state): State<AppState>,
    _: NotApiKey,
    WriteContext { caller, ctx }: WriteContext,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let me = current_user(&state, &caller).await?;
    let id = parse_id(&id)?;
    let owner = (caller.0.role() != Role::Admin).then_some(me.id);
    let key = state
        .store()
        .revoke_api_key(&ctx, id, owner)
        .await
        .map_err(|e| match e {
            plinth_store::StoreError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "no such API key")
            }
            other => other.into(),
        })?;
    state.auth().forget_credentials();
    tracing::info!(target: "plinth::security", event = "api_key_revoked", key = %key.prefix, "API key revoked");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

//! `/api/v1/users[/{id}]`: account administration, admins only.

use super::auth::{BodyFields, UserJson, role_from_client};
use crate::accounts;
use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, QueryPairs, WriteContext};
use crate::openapi::shapes::{NewUser, UserChange};
use crate::reply::{Page, Reply};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use plinth_core::auth::{Email, check_password};
use plinth_core::query::DEFAULT_LIMIT;
use plinth_core::{ErrorCode, Role};
use plinth_store::{StoreError, User, UserChanges};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(read_user, update_user, delete_user))
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require_admin("only admins manage users")
}

fn user_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(s).map_err(|_| ApiError::invalid("id", "must be a UUID"))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "no such user"),
        other => other.into(),
    }
}

/// An account with its `ETag`.
fn user_reply(user: &User) -> Result<Reply, ApiError> {
    Ok(Reply::data(&UserJson::from(user))?.with_etag(user.version))
}

/// Creates an account: `{"email", "password", "role"?}` (role defaults to `user`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "the account", body = UserJson,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "a bad email, a weak password, a bad role or an unknown field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 409, description = "the email is taken"),
    ))]
#[tracing::instrument(skip_all)]
async fn create_user(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    req: Request,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let body = ApiJson::read(req, &state).await?;
    let mut fields = BodyFields::new(&body, &["email", "password", "role"], &[])?;
    let email = fields.required("email");
    let password = fields.required("password");
    let role = fields.string("role");
    for problem in accounts::problems(email, password) {
        fields.reject(&problem.field, problem.reason);
    }
    fields.finish()?;
    let role = role.map_or(Ok(Role::User), role_from_client)?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::invalid("body", "email and password are required"));
    };
    let user = accounts::create_account(
        state.store().as_ref(),
        state.auth(),
        &ctx,
        email,
        password,
        role,
    )
    .await?;
    Ok(user_reply(&user)?
        .with_status(StatusCode::CREATED)
        .with_location(format!("/api/v1/users/{}", user.id)))
}

/// Lists accounts by id: `?limit=` (1–200, default 20) and `?cursor=` from `page.next_cursor`.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 20 by default"),
        ("cursor" = Option<String>, Query, description = "`page.next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "one page of accounts", body = [UserJson]),
        (status = 400, description = "another parameter, a bad limit or a bad cursor"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(query): QueryPairs,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for (k, v) in &query {
        match k.as_str() {
            "limit" => {
                limit = super::page_limit(v)?;
            }
            "cursor" => {
                after = Some(
                    Uuid::try_parse(v)
                        .map_err(|_| ApiError::invalid("cursor", "is not a cursor"))?,
                )
            }
            _ => {
                return Err(ApiError::invalid(
                    k,
                    "unknown parameter; use limit or cursor",
                ));
            }
        }
    }
    let users = state.store().list_users(after, limit + 1).await?;
    let more = users.len() > limit as usize;
    let page: Vec<UserJson<'_>> = users
        .iter()
        .take(limit as usize)
        .map(UserJson::from)
        .collect();
    let next_cursor = if more {
        users.get(limit as usize - 1).map(|u| u.id.to_string())
    } else {
        None
    };
    Reply::page(
        &page,
        Page {
            next_cursor,
            limit,
            total: None,
        },
    )
}

/// One account.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "the account's id (a UUID)")),
    responses(
        (status = 200, description = "the account", body = UserJson, headers(("ETag" = String))),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 404, description = "no such account"),
    ))]
#[tracing::instrument(skip_all)]
async fn read_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let user = state
        .store()
        .get_user(user_id(&id)?)
        .await?
        .ok_or_else(|| not_found(StoreError::NotFound))?;
    user_reply(&user)
}

/// Changes an account: `{"email"?, "password"?, "role"?}`, optionally with `If-Match`. The
/// last admin cannot be demoted. A new password or role ends the account's sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("id" = String, Path, description = "the account's id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "the ETags the change expects, or `*`"),
    ),
    request_body = UserChange,
    responses(
        (status = 200, description = "the account as changed", body = UserJson, headers(("ETag" = String))),
        (status = 400, description = "a bad id, email, password or role, an unknown field, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 404, description = "no such account"),
        (status = 409, description = "the email is taken, or the last admin would be demoted"),
        (status = 412, description = "If-Match names no version the account is at"),
    ))]
#[tracing::instrument(skip_all)]
async fn update_user(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    Path(id): Path<String>,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let body = ApiJson::read(req, &state).await?;
    let id = user_id(&id)?;
    let current = state
        .store()
        .get_user(id)
        .await?
        .ok_or_else(|| not_found(StoreError::NotFound))?;
    let expected = if_match.expect(current.version)?;
    let mut fields = BodyFields::new(&body, &["email", "password", "role"], &[])?;
    let email = match fields.string("email").map(Email::parse) {
        Some(Ok(e)) => Some(e),
        Some(Err(reason)) => {
            fields.reject("email", reason);
            None
        }
        None => None,
    };
    let password = fields.string("password");
    if let Some(p) = password
        && let Err(reason) = check_password(
            p,
            email
                .as_ref()
                .or(Email::parse(&current.email).ok().as_ref()),
        )
    {
        fields.reject("password", reason);
    }
    let role = fields.string("role");
    fields.finish()?;
    let role = role.map(role_from_client).transpose()?;
    let password_hash = match password {
        Some(p) => Some(state.auth().hash_password(p).await?),
        None => None,
    };
    let changes = UserChanges {
        email,
        password_hash,
        role,
        email_verified: None,
    };
    let user = state
        .store()
        .update_user(&ctx, id, changes, expected)
        .await
        .map_err(not_found)?;
    state.auth().forget_credentials();
    tracing::info!(target: "plinth::security", event = "user_changed", user_id = %user.id, "user changed");
    user_reply(&user)
}

/// Deletes an account with its sessions and keys (its records keep their `owner_id`). The
/// last admin cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "the account's id (a UUID)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 404, description = "no such account"),
        (status = 409, description = "the last admin"),
    ))]
#[tracing::instrument(skip_all)]
async fn delete_user(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    require_admin(&caller)?;
    let id = user_id(&id)?;
    state
        .store()
        .delete_user(&ctx, id)
        .await
        .map_err(not_found)?;
    state.auth().forget_credentials();
    tracing::info!(target: "plinth::security", event = "user_deleted", user_id = %id, "user deleted");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

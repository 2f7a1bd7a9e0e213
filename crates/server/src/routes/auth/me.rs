//! `GET` and `PATCH /api/v1/auth/me`: the caller's own account.

use super::{BodyFields, UserJson};
use crate::auth::LoginAttempt;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, ClientAddr, WriteContext};
use crate::openapi::shapes::PasswordChange;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Request, State};
use plinth_core::ErrorCode;
use plinth_core::auth::{Email, check_password};
use plinth_store::{AuditEvent, Event, User, UserChanges};

/// The signed-in user, or 401.
pub(crate) async fn current_user(state: &AppState, caller: &Caller) -> Result<User, ApiError> {
    let id = caller
        .0
        .user_id()
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "authentication required"))?;
    state
        .store()
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "authentication required"))
}

/// The caller's account (never a hash or secret).
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "the caller's account", body = UserJson),
        (status = 401, description = "no credential, or a bad one"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn read_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Reply, ApiError> {
    let user = current_user(&state, &caller).await?;
    Reply::data(&UserJson::from(&user))
}

/// Changes the caller's password: `{"current_password", "new_password"}`. The role and email
/// cannot be changed here. Every session of the account ends.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "the account, its password changed", body = UserJson),
        (status = 400, description = "a wrong current password, a weak new one, or a field that cannot change here"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 429, description = "too many wrong passwords; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Result<Reply, ApiError> {
    let user = current_user(&state, &caller).await?;
    let body = ApiJson::read(req, &state).await?;
    let mut fields = BodyFields::new(
        &body,
        &["current_password", "new_password"],
        &[
            ("role", "cannot be changed by its owner"),
            ("email", "is changed by an admin"),
        ],
    )?;
    let (current, new) = (
        fields.required("current_password"),
        fields.required("new_password"),
    );
    let email = Email::parse(&user.email).ok();
    if let Some(new) = new
        && let Err(reason) = check_password(new, email.as_ref())
    {
        fields.reject("new_password", reason);
    }
    fields.finish()?;
    // Guessing the current password through this endpoint counts against the same limits
    // as logging in.
    let account = user.email.to_lowercase();
    state
        .auth()
        .check_login(
            state.store().as_ref(),
            &LoginAttempt {
                account: &account,
                address: &address,
                ctx: &ctx,
                route: "/api/v1/auth/me",
            },
        )
        .await?;
    if !state
        .auth()
        .verify_password(Some(&user.password_hash), current.unwrap_or_default())
        .await
    {
        // A wrong guess at the password is audited as a failed login, by the user.
        let event = AuditEvent {
            event: Event::LoginFailed,
            target: Some(user.id),
            changes: serde_json::json!({}),
        };
        state.store().audit_event(&ctx, event).await?;
        return Err(ApiError::invalid(
            "current_password",
            "is not the account's password",
        ));
    }
    state.auth().login_succeeded(&account, &address);
    let hash = state.auth().hash_password(new.unwrap_or_default()).await?;
    let changes = UserChanges {
        password_hash: Some(hash),
        ..UserChanges::default()
    };
    let user = state
        .store()
        .update_user(&ctx, user.id, changes, None)
        .await?;
    state.auth().forget_credentials();
    tracing::info!(target: "plinth::security", event = "password_changed", user_id = %user.id, "password changed");
    Reply::data(&UserJson::from(&user))
}

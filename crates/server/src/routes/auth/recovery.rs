//! Password reset and email change: `POST /api/v1/auth/password-reset` (+ `/confirm`) and
//! `POST /api/v1/auth/email-change` (+ `/confirm`).
//!
//! A reset request answers `202` at once whether or not the account exists: the lookup,
//! the token and the message happen in a background task, so neither the answer nor its
//! timing tells. Spending a token (one transaction) sets the password or the address,
//! marks the address verified and ends every session of the account.

use super::session::guest;
use super::signup::{
    Pending, TokenBody, email_field, minutes, new_token, pending, redeem, redeem_body,
    require_mail, throttle,
};
use super::{BodyFields, UserJson};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientAddr, RequestId, WriteContext};
use crate::mail::{Mail, MailKind};
use crate::reply::Reply;
use crate::routes::auth::me::current_user;
use crate::state::AppState;
use axum::extract::{Request, State};
use plinth_core::auth::{Email, check_password};
use plinth_store::{AuditEvent, Event, TokenPurpose, TokenUse, WriteCtx};
use serde_json::json;
use utoipa::ToSchema;

/// `POST /api/v1/auth/password-reset`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "never built: only its schema is used")]
pub(crate) struct ResetRequest {
    /// The account's email (at most 254 bytes).
    email: String,
}

/// `POST /api/v1/auth/password-reset/confirm`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "never built: only its schema is used")]
pub(crate) struct ResetConfirm {
    /// The token from the message.
    token: String,
    /// The new password, by the same policy as any account's.
    password: String,
}

/// `POST /api/v1/auth/email-change`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "never built: only its schema is used")]
pub(crate) struct EmailChangeRequest {
    /// The new address (at most 254 bytes).
    email: String,
    /// The account's current password.
    password: String,
}

/// `POST /api/v1/auth/password-reset`: mails a reset token if the account exists.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", security(()),
    request_body = ResetRequest,
    responses(
        (status = 202, description = "accepted, whether or not the account exists", body = Pending),
        (status = 400, description = "a missing, unknown or non-string field, or a bad or too long email"),
        (status = 429, description = "too many attempts; see Retry-After"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn request_reset(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    require_mail(&state)?;
    let mut fields = BodyFields::new(&body, &["email"], &[])?;
    let email = fields.required("email");
    let email = email_field(&mut fields, email);
    fields.finish()?;
    let Some(email) = email else {
        return Err(ApiError::invalid("email", "is required"));
    };
    let ctx = guest(&request_id, &address);
    let route = "/api/v1/auth/password-reset";
    throttle(&state, &ctx, email.normalized(), &address, route).await?;
    tracing::info!(target: "plinth::security", event = "password_reset_requested", request_id = %request_id, "a password reset was asked for");
    // Everything that depends on whether the account exists happens after the answer.
    let background = state.clone();
    tokio::spawn(async move {
        if let Err(e) = mail_reset(&background, &ctx, &email).await {
            tracing::warn!(target: "plinth::security", event = "password_reset_failed", request_id = %ctx.request_id, error = ?e, "a password reset could not be started");
        }
    });
    pending()
}

async fn mail_reset(state: &AppState, ctx: &WriteCtx, email: &Email) -> Result<(), ApiError> {
    let Some(user) = state.store().find_user_by_email(email).await? else {
        return Ok(());
    };
    let ttl = state.auth().config().password_reset_ttl;
    let (token, stored) = new_token(state, TokenPurpose::PasswordReset, user.id, None, ttl)?;
    state.store().issue_account_token(ctx, stored).await?;
    state.mailer().send(Mail {
        kind: MailKind::PasswordReset,
        to: user.email,
        token: Some(token),
        minutes: minutes(ttl),
    });
    Ok(())
}

/// `POST /api/v1/auth/password-reset/confirm`: spends a reset token and sets the new
/// password; every session of the account ends, and its address counts as verified.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", security(()),
    request_body = ResetConfirm,
    responses(
        (status = 200, description = "the account, its password set", body = UserJson),
        (status = 400, description = "a missing, unknown or non-string field, a weak password, or a token that is unknown, used, expired, voided by a newer one or for something else"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn confirm_reset(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    require_mail(&state)?;
    let mut fields = BodyFields::new(&body, &["token", "password"], &[])?;
    let (token, password) = (fields.required("token"), fields.required("password"));
    // The account is not known before the token is spent, so the password cannot be
    // compared with its address here.
    if let Some(p) = password
        && let Err(reason) = check_password(p, None)
    {
        fields.reject("password", reason);
    }
    fields.finish()?;
    let hash = state
        .auth()
        .hash_password(password.unwrap_or_default())
        .await?;
    let ctx = guest(&request_id, &address);
    let apply = TokenUse::ResetPassword {
        password_hash: hash,
    };
    let user = redeem(&state, &ctx, token.unwrap_or_default(), apply).await?;
    tracing::info!(target: "plinth::security", event = "password_reset", request_id = %request_id, user_id = %user.id, "a password was reset; every session ended");
    Reply::data(&UserJson::from(&user))
}

/// `POST /api/v1/auth/email-change`: mails a token to the new address (and a notice to the
/// old one); a taken new address gets a notice instead, with the same answer.
#[utoipa::path(post, path = "/api/v1/auth/email-change", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "accepted, whether or not the new address is taken", body = Pending),
        (status = 400, description = "a missing, unknown or non-string field, a bad or too long email, the current address, or a wrong password"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 429, description = "too many wrong passwords; see Retry-After"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn request_email_change(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Result<Reply, ApiError> {
    let user = current_user(&state, &caller).await?;
    require_mail(&state)?;
    let body = ApiJson::read(req, &state).await?;
    let mut fields = BodyFields::new(&body, &["email", "password"], &[])?;
    let (email, password) = (fields.required("email"), fields.required("password"));
    let email = email_field(&mut fields, email);
    let current = Email::parse(&user.email).ok();
    if let (Some(new), Some(old)) = (&email, &current)
        && new.normalized() == old.normalized()
    {
        fields.reject("email", "is the account's address already");
    }
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::invalid("body", "email and password are required"));
    };
    let account = user.email.to_lowercase();
    throttle(
        &state,
        &ctx,
        &account,
        &address,
        "/api/v1/auth/email-change",
    )
    .await?;
    if !state
        .auth()
        .verify_password(Some(&user.password_hash), password)
        .await
    {
        let event = AuditEvent {
            event: Event::LoginFailed,
            target: Some(user.id),
            changes: json!({}),
        };
        state.store().audit_event(&ctx, event).await?;
        return Err(ApiError::invalid(
            "password",
            "is not the account's password",
        ));
    }
    state.auth().login_succeeded(&account, &address);
    let ttl = state.auth().config().verify_email_ttl;
    match state.store().find_user_by_email(&email).await? {
        Some(owner) => {
            let event = AuditEvent {
                event: Event::EmailChangeRequested,
                target: Some(user.id),
                changes: json!({ "taken": true }),
            };
            state.store().audit_event(&ctx, event).await?;
            state.mailer().send(Mail {
                kind: MailKind::SignupExists,
                to: owner.email,
                token: None,
                minutes: 0,
            });
        }
        None => {
            let (token, stored) = new_token(
                &state,
                TokenPurpose::EmailChange,
                user.id,
                Some(email.clone()),
                ttl,
            )?;
            state.store().issue_account_token(&ctx, stored).await?;
            state.mailer().send(Mail {
                kind: MailKind::EmailChange,
                to: email.as_str().to_owned(),
                token: Some(token),
                minutes: minutes(ttl),
            });
        }
    }
    tracing::info!(target: "plinth::security", event = "email_change_requested", request_id = %ctx.request_id, user_id = %user.id, "an email change was asked for");
    state.mailer().send(Mail {
        kind: MailKind::EmailChangeNotice,
        to: user.email,
        token: None,
        minutes: 0,
    });
    pending()
}

/// `POST /api/v1/auth/email-change/confirm`: spends an email-change token; the account
/// moves to the new address, verified, and every session ends.
#[utoipa::path(post, path = "/api/v1/auth/email-change/confirm", tag = "auth", security(()),
    request_body = TokenBody,
    responses(
        (status = 200, description = "the account at its new address", body = UserJson),
        (status = 400, description = "a missing, unknown or non-string field, or a token that is unknown, used, expired, voided by a newer one or for something else"),
        (status = 409, description = "the new address got an account meanwhile"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn confirm_email_change(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let user = redeem_body(&state, &request_id, &address, &body, TokenUse::ChangeEmail).await?;
    tracing::info!(target: "plinth::security", event = "email_changed", request_id = %request_id, user_id = %user.id, "an address change was confirmed; every session ended");
    Reply::data(&UserJson::from(&user))
}

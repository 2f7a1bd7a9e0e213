//! Sign-up and email verification: `POST /api/v1/auth/signup`, `/verify-email` and
//! `/verify-email/resend`, and what the mailed-token flows share (`recovery.rs` holds
//! password reset and email change).
//!
//! Sign-up answers the same `202` after the same work (a password hash, a lookup, one
//! write) whether the address is fresh or taken: a fresh one gets an account and a
//! verification token, a taken one a notice to its owner. Mail is queued, never awaited.

use super::session::guest;
use super::{BodyFields, UserJson};
use crate::auth::{Digest, LoginAttempt, Signup, random_b64};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientAddr, RequestId, WriteContext};
use crate::mail::{Mail, MailKind};
use crate::reply::Reply;
use crate::routes::auth::me::current_user;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::auth::{EMAIL_MAX_BYTES, Email, check_password};
use plinth_core::{ErrorCode, Role};
use plinth_store::{
    AuditEvent, Event, NewAccountToken, NewUser, StoreError, TokenPurpose, TokenUse, User, WriteCtx,
};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

/// The one body of every accepted request of these flows.
#[derive(Serialize, ToSchema)]
pub(crate) struct Pending {
    /// Always `pending`: what happens next arrives by mail, if anything does.
    #[schema(example = "pending")]
    status: &'static str,
}

/// `202 {"data":{"status":"pending"}}`.
pub(super) fn pending() -> Result<Reply, ApiError> {
    Ok(Reply::data(&Pending { status: "pending" })?.with_status(StatusCode::ACCEPTED))
}

/// `POST /api/v1/auth/signup`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "never built: only its schema is used")]
pub(crate) struct SignupBody {
    /// The new account's email (at most 254 bytes).
    email: String,
    /// Its password, by the same policy as any account's.
    password: String,
}

/// A body holding a mailed token.
#[derive(ToSchema)]
#[allow(dead_code, reason = "never built: only its schema is used")]
pub(crate) struct TokenBody {
    /// The token from the message's `token:` line (or its link).
    token: String,
}

/// The 503 of the flows that need mail when no SMTP relay is configured.
pub(super) fn require_mail(state: &AppState) -> Result<(), ApiError> {
    if state.mailer().enabled() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Unavailable,
        "email is not configured: set PLINTH_SMTP_URL and PLINTH_SMTP_FROM; see docs/auth.md",
    ))
}

/// The answer to a token that is unknown, spent, voided, expired, or for something else.
pub(super) fn bad_token() -> ApiError {
    ApiError::invalid(
        "token",
        "is not a valid token: unknown, already used, or expired",
    )
}

/// The longest token looked up (a real one has 43 characters).
const TOKEN_MAX_CHARS: usize = 128;

/// A new token for `user_id`, and what the store keeps of it.
pub(super) fn new_token(
    state: &AppState,
    purpose: TokenPurpose,
    user_id: Uuid,
    email: Option<Email>,
    ttl: Duration,
) -> Result<(String, NewAccountToken), ApiError> {
    let token = random_b64::<32>()?;
    let stored = NewAccountToken {
        purpose,
        user_id,
        token_hash: Digest::of(&token).into_string(),
        email,
        expires_at: state.auth().after(ttl),
    };
    Ok((token, stored))
}

/// Whole minutes of `ttl`, for the messages.
pub(super) fn minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60)
}

/// Reads `{"token", …}`: the token (with the other named fields checked by `more`), and
/// spends it with `apply`; `None` from the store is [`bad_token`].
pub(super) async fn redeem(
    state: &AppState,
    ctx: &WriteCtx,
    token: &str,
    apply: TokenUse,
) -> Result<User, ApiError> {
    if token.is_empty() || token.chars().count() > TOKEN_MAX_CHARS {
        return Err(bad_token());
    }
    let hash = Digest::of(token);
    let now = state.auth().now();
    match state
        .store()
        .redeem_account_token(ctx, hash.as_str(), now, apply)
        .await
    {
        Ok(Some(user)) => {
            state.auth().forget_credentials();
            Ok(user)
        }
        Ok(None) => Err(bad_token()),
        // Only an email change can meet one: its new address got an account meanwhile.
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            ErrorCode::Conflict,
            "that address got an account meanwhile",
        )),
        Err(e) => Err(e.into()),
    }
}

/// A confirmation whose body is only `{"token"}` (verify an address, confirm an address
/// change): mail must be configured, then the token is spent as `apply` says.
pub(super) async fn redeem_body(
    state: &AppState,
    request_id: &str,
    address: &str,
    body: &serde_json::Value,
    apply: TokenUse,
) -> Result<User, ApiError> {
    require_mail(state)?;
    let mut fields = BodyFields::new(body, &["token"], &[])?;
    let token = fields.required("token");
    fields.finish()?;
    redeem(
        state,
        &guest(request_id, address),
        token.unwrap_or_default(),
        apply,
    )
    .await
}

/// Counts the attempt against the login limits of `account` (normalised) from `address`.
pub(super) async fn throttle(
    state: &AppState,
    ctx: &WriteCtx,
    account: &str,
    address: &str,
    route: &'static str,
) -> Result<(), ApiError> {
    state
        .auth()
        .check_login(
            state.store().as_ref(),
            &LoginAttempt {
                account,
                address,
                ctx,
                route,
            },
        )
        .await?;
    Ok(())
}

/// An email field: at most [`EMAIL_MAX_BYTES`] (checked before anything else costs), and a
/// valid address.
pub(super) fn email_field(fields: &mut BodyFields<'_>, value: Option<&str>) -> Option<Email> {
    let value = value?;
    if value.trim().len() > EMAIL_MAX_BYTES {
        fields.reject(
            "email",
            format!("must be at most {EMAIL_MAX_BYTES} bytes long"),
        );
        return None;
    }
    match Email::parse(value) {
        Ok(e) => Some(e),
        Err(reason) => {
            fields.reject("email", reason);
            None
        }
    }
}

/// `POST /api/v1/auth/signup`: creates a `user` account for a fresh address (and mails it
/// a verification token); for a taken one creates nothing and mails the owner a notice.
/// Both answer the same `202`.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", security(()),
    request_body = SignupBody,
    responses(
        (status = 202, description = "accepted; the same answer for a fresh and a taken address", body = Pending),
        (status = 400, description = "a missing, unknown or non-string field, a bad or too long email, a domain sign-up does not accept, or a weak password"),
        (status = 403, description = "sign-up is off"),
        (status = 429, description = "too many attempts; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn signup(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let config = state.auth().config();
    if config.signup == Signup::Off {
        return Err(ApiError::new(ErrorCode::Forbidden, "sign-up is off"));
    }
    let mut fields = BodyFields::new(&body, &["email", "password"], &[])?;
    let (email, password) = (fields.required("email"), fields.required("password"));
    let email = email_field(&mut fields, email);
    if let Some(e) = &email {
        let domain = e.normalized().rsplit_once('@').map_or("", |(_, d)| d);
        if !config.signup_domains.is_empty() && !config.signup_domains.iter().any(|d| d == domain) {
            fields.reject("email", "sign-up does not accept addresses of this domain");
        }
    }
    if let Some(p) = password
        && let Err(reason) = check_password(p, email.as_ref())
    {
        fields.reject("password", reason);
    }
    fields.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::invalid("body", "email and password are required"));
    };
    let ctx = guest(&request_id, &address);
    let route = "/api/v1/auth/signup";
    throttle(&state, &ctx, email.normalized(), &address, route).await?;
    // The same work for a fresh and a taken address: the hash, the lookup, one write.
    let hash = state.auth().hash_password(password).await?;
    let taken = state.store().find_user_by_email(&email).await?;
    let ttl = config.verify_email_ttl;
    let owner = match taken {
        Some(owner) => Some(owner),
        None => {
            let (token, stored) = if state.mailer().enabled() {
                let (t, s) = new_token(&state, TokenPurpose::VerifyEmail, Uuid::nil(), None, ttl)?;
                (Some(t), Some(s))
            } else {
                (None, None)
            };
            let new = NewUser {
                email: email.clone(),
                password_hash: hash,
                role: Role::User,
            };
            match state.store().sign_up(&ctx, new, stored).await {
                Ok(user) => {
                    tracing::info!(target: "plinth::security", event = "signup", request_id = %request_id, user_id = %user.id, "an account was signed up");
                    if let Some(token) = token {
                        state.mailer().send(Mail {
                            kind: MailKind::VerifyEmail,
                            to: user.email.clone(),
                            token: Some(token),
                            minutes: minutes(ttl),
                        });
                    }
                    None
                }
                // Taken between the lookup and the write: as if taken before.
                Err(StoreError::Conflict { .. }) => {
                    state.store().find_user_by_email(&email).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if let Some(owner) = owner {
        let event = AuditEvent {
            event: Event::Signup,
            target: Some(owner.id),
            changes: json!({ "taken": true }),
        };
        state.store().audit_event(&ctx, event).await?;
        tracing::warn!(target: "plinth::security", event = "signup_taken", request_id = %request_id, user_id = %owner.id, "a sign-up named an address that has an account");
        state.mailer().send(Mail {
            kind: MailKind::SignupExists,
            to: owner.email.clone(),
            token: None,
            minutes: 0,
        });
    }
    pending()
}

/// `POST /api/v1/auth/verify-email`: spends a verification token; the account's address
/// is verified from then on.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", security(()),
    request_body = TokenBody,
    responses(
        (status = 200, description = "the account, its address verified", body = UserJson),
        (status = 400, description = "a missing, unknown or non-string field, or a token that is unknown, used, expired or for something else"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn verify_email(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let user = redeem_body(&state, &request_id, &address, &body, TokenUse::VerifyEmail).await?;
    tracing::info!(target: "plinth::security", event = "email_verified", request_id = %request_id, user_id = %user.id, "an address was verified");
    Reply::data(&UserJson::from(&user))
}

/// `POST /api/v1/auth/verify-email/resend`: mails the caller a new verification token (the
/// older ones stop working).
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "a new token is on its way", body = Pending),
        (status = 401, description = "no credential, or a bad one"),
        (status = 409, description = "the address is already verified"),
        (status = 429, description = "asked too often; see Retry-After"),
        (status = 503, description = "email is not configured"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn resend_verification(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    RequestId(request_id): RequestId,
) -> Result<Reply, ApiError> {
    let user = current_user(&state, &caller).await?;
    require_mail(&state)?;
    if user.email_verified_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the address is already verified",
        ));
    }
    // Each request mails: it counts against the login limits of the account, so it cannot
    // be used to flood the address.
    let (account, address) = (user.email.to_lowercase(), client_addr(&ctx));
    let route = "/api/v1/auth/verify-email/resend";
    throttle(&state, &ctx, &account, &address, route).await?;
    let ttl = state.auth().config().verify_email_ttl;
    let (token, stored) = new_token(&state, TokenPurpose::VerifyEmail, user.id, None, ttl)?;
    state.store().issue_account_token(&ctx, stored).await?;
    tracing::info!(target: "plinth::security", event = "email_verify_requested", request_id = %request_id, user_id = %user.id, "a verification token was mailed");
    state.mailer().send(Mail {
        kind: MailKind::VerifyEmail,
        to: user.email,
        token: Some(token),
        minutes: minutes(ttl),
    });
    pending()
}

/// The client's address a write context was made with.
fn client_addr(ctx: &WriteCtx) -> String {
    ctx.client_addr.clone().unwrap_or_default()
}

/// The refusal of a login (by any method) to an account whose address is not verified
/// while `auth.require_verified_email` is on; a new verification token is mailed, so the
/// owner, who just proved the password, can finish.
pub(super) async fn unverified(
    state: &AppState,
    ctx: &WriteCtx,
    user: &User,
    method: &'static str,
) -> ApiError {
    tracing::warn!(target: "plinth::security", event = "login_unverified", request_id = %ctx.request_id, user_id = %user.id, via = method, "login refused: the address is not verified");
    let ttl = state.auth().config().verify_email_ttl;
    let ctx = WriteCtx {
        actor: plinth_core::Principal::user(user.id, user.role),
        ..ctx.clone()
    };
    let issued = match new_token(state, TokenPurpose::VerifyEmail, user.id, None, ttl) {
        Ok((token, stored)) => state
            .store()
            .issue_account_token(&ctx, stored)
            .await
            .map(|()| token)
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match issued {
        Ok(token) => state.mailer().send(Mail {
            kind: MailKind::VerifyEmail,
            to: user.email.clone(),
            token: Some(token),
            minutes: minutes(ttl),
        }),
        Err(e) => return e,
    }
    ApiError::new(
        ErrorCode::Forbidden,
        "the email address is not verified yet: a new verification message is on its way",
    )
}

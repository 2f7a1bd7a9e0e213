//! `/api/v1/auth/mfa…`: a signed-in user's TOTP second factor: enrol, confirm (recovery
//! codes shown once), new recovery codes, disable, and whether it is on. Managed with an
//! access token from a sign-in only: an API key is refused (403), as it never signs in.
//!
//! The secret is sealed at rest; recovery codes are stored as digests; a code's time step
//! is spent atomically in the store, so no code is accepted twice.

use super::BodyFields;
use super::me::current_user;
use super::mfa_login::{Verdict, check_code, code_failed, totp_on};
use crate::auth::{Code, LoginAttempt, new_recovery_codes, new_secret, otpauth_url};
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, ClientAddr, WriteContext};
use crate::openapi::shapes::{MfaConfirm, MfaProof};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use plinth_core::{ErrorCode, Role};
use plinth_store::{AuditEvent, Event, User, WriteCtx};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// A new, unconfirmed TOTP secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct TotpEnrolment {
    /// The shared secret (base32), for typing into an authenticator app.
    secret: String,
    /// The `otpauth://totp/…` URL: the payload of the QR code to scan.
    otpauth_url: String,
}

/// Recovery codes, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryCodes {
    /// Ten single-use codes (`XXXX-XXXX-XXXX-XXXX`), each accepted where a TOTP code is.
    recovery_codes: Vec<String>,
}

/// Whether the caller's second factor is on.
#[derive(Serialize, ToSchema)]
pub(crate) struct MfaStatus {
    /// Whether TOTP is on (confirmed).
    totp_enabled: bool,
    /// Unused recovery codes left.
    recovery_codes_left: u64,
    /// Whether this account must turn TOTP on to act with its role (an admin while
    /// `auth.require_mfa_for_admins` is on).
    required: bool,
}

/// The signed-in user, refusing API keys (after 401 for no credential).
async fn session_user(state: &AppState, caller: &Caller) -> Result<User, ApiError> {
    let user = current_user(state, caller).await?;
    if caller.1.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "second factors are managed with an access token from a sign-in, not an API key",
        ));
    }
    Ok(user)
}

/// `POST /api/v1/auth/mfa/totp`: a new secret to enrol, replacing an unconfirmed one.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a new, unconfirmed secret and its QR payload", body = TotpEnrolment),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 409, description = "TOTP is on already (disable it first)"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn enrol_totp(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
) -> Result<Reply, ApiError> {
    let user = session_user(&state, &caller).await?;
    let secret = new_secret()?;
    let url = otpauth_url(&secret, &user.email)?;
    if !state.store().begin_totp(&ctx, user.id, &secret).await? {
        return Err(ApiError::new(ErrorCode::Conflict, "TOTP is on already"));
    }
    tracing::info!(target: "plinth::security", event = "mfa_enrol", request_id = %ctx.request_id, user_id = %user.id, "TOTP enrolment started");
    Reply::data(&TotpEnrolment {
        secret,
        otpauth_url: url,
    })
}

/// `POST /api/v1/auth/mfa/totp/confirm`: the first code turns TOTP on.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/confirm", tag = "auth",
    security(("bearer" = [])),
    request_body = MfaConfirm,
    responses(
        (status = 200, description = "TOTP is on; ten recovery codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "a wrong code, or a missing, unknown or non-string field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 409, description = "no enrolment to confirm, or TOTP is on already"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn confirm_totp(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    req: Request,
) -> Result<Reply, ApiError> {
    let user = session_user(&state, &caller).await?;
    let body = ApiJson::read(req, &state).await?;
    let mut fields = BodyFields::new(&body, &["code"], &[])?;
    let code = fields.required("code");
    fields.finish()?;
    let pending = state
        .store()
        .get_totp(user.id)
        .await?
        .filter(|t| !t.enabled())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                "no TOTP enrolment to confirm (POST /api/v1/auth/mfa/totp first)",
            )
        })?;
    let step = match Code::parse(code.unwrap_or_default()) {
        Code::Totp(c) => state.auth().totp_step(&pending.secret, &c)?,
        _ => None,
    };
    let Some(step) = step else {
        code_failed(
            &state,
            &ctx,
            &user,
            Verdict::Wrong,
            "/api/v1/auth/mfa/totp/confirm",
        )
        .await?;
        return Err(ApiError::invalid(
            "code",
            "is not the current code of the new secret",
        ));
    };
    let codes = new_recovery_codes()?;
    let hashes = codes.iter().map(|(_, d)| d.as_str().to_owned()).collect();
    if !state
        .store()
        .confirm_totp(&ctx, user.id, step, hashes)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "no TOTP enrolment to confirm",
        ));
    }
    // An admin required to use a second factor acts as one from now on.
    state.auth().forget_credentials();
    tracing::info!(target: "plinth::security", event = "mfa_enabled", request_id = %ctx.request_id, user_id = %user.id, "TOTP turned on");
    Reply::data(&RecoveryCodes {
        recovery_codes: codes.into_iter().map(|(shown, _)| shown).collect(),
    })
}

/// Checks `{"password", "code"}` for a change to the second factor itself: the password
/// (counted by the login limiters, like a login) and then a TOTP or recovery code.
async fn prove(
    state: &AppState,
    ctx: &WriteCtx,
    user: &User,
    address: &str,
    body: &serde_json::Value,
    route: &'static str,
) -> Result<(), ApiError> {
    let mut fields = BodyFields::new(body, &["password", "code"], &[])?;
    let (password, code) = (fields.required("password"), fields.required("code"));
    fields.finish()?;
    let account = user.email.to_lowercase();
    let attempt = LoginAttempt {
        account: &account,
        address,
        ctx,
        route,
    };
    state
        .auth()
        .check_login(state.store().as_ref(), &attempt)
        .await?;
    if !state
        .auth()
        .verify_password(Some(&user.password_hash), password.unwrap_or_default())
        .await
    {
        let event = AuditEvent {
            event: Event::LoginFailed,
            target: Some(user.id),
            changes: json!({}),
        };
        state.store().audit_event(ctx, event).await?;
        return Err(ApiError::invalid(
            "password",
            "is not the account's password",
        ));
    }
    let verdict = check_code(state, ctx, user, code.unwrap_or_default()).await?;
    if !verdict.passed() {
        code_failed(state, ctx, user, verdict, route).await?;
        return Err(ApiError::invalid(
            "code",
            "is not a current TOTP code or an unused recovery code",
        ));
    }
    state.auth().login_succeeded(&account, address);
    Ok(())
}

/// `DELETE /api/v1/auth/mfa/totp` with `{"password", "code"}`: turns TOTP off.
#[utoipa::path(delete, path = "/api/v1/auth/mfa/totp", tag = "auth",
    security(("bearer" = [])),
    request_body = MfaProof,
    responses(
        (status = 204, description = "TOTP is off: secret and recovery codes removed"),
        (status = 400, description = "a wrong password or code, or a missing, unknown or non-string field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 409, description = "TOTP is not on"),
        (status = 429, description = "too many wrong passwords or codes; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn disable_totp(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Result<Reply, ApiError> {
    let user = session_user(&state, &caller).await?;
    let body = ApiJson::read(req, &state).await?;
    if !totp_on(&state, &user).await? {
        BodyFields::new(&body, &["password", "code"], &[])?.finish()?;
        return Err(ApiError::new(ErrorCode::Conflict, "TOTP is not on"));
    }
    prove(
        &state,
        &ctx,
        &user,
        &address,
        &body,
        "/api/v1/auth/mfa/totp",
    )
    .await?;
    if !state.store().disable_totp(&ctx, user.id).await? {
        return Err(ApiError::new(ErrorCode::Conflict, "TOTP is not on"));
    }
    state.auth().forget_credentials();
    tracing::warn!(target: "plinth::security", event = "mfa_disabled", request_id = %ctx.request_id, user_id = %user.id, "TOTP turned off");
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/auth/mfa/recovery-codes` with `{"password", "code"}`: ten new codes; the
/// old ones are void.
#[utoipa::path(post, path = "/api/v1/auth/mfa/recovery-codes", tag = "auth",
    security(("bearer" = [])),
    request_body = MfaProof,
    responses(
        (status = 200, description = "ten new recovery codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "a wrong password or code, or a missing, unknown or non-string field"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "sent with an API key"),
        (status = 409, description = "TOTP is not on"),
        (status = 429, description = "too many wrong passwords or codes; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn new_codes(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ClientAddr(address): ClientAddr,
    req: Request,
) -> Result<Reply, ApiError> {
    let user = session_user(&state, &caller).await?;
    let body = ApiJson::read(req, &state).await?;
    if !totp_on(&state, &user).await? {
        BodyFields::new(&body, &["password", "code"], &[])?.finish()?;
        return Err(ApiError::new(ErrorCode::Conflict, "TOTP is not on"));
    }
    let route = "/api/v1/auth/mfa/recovery-codes";
    prove(&state, &ctx, &user, &address, &body, route).await?;
    let codes = new_recovery_codes()?;
    let hashes = codes.iter().map(|(_, d)| d.as_str().to_owned()).collect();
    if !state
        .store()
        .replace_recovery_codes(&ctx, user.id, hashes)
        .await?
    {
        return Err(ApiError::new(ErrorCode::Conflict, "TOTP is not on"));
    }
    tracing::info!(target: "plinth::security", event = "recovery_codes_replaced", request_id = %ctx.request_id, user_id = %user.id, "new recovery codes");
    Reply::data(&RecoveryCodes {
        recovery_codes: codes.into_iter().map(|(shown, _)| shown).collect(),
    })
}

/// `GET /api/v1/auth/mfa`: whether the caller's second factor is on.
#[utoipa::path(get, path = "/api/v1/auth/mfa", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "the caller's second factor", body = MfaStatus),
        (status = 401, description = "no credential, or a bad one"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn read_mfa(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Reply, ApiError> {
    let user = current_user(&state, &caller).await?;
    let on = totp_on(&state, &user).await?;
    let left = if on {
        state.store().recovery_codes_left(user.id).await?
    } else {
        0
    };
    Reply::data(&MfaStatus {
        totp_enabled: on,
        recovery_codes_left: left,
        required: state.auth().config().require_mfa_for_admins && user.role == Role::Admin,
    })
}

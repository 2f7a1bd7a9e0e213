//! A sign-in's second step: with TOTP on, `complete_login` answers a short-lived, single-use
//! `mfa_token` instead of a token pair, and `POST /api/v1/auth/login/mfa` trades it and a
//! code for the pair. Also how any code is checked (`check_code`: a TOTP step spent once, or
//! a recovery code used up) and a failure recorded, for this and for `mfa`.

use super::BodyFields;
use super::session::{guest, issue_session};
use super::sessions::UserAgent;
use crate::auth::{Code, Digest, LoginAttempt, MFA_TOKEN_PREFIX, TokenPair, new_mfa_token};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientAddr, RequestId};
use crate::openapi::shapes::MfaLogin;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use plinth_core::{ErrorCode, Principal};
use plinth_store::{AuditEvent, Event, User, WriteCtx};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

const ROUTE: &str = "/api/v1/auth/login/mfa";

/// The first step's answer when a second factor is on: no tokens yet.
#[derive(Serialize, ToSchema)]
pub(crate) struct MfaChallenge {
    /// Always `true`.
    mfa_required: bool,
    /// Sent with a code to `POST /api/v1/auth/login/mfa`: single use, for five minutes and
    /// at most five wrong codes.
    mfa_token: String,
}

/// What a sign-in answers: a token pair, or (with TOTP on) a second step to take.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Named by the OpenAPI document only; replies serialise the parts.
pub(crate) enum SignIn {
    /// Signed in.
    Tokens(TokenPair),
    /// A code is needed.
    SecondFactor(MfaChallenge),
}

/// Starts the second step for `user`, who proved the first factor with `method`.
pub(super) async fn challenge(
    state: &AppState,
    ctx: &WriteCtx,
    user: &User,
    method: &'static str,
) -> Result<Reply, ApiError> {
    let (token, digest) = new_mfa_token()?;
    state
        .store()
        .insert_mfa_token(user.id, digest.as_str(), state.auth().mfa_token_expiry())
        .await?;
    tracing::info!(target: "plinth::security", event = "mfa_required", request_id = %ctx.request_id, user_id = %user.id, via = method, "first factor passed; a second is required");
    Reply::data(&MfaChallenge {
        mfa_required: true,
        mfa_token: token,
    })
}

fn bad_token() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "invalid or expired sign-in token",
    )
}

/// `POST /api/v1/auth/login/mfa`: `{"mfa_token", "code"}` (a TOTP code, or a recovery code,
/// which is then used up) → the token pair.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", security(()),
    request_body = MfaLogin,
    responses(
        (status = 200, description = "a token pair", body = TokenPair),
        (status = 400, description = "a missing, unknown or non-string field"),
        (status = 401, description = "an unknown, expired, used or voided sign-in token, or a wrong or replayed code"),
        (status = 429, description = "too many failed attempts; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn login_mfa(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let mut fields = BodyFields::new(&body, &["mfa_token", "code"], &[])?;
    let (token, code) = (fields.required("mfa_token"), fields.required("code"));
    fields.finish()?;
    let (token, code) = (token.unwrap_or_default(), code.unwrap_or_default());
    if !token.starts_with(MFA_TOKEN_PREFIX) || token.len() > 128 {
        return Err(bad_token());
    }
    let digest = Digest::of(token);
    let now = state.auth().now();
    let user_id = state
        .store()
        .find_mfa_token(digest.as_str(), now)
        .await?
        .ok_or_else(bad_token)?;
    let user = state
        .store()
        .get_user(user_id)
        .await?
        .ok_or_else(bad_token)?;
    // The session keeps the client's user agent, as a one-step login's does.
    let guest = WriteCtx {
        user_agent,
        ..guest(&request_id, &address)
    };
    let account = user.email.to_lowercase();
    let attempt = LoginAttempt {
        account: &account,
        address: &address,
        ctx: &guest,
        route: ROUTE,
    };
    state
        .auth()
        .check_login(state.store().as_ref(), &attempt)
        .await?;
    let ctx = WriteCtx {
        actor: Principal::user(user.id, user.role),
        ..guest
    };
    let verdict = check_code(&state, &ctx, &user, code).await?;
    if !verdict.passed() {
        code_failed(&state, &ctx, &user, verdict, ROUTE).await?;
        if state.auth().mfa_token_failed(&digest) {
            state.store().spend_mfa_token(digest.as_str(), now).await?;
            tracing::warn!(target: "plinth::security", event = "mfa_token_voided", request_id = %request_id, user_id = %user.id, "too many wrong codes; the sign-in token is void");
        }
        return Err(ApiError::new(ErrorCode::Unauthenticated, "invalid code"));
    }
    // Spent only now, so a mistyped code can be retried; of two requests racing with one
    // token, one gets the pair.
    if state
        .store()
        .spend_mfa_token(digest.as_str(), state.auth().now())
        .await?
        .is_none()
    {
        return Err(bad_token());
    }
    state.auth().login_succeeded(&account, &address);
    let method = if verdict == Verdict::Recovery {
        "recovery_code"
    } else {
        "totp"
    };
    issue_session(&state, ctx, &user, method).await
}

/// How a second-factor code fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A current TOTP code, its step now spent.
    Totp,
    /// An unused recovery code, now spent.
    Recovery,
    /// A TOTP code of a step already used.
    Replayed,
    /// Anything else (wrong, malformed, or no TOTP on).
    Wrong,
}

impl Verdict {
    pub(crate) fn passed(self) -> bool {
        matches!(self, Self::Totp | Self::Recovery)
    }
}

/// Checks `raw` as `user`'s second factor, spending what it uses.
pub(crate) async fn check_code(
    state: &AppState,
    ctx: &WriteCtx,
    user: &User,
    raw: &str,
) -> Result<Verdict, ApiError> {
    let Some(totp) = state
        .store()
        .get_totp(user.id)
        .await?
        .filter(|t| t.enabled())
    else {
        return Ok(Verdict::Wrong);
    };
    match Code::parse(raw) {
        Code::Totp(code) => match state.auth().totp_step(&totp.secret, &code)? {
            Some(step) if state.store().spend_totp_step(user.id, step).await? => Ok(Verdict::Totp),
            Some(_) => Ok(Verdict::Replayed),
            None => Ok(Verdict::Wrong),
        },
        Code::Recovery(digest) => {
            if state
                .store()
                .spend_recovery_code(ctx, user.id, digest.as_str())
                .await?
            {
                tracing::warn!(target: "plinth::security", event = "recovery_code_used", request_id = %ctx.request_id, user_id = %user.id, "a recovery code was spent");
                Ok(Verdict::Recovery)
            } else {
                Ok(Verdict::Wrong)
            }
        }
        Code::Malformed => Ok(Verdict::Wrong),
    }
}

/// Logs and audits a failed second-factor code (never the code).
pub(crate) async fn code_failed(
    state: &AppState,
    ctx: &WriteCtx,
    user: &User,
    verdict: Verdict,
    route: &'static str,
) -> Result<(), ApiError> {
    let reason = if verdict == Verdict::Replayed {
        "replayed"
    } else {
        "wrong"
    };
    tracing::warn!(target: "plinth::security", event = "mfa_failed", request_id = %ctx.request_id, route, user_id = %user.id, reason, "a second-factor code was refused");
    let event = AuditEvent {
        event: Event::MfaFailed,
        target: Some(user.id),
        changes: json!({ "reason": reason }),
    };
    state.store().audit_event(ctx, event).await?;
    Ok(())
}

/// Whether `user` has TOTP on.
pub(crate) async fn totp_on(state: &AppState, user: &User) -> Result<bool, ApiError> {
    Ok(state
        .store()
        .get_totp(user.id)
        .await?
        .is_some_and(|t| t.enabled()))
}

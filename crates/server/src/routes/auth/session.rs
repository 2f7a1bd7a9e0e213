//! Login, refresh and logout.

use super::BodyFields;
use super::mfa_login::{self, SignIn, totp_on};
use super::sessions::UserAgent;
use crate::auth::{Digest, LoginAttempt, REFRESH_PREFIX, TokenPair, new_refresh_token};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientAddr, RequestId};
use crate::openapi::shapes::{Login, RefreshToken};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::ErrorCode;
use plinth_core::Principal;
use plinth_core::auth::{EMAIL_MAX_BYTES, Email};
use plinth_store::{AuditEvent, Event, Refresh, User, WriteCtx};
use serde_json::json;

/// The context of a request that proves no identity yet (the store names a refresh
/// token's user itself where it matters).
pub(crate) fn guest(request_id: &str, address: &str) -> WriteCtx {
    WriteCtx {
        actor: Principal::guest(),
        request_id: request_id.to_owned(),
        client_addr: Some(address.to_owned()),
        via_api_key: false,
        user_agent: None,
        files: Vec::new(),
    }
}

fn refused() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "invalid email or password")
}

fn bad_refresh() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "invalid or expired refresh token",
    )
}

/// `POST /api/v1/auth/login`: a wrong password and an unknown email get the same answer
/// after the same work (one argon2 verification either way); an email longer than any
/// account's is a 400 before any of it.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "a token pair; with TOTP on, `mfa_required` and an `mfa_token` for `POST /api/v1/auth/login/mfa` instead", body = SignIn),
        (status = 400, description = "a missing, unknown or non-string field, or an email too long"),
        (status = 401, description = "a wrong email or password (the same answer for both)"),
        (status = 403, description = "the password was right, but the address must be verified first (a new verification message is mailed)"),
        (status = 429, description = "too many failed logins; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn login(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let mut fields = BodyFields::new(&body, &["email", "password"], &[])?;
    let (email, password) = (fields.required("email"), fields.required("password"));
    // Before any limiter or hashing: an email no account can have costs nothing more, and
    // the limiters never see an unbounded key.
    if email.is_some_and(|e| e.trim().len() > EMAIL_MAX_BYTES) {
        fields.reject(
            "email",
            format!("must be at most {EMAIL_MAX_BYTES} bytes long"),
        );
    }
    fields.finish()?;
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let account = email.trim().to_lowercase();
    // The session keeps the client's user agent, to be told apart in the session list.
    let ctx = WriteCtx {
        user_agent,
        ..guest(&request_id, &address)
    };
    state
        .auth()
        .check_login(
            state.store().as_ref(),
            &LoginAttempt {
                account: &account,
                address: &address,
                ctx: &ctx,
                route: "/api/v1/auth/login",
            },
        )
        .await?;
    let user = match Email::parse(email) {
        Ok(e) => state.store().find_user_by_email(&e).await?,
        Err(_) => None,
    };
    let verified = state
        .auth()
        .verify_password(user.as_ref().map(|u| u.password_hash.as_str()), password)
        .await;
    let tried = user.as_ref().map(|u| u.id);
    let Some(user) = user.filter(|_| verified) else {
        // The account tried, if there is one: an unknown email names nobody, and the email
        // itself is never kept.
        let event = AuditEvent {
            event: Event::LoginFailed,
            target: tried,
            changes: json!({}),
        };
        state.store().audit_event(&ctx, event).await?;
        tracing::warn!(
            target: "plinth::security",
            event = "login_failed",
            request_id = %request_id,
            route = "/api/v1/auth/login",
            address = %address,
            "login failed"
        );
        return Err(refused());
    };
    // With a second factor on, the count of failures is cleared only by the second step.
    if !totp_on(&state, &user).await? {
        state.auth().login_succeeded(&account, &address);
    }
    complete_login(&state, ctx, &user, "password").await
}

/// The end of every way of signing in (a password, an OpenID Connect callback): the user
/// has proved who they are with `method`; this decides what they get: with TOTP on, a
/// second step (`mfa_login::challenge`, no tokens yet); otherwise a new session and its
/// token pair. Checks that apply to every method (a verified address, a second factor)
/// belong here, once.
pub(crate) async fn complete_login(
    state: &AppState,
    ctx: WriteCtx,
    user: &User,
    method: &'static str,
) -> Result<Reply, ApiError> {
    if state.auth().config().require_verified_email && user.email_verified_at.is_none() {
        return Err(super::signup::unverified(state, &ctx, user, method).await);
    }
    if totp_on(state, user).await? {
        return mfa_login::challenge(state, &ctx, user, method).await;
    }
    issue_session(state, ctx, user, method).await
}

/// A new session for `user`, signed in with `method` (every factor it needs proved): its
/// token pair.
pub(super) async fn issue_session(
    state: &AppState,
    ctx: WriteCtx,
    user: &User,
    method: &'static str,
) -> Result<Reply, ApiError> {
    tracing::info!(target: "plinth::security", event = "login", user_id = %user.id, via = method, "login");
    let ctx = WriteCtx {
        actor: Principal::user(user.id, user.role),
        ..ctx
    };
    let pair = state
        .auth()
        .issue_pair(state.store().as_ref(), &ctx, user)
        .await?;
    Reply::data(&pair)
}

/// `POST /api/v1/auth/refresh`: spends the refresh token and returns a new pair. Presenting
/// a spent token revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshToken,
    responses(
        (status = 200, description = "a new token pair; the token sent is spent", body = TokenPair),
        (status = 400, description = "a missing, unknown or non-string field"),
        (status = 401, description = "a bad, expired, spent or revoked refresh token"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn refresh(
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    State(state): State<AppState>,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let mut fields = BodyFields::new(&body, &["refresh_token"], &[])?;
    let token = fields.required("refresh_token");
    fields.finish()?;
    let token = token.unwrap_or_default();
    if !token.starts_with(REFRESH_PREFIX) {
        return Err(bad_refresh());
    }
    let (new_token, new_digest) = new_refresh_token()?;
    let outcome = state
        .store()
        .rotate_refresh(
            &WriteCtx {
                user_agent,
                ..guest(&request_id, &address)
            },
            Digest::of(token).as_str(),
            new_digest.as_str(),
            state.auth().refresh_expiry(),
            state.auth().session_cutoff(),
        )
        .await?;
    match outcome {
        Refresh::Rotated { user_id } => {
            let user = state
                .store()
                .get_user(user_id)
                .await?
                .ok_or_else(bad_refresh)?;
            // The new access token stays in the session, so tickets made from it end with it.
            let session = state
                .store()
                .refresh_family_of(new_digest.as_str())
                .await?
                .ok_or_else(bad_refresh)?;
            let (access_token, expires_in) = state.auth().issue_session_access(&user, session)?;
            Reply::data(&TokenPair {
                access_token,
                refresh_token: new_token,
                token_type: "Bearer",
                expires_in,
            })
        }
        Refresh::Reused { user_id, family } => {
            state.auth().forget_credentials();
            tracing::warn!(
                target: "plinth::security",
                event = "refresh_token_reuse",
                request_id = %request_id,
                route = "/api/v1/auth/refresh",
                user_id = %user_id,
                family = %family,
                "a spent refresh token was presented again; its whole family is revoked"
            );
            Err(bad_refresh())
        }
        Refresh::Invalid => Err(bad_refresh()),
    }
}

/// `POST /api/v1/auth/logout`: revokes the refresh token's family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(()),
    request_body = RefreshToken,
    responses(
        (status = 204, description = "the session is over"),
        (status = 400, description = "a missing, unknown or non-string field"),
        (status = 401, description = "a bad, expired or revoked refresh token"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn logout(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson,
) -> Result<Reply, ApiError> {
    let mut fields = BodyFields::new(&body, &["refresh_token"], &[])?;
    let token = fields.required("refresh_token");
    fields.finish()?;
    let token = token.unwrap_or_default();
    if !token.starts_with(REFRESH_PREFIX)
        || !state
            .store()
            .revoke_refresh_family(&guest(&request_id, &address), Digest::of(token).as_str())
            .await?
    {
        return Err(bad_refresh());
    }
    // Streams opened with a ticket from this session end.
    state.auth().forget_credentials();
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

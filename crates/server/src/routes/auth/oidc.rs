//! Signing in with OpenID Connect: `GET /api/v1/auth/oidc` (the providers),
//! `GET /api/v1/auth/oidc/{provider}/start` (a 302 to the provider) and
//! `GET /api/v1/auth/oidc/{provider}/callback` (the token pair, as a password login).
//!
//! A started login lives in the database (any instance may get its callback) under the
//! digest of its `state` joined with a random value kept in a browser cookie: a callback
//! completes only in the browser that started it (no login CSRF: an attacker cannot make a
//! victim's browser finish a login the attacker started), and only once.

use super::mfa_login::SignIn;
use super::session::{complete_login, guest};
use super::sessions::UserAgent;
use crate::auth::oidc::{OidcError, OidcProvider, TokenProblem, challenge, random_text};
use crate::auth::{Digest, Signup};
use crate::error::ApiError;
use crate::extract::{ClientAddr, RequestId};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::ErrorCode;
use plinth_core::auth::Email;
use plinth_store::{
    AuditEvent, Event, OidcOutcome, OidcRefusal, OidcSignIn, PendingOidcLogin, WriteCtx,
};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use utoipa::ToSchema;

/// The cookie that binds a started login to its browser.
const COOKIE: &str = "plinth_oidc";
/// How long a started login may be completed.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// The longest `state`, `code` or cookie value read.
const MAX_PARAM: usize = 4096;

/// The providers a login page may offer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OidcProviders {
    /// Configured provider names, each signed in with at
    /// `/api/v1/auth/oidc/{name}/start`.
    providers: Vec<String>,
}

/// The configured OpenID Connect providers.
#[utoipa::path(get, path = "/api/v1/auth/oidc", tag = "auth", security(()),
    responses((status = 200, description = "the provider names", body = OidcProviders)))]
pub(super) async fn list_providers(State(state): State<AppState>) -> Result<Reply, ApiError> {
    let providers = state.auth().oidc().names().into_iter().map(str::to_owned);
    Reply::data(&OidcProviders {
        providers: providers.collect(),
    })
}

fn provider_of<'a>(state: &'a AppState, name: &str) -> Result<&'a OidcProvider, ApiError> {
    state
        .auth()
        .oidc()
        .provider(name)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such sign-in provider"))
}

fn redirect_uri(state: &AppState, p: &OidcProvider) -> Result<String, ApiError> {
    let base = state.auth().config().public_url.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "public_url is not configured, which sign-in providers need",
        )
    })?;
    Ok(format!("{base}/api/v1/auth/oidc/{}/callback", p.name))
}

fn unavailable(provider: &str, detail: &str) -> ApiError {
    tracing::warn!(target: "plinth::security", event = "oidc_unavailable", provider, detail, "sign-in provider unavailable");
    ApiError::new(
        ErrorCode::Unavailable,
        "the sign-in provider cannot be reached or answered unusably; try again later",
    )
}

/// The digest a pending login is stored under: of its `state` and the browser's cookie.
fn login_key(state: &str, browser: &str) -> Digest {
    Digest::of(&format!("{state}.{browser}"))
}

/// Starts a sign-in: a 302 to the provider's authorization endpoint.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{provider}/start", tag = "auth", security(()),
    params(("provider" = String, Path, description = "a configured provider's name")),
    responses(
        (status = 302, description = "to the provider, with a `plinth_oidc` cookie binding the login to this browser"),
        (status = 404, description = "no such provider"),
        (status = 503, description = "the provider cannot be reached, or public_url is not set"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = provider_of(&state, &name)?;
    let redirect = redirect_uri(&state, p)?;
    let discovery = match state.auth().oidc().discovery(p).await {
        Ok(d) => d,
        Err(OidcError::Unavailable(detail)) => return Err(unavailable(&p.name, &detail)),
        Err(_) => return Err(unavailable(&p.name, "discovery")),
    };
    let (login_state, nonce, verifier, browser) = (
        random_text(32).map_err(ApiError::internal)?,
        random_text(32).map_err(ApiError::internal)?,
        random_text(32).map_err(ApiError::internal)?,
        random_text(32).map_err(ApiError::internal)?,
    );
    let expires_at =
        plinth_core::Timestamp::from_system(std::time::SystemTime::now() + PENDING_TTL);
    state
        .store()
        .put_oidc_login(PendingOidcLogin {
            state_hash: login_key(&login_state, &browser).into_string(),
            provider: p.name.clone(),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            expires_at,
        })
        .await?;
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", p.scopes.as_str()),
        ("state", login_state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge(&verifier).as_str()),
        ("code_challenge_method", "S256"),
    ])
    .map_err(ApiError::internal)?;
    let endpoint = &discovery.authorization_endpoint;
    let joiner = if endpoint.contains('?') { '&' } else { '?' };
    let secure = if redirect.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={browser}; Max-Age={}; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax{secure}",
        PENDING_TTL.as_secs()
    );
    let reply = Reply::empty(StatusCode::FOUND).with_location(format!("{endpoint}{joiner}{query}"));
    let mut response = reply.into_response();
    let cookie = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The value of the `plinth_oidc` cookie, if sent.
fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_PARAM)
}

/// A refused callback: a security event and an `auth.oidc_failed` entry naming the reason's
/// class, then the answer.
async fn refuse(
    state: &AppState,
    ctx: &WriteCtx,
    provider: &str,
    reason: &str,
    answer: ApiError,
) -> ApiError {
    tracing::warn!(
        target: "plinth::security",
        event = "oidc_failed",
        request_id = %ctx.request_id,
        provider,
        reason,
        "OpenID Connect sign-in refused"
    );
    let event = AuditEvent {
        event: Event::OidcFailed,
        target: None,
        changes: json!({ "provider": provider, "reason": reason }),
    };
    if let Err(e) = state.store().audit_event(ctx, event).await {
        return e.into();
    }
    answer
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// The standard `error` codes of RFC 6749 §4.1.2.1, named back; anything else is not echoed.
const PROVIDER_ERRORS: &[&str] = &[
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "login_required",
    "consent_required",
    "interaction_required",
];

/// Completes a sign-in: the same token pair as a password login.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{provider}/callback", tag = "auth", security(()),
    params(
        ("provider" = String, Path, description = "a configured provider's name"),
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the state sent at the start"),
        ("error" = Option<String>, Query, description = "the provider's refusal"),
    ),
    responses(
        (status = 200, description = "a token pair; with TOTP on, `mfa_required` and an `mfa_token` for `POST /api/v1/auth/login/mfa` instead", body = SignIn),
        (status = 400, description = "a query string that is not valid form encoding"),
        (status = 401, description = "a forged, unknown, expired or replayed state, a missing or mismatched cookie, a provider refusal, a refused code, or an ID token that fails a check (bad signature, nonce, audience, issuer, expiry)"),
        (status = 403, description = "the provider does not say the email is verified, sign-up is off and no account matches, or the account's address must be verified first (a new verification message is mailed)"),
        (status = 404, description = "no such provider"),
        (status = 503, description = "the provider cannot be reached, or public_url is not set"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn callback(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(address): ClientAddr,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = provider_of(&state, &name)?;
    let redirect = redirect_uri(&state, p)?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::invalid("query", "must be form-encoded"))?;
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && v.len() <= MAX_PARAM)
    };
    // The session keeps the client's user agent, as a password login's does.
    let ctx = WriteCtx {
        user_agent,
        ..guest(&request_id, &address)
    };
    let name = p.name.as_str();
    // The pending login is spent whatever follows: a state is never used twice.
    let pending = match (param("state"), browser_cookie(&headers)) {
        (Some(s), Some(b)) => {
            state
                .store()
                .take_oidc_login(login_key(s, b).as_str(), name)
                .await?
        }
        _ => None,
    };
    if let Some(error) = param("error") {
        let named = PROVIDER_ERRORS.iter().find(|e| **e == error);
        let message = match named {
            Some(e) => format!("the sign-in provider refused: {e}"),
            None => "the sign-in provider refused".to_owned(),
        };
        return Err(refuse(
            &state,
            &ctx,
            name,
            "provider_error",
            unauthenticated(message),
        )
        .await);
    }
    let Some(pending) = pending else {
        let reason = if browser_cookie(&headers).is_none() {
            "missing_cookie"
        } else {
            "bad_state"
        };
        let answer = unauthenticated(
            "unknown, expired or already used sign-in state, or a sign-in started in another browser",
        );
        return Err(refuse(&state, &ctx, name, reason, answer).await);
    };
    let Some(code) = param("code") else {
        let answer = unauthenticated("the provider sent no authorization code");
        return Err(refuse(&state, &ctx, name, "no_code", answer).await);
    };
    let claims = match state
        .auth()
        .oidc()
        .exchange(p, &redirect, code, &pending.verifier, &pending.nonce)
        .await
    {
        Ok(c) => c,
        Err(OidcError::Unavailable(detail)) => return Err(unavailable(name, &detail)),
        Err(OidcError::CodeRefused) => {
            let answer = unauthenticated("the provider refused the authorization code");
            return Err(refuse(&state, &ctx, name, "code_refused", answer).await);
        }
        Err(OidcError::Token(problem)) => {
            let answer = unauthenticated(problem.as_str());
            return Err(refuse(&state, &ctx, name, token_reason(problem), answer).await);
        }
    };
    let email = claims.email.as_deref().and_then(|e| Email::parse(e).ok());
    let auth = state.auth().config();
    let domain_ok = email.as_ref().is_some_and(|e| {
        let domain = e
            .normalized()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        auth.signup_domains.is_empty() || auth.signup_domains.contains(&domain)
    });
    let email_verified = claims.email_verified();
    let may_create = auth.signup == Signup::Open && domain_ok;
    // A new account's password is a random one nobody knows, hashed like any other (so a
    // password login costs the same for it); a linked account whose address was never
    // verified gets it too (the store decides): hashed whenever an account may be linked.
    let password_hash = if email_verified {
        let unusable = random_text(32).map_err(ApiError::internal)?;
        state.auth().hash_password(&unusable).await?
    } else {
        String::new()
    };
    let sign_in = OidcSignIn {
        provider: p.name.clone(),
        subject: claims.sub.clone(),
        email,
        email_verified,
        may_create,
        password_hash,
    };
    let user = match state.store().oidc_sign_in(&ctx, sign_in).await? {
        OidcOutcome::Known(u) | OidcOutcome::Created(u) => u,
        OidcOutcome::Linked(u) => {
            // Linking an unverified account ended its password, sessions and keys.
            state.auth().forget_credentials();
            u
        }
        OidcOutcome::Refused(OidcRefusal::UnverifiedEmail) => {
            let answer = ApiError::new(
                ErrorCode::Forbidden,
                "the provider does not say this email address is verified; no account is created or linked from an unverified address",
            );
            return Err(refuse(&state, &ctx, name, "unverified_email", answer).await);
        }
        OidcOutcome::Refused(OidcRefusal::SignupClosed) => {
            let answer = ApiError::new(
                ErrorCode::Forbidden,
                "sign-up is off: only existing accounts may sign in through a provider",
            );
            return Err(refuse(&state, &ctx, name, "signup_closed", answer).await);
        }
    };
    let mut response = complete_login(&state, ctx, &user, "oidc")
        .await?
        .into_response();
    let expired = format!("{COOKIE}=; Max-Age=0; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

fn token_reason(problem: TokenProblem) -> &'static str {
    match problem {
        TokenProblem::Missing | TokenProblem::Malformed => "malformed_token",
        TokenProblem::Algorithm => "bad_algorithm",
        TokenProblem::UnknownKey => "unknown_key",
        TokenProblem::Signature => "bad_signature",
        TokenProblem::Issuer => "wrong_issuer",
        TokenProblem::Audience => "wrong_audience",
        TokenProblem::Expired | TokenProblem::IssuedInFuture => "expired",
        TokenProblem::Nonce => "wrong_nonce",
    }
}

//! `/api/v1/auth/sessions`: the caller's sessions (refresh-token families), listed with
//! where and with what they were last used, and ended one by one or all at once; and the
//! same for admins under `/api/v1/users/{id}/sessions`.
//!
//! Ending a session takes effect at once: its refresh token is revoked, and its access
//! tokens are refused from the next request, here and (through the store's notice) on every
//! other instance, since an access token's session is part of what the credential cache
//! vouches for.

use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs, WriteContext, credential};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use plinth_core::ErrorCode;
use plinth_store::Session;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The most characters of a `User-Agent` kept.
pub(crate) const USER_AGENT_MAX: usize = 256;

/// The client's `User-Agent`, cleaned for storage and display: invalid UTF-8 replaced,
/// control and invisible formatting characters dropped, surrounding space trimmed, at most
/// [`USER_AGENT_MAX`] characters; `None` when absent or empty. Never refuses a request.
#[derive(Debug, Clone)]
pub(crate) struct UserAgent(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(
            parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| clean_user_agent(v.as_bytes())),
        ))
    }
}

/// See [`UserAgent`].
pub(crate) fn clean_user_agent(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && !invisible(*c))
        .collect();
    let kept: String = kept.trim().chars().take(USER_AGENT_MAX).collect();
    let kept = kept.trim_end();
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// Characters that change how text around them reads without showing (bidirectional
/// overrides, zero-width characters, the byte-order mark).
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A session as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = AuthSession)]
struct SessionJson<'a> {
    /// The session's id.
    #[schema(format = "uuid")]
    id: String,
    /// When it started (the login).
    #[schema(format = DateTime)]
    created_at: String,
    /// When it was last used: the login, or its last refresh.
    #[schema(format = DateTime)]
    last_used_at: String,
    /// The client's address at that last use, if recorded.
    client_addr: Option<&'a str>,
    /// The client's `User-Agent` at that last use (cleaned, at most 256 characters), if sent.
    user_agent: Option<&'a str>,
    /// Whether this is the session of the access token that asked.
    current: bool,
}

fn session_json(s: &Session, current: Option<Uuid>) -> SessionJson<'_> {
    SessionJson {
        id: s.id.to_string(),
        created_at: s.created_at.to_string(),
        last_used_at: s.last_used_at.to_string(),
        client_addr: s.client_addr.as_deref(),
        user_agent: s.user_agent.as_deref(),
        current: Some(s.id) == current,
    }
}

fn no_session() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such session")
}

/// A signed-in user's own sessions: a guest is refused with 401, an API key (no session)
/// with 403. Returns the caller's user id and the session of their access token.
fn session_caller(
    caller: &Caller,
    headers: &HeaderMap,
    state: &AppState,
) -> Result<(Uuid, Option<Uuid>), ApiError> {
    let Some(user) = caller.0.user_id() else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "authentication required",
        ));
    };
    let credential = credential(headers)?;
    if credential.is_some_and(crate::auth::is_api_key) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "API keys are not sessions; use an access token from a login",
        ));
    }
    Ok((
        user,
        credential.and_then(|c| state.auth().access_session(c)),
    ))
}

/// The caller's live sessions, newest first; `current` marks the one of the access token
/// that asks.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's live sessions, newest first", body = [SessionJson]),
        (status = 400, description = "a query parameter (none is accepted)"),
        (status = 401, description = "no credential, or a bad, expired or ended one"),
        (status = 403, description = "sent with an API key (keys are not sessions)"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryPairs(query): QueryPairs,
) -> Result<Reply, ApiError> {
    let (user, current) = session_caller(&caller, &headers, &state)?;
    if !query.is_empty() {
        return Err(ApiError::invalid("query", "accepts no parameters"));
    }
    list_of(&state, user, current).await
}

async fn list_of(state: &AppState, user: Uuid, current: Option<Uuid>) -> Result<Reply, ApiError> {
    let sessions = state
        .store()
        .list_sessions(user, state.auth().session_cutoff())
        .await?;
    let data: Vec<SessionJson<'_>> = sessions.iter().map(|s| session_json(s, current)).collect();
    Reply::data(&data)
}

/// Ends one of the caller's sessions at once: its refresh token and its access tokens stop
/// working. An unknown id, another user's and a malformed one get the same 404.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the session's id (a UUID)")),
    responses(
        (status = 204, description = "the session is over"),
        (status = 401, description = "no credential, or a bad, expired or ended one"),
        (status = 403, description = "sent with an API key (keys are not sessions)"),
        (status = 404, description = "no such live session of the caller's"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn end_session(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let (user, current) = session_caller(&caller, &headers, &state)?;
    let family = Uuid::try_parse(&id).map_err(|_| no_session())?;
    if !state.store().revoke_session(&ctx, user, family).await? {
        return Err(no_session());
    }
    state.auth().forget_credentials();
    tracing::info!(
        target: "plinth::security",
        event = "session_revoked",
        request_id = %ctx.request_id,
        user_id = %user,
        session = %family,
        current = current == Some(family),
        "a session was ended from the session list"
    );
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// Ends every session of the caller ("log out everywhere"), the current one included unless
/// `?except=current`.
#[utoipa::path(delete, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    params(("except" = Option<String>, Query, description = "`current`: keep the session of the access token that asks")),
    responses(
        (status = 204, description = "the sessions are over"),
        (status = 400, description = "another parameter, or another value of except"),
        (status = 401, description = "no credential, or a bad, expired or ended one"),
        (status = 403, description = "sent with an API key (keys are not sessions)"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn end_sessions(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    headers: HeaderMap,
    QueryPairs(query): QueryPairs,
) -> Result<Reply, ApiError> {
    let (user, current) = session_caller(&caller, &headers, &state)?;
    let except = match query.as_slice() {
        [] => None,
        [(k, v)] if k == "except" && v == "current" => current,
        _ => return Err(ApiError::invalid("query", "accepts only except=current")),
    };
    end_all(&state, &ctx, user, except).await
}

async fn end_all(
    state: &AppState,
    ctx: &plinth_store::WriteCtx,
    user: Uuid,
    except: Option<Uuid>,
) -> Result<Reply, ApiError> {
    let count = state.store().revoke_sessions(ctx, user, except).await?;
    state.auth().forget_credentials();
    tracing::info!(
        target: "plinth::security",
        event = "sessions_revoked",
        request_id = %ctx.request_id,
        user_id = %user,
        count,
        kept = except.is_some(),
        "every session of an account was ended"
    );
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// An account an admin names: 404 when there is none (or the id is no UUID).
async fn named_user(state: &AppState, caller: &Caller, id: &str) -> Result<Uuid, ApiError> {
    caller.require_admin("only admins manage users")?;
    let missing = || ApiError::new(ErrorCode::NotFound, "no such account");
    let id = Uuid::try_parse(id).map_err(|_| missing())?;
    let user = state.store().get_user(id).await?.ok_or_else(missing)?;
    Ok(user.id)
}

/// Admins: an account's live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/users/{id}/sessions", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "the account's id (a UUID)")),
    responses(
        (status = 200, description = "the account's live sessions, newest first", body = [SessionJson]),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 404, description = "no such account"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn list_user_sessions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let user = named_user(&state, &caller, &id).await?;
    let current = credential(&headers)?.and_then(|c| state.auth().access_session(c));
    list_of(&state, user, current).await
}

/// Admins: ends every session of an account at once (its refresh and access tokens).
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "the account's id (a UUID)")),
    responses(
        (status = 204, description = "the account's sessions are over"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins manage users"),
        (status = 404, description = "no such account"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn end_user_sessions(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let user = named_user(&state, &caller, &id).await?;
    end_all(&state, &ctx, user, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_bounded_printable_and_never_refused() {
        assert_eq!(
            clean_user_agent(b"  curl/8.5 "),
            Some("curl/8.5".to_owned())
        );
        assert_eq!(clean_user_agent(b""), None);
        assert_eq!(clean_user_agent(b" \t\x01 "), None);
        assert_eq!(
            clean_user_agent(b"a\x00b\x1bc\x7fd\xff\xfee"),
            Some("abcd\u{FFFD}\u{FFFD}e".to_owned())
        );
        assert_eq!(
            clean_user_agent("x\u{202E}y\u{200B}z".as_bytes()),
            Some("xyz".to_owned())
        );
        let long = "é".repeat(10_000);
        let kept = clean_user_agent(long.as_bytes()).expect("kept");
        assert_eq!(kept.chars().count(), USER_AGENT_MAX);
    }
}

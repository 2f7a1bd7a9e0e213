//! Plinth's own extractors. Every rejection is an [`ApiError`], so malformed bodies, paths,
//! queries and headers answer with the error envelope like everything else.

use crate::auth::StreamAuth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use plinth_core::{ErrorCode, ModelDef, Principal, RecordId, Role};
use plinth_store::WriteCtx;
use std::sync::Arc;
use uuid::Uuid;

/// A JSON request body (`Content-Type: application/json`), as a JSON value.
#[derive(Debug)]
pub(crate) struct ApiJson(pub(crate) serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for ApiJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

impl ApiJson {
    /// Reads the body of `req` as JSON: for handlers that must check the caller before
    /// looking at the body (extractors all run before a handler, so these take the
    /// `Request` and call this after the access check).
    pub(crate) async fn read<S: Send + Sync>(
        req: Request,
        state: &S,
    ) -> Result<serde_json::Value, ApiError> {
        Self::from_request(req, state).await.map(|Self(v)| v)
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON, sent with Content-Type: application/json",
        ),
        _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server accepts",
        ),
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
            // The parser's message says where (line and column) and what; it holds no internals.
            ApiError::invalid(
                "body",
                r.body_text()
                    .replace("Failed to parse the request body as JSON: ", ""),
            )
        }
        _ => ApiError::invalid("body", "could not be read"),
    }
}

/// The request id: the client's `X-Request-Id` when it is sane, else a fresh one. Set by the
/// request middleware before any handler runs.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) Arc<str>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .ok_or_else(|| ApiError::internal("request id middleware missing"))
    }
}

/// Who is calling. The one place where a request becomes a [`Principal`]: credentials from
/// `Authorization: Bearer <token or API key>` or `X-API-Key`, none for a guest. Present but
/// invalid credentials are refused (401), never downgraded to a guest. Also applies the
/// per-principal request rate limit. Handlers hand the principal to the access policy.
/// The second field is the API key the caller authenticated with, if any (feature flags
/// may name it).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal, pub(crate) Option<Uuid>);

impl Caller {
    /// Admins pass; a user is refused with 403 and `why`, a guest with 401.
    pub(crate) fn require_admin(&self, why: &'static str) -> Result<(), ApiError> {
        match self.0.role() {
            Role::Admin => Ok(()),
            Role::User => Err(ApiError::new(ErrorCode::Forbidden, why)),
            Role::Guest => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "authentication required",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let credential = credential(&parts.headers)?;
        let (principal, api_key) = state
            .auth()
            .authenticate(state.store().as_ref(), credential)
            .await?;
        state.auth().check_request(|| match principal.user_id() {
            Some(id) => id.to_string(),
            None => client_address(parts, state),
        })?;
        let caller = Self(principal, api_key);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Who opens a change-feed stream: as [`Caller`] (a Bearer credential or `X-API-Key`, or
/// none for a guest), or with a stream ticket in `?ticket=`, accepted here and nowhere else.
/// Keeps what the stream was opened with ([`StreamAuth`]), which the stream checks again
/// while it runs. Applies the per-principal request rate limit, as `Caller` does.
#[derive(Debug, Clone)]
pub(crate) struct StreamCaller {
    /// The caller, as the access policy takes it.
    pub(crate) caller: Caller,
    /// The credential, to check again.
    pub(crate) auth: StreamAuth,
}

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ticket = ticket_param(parts.uri.query())?;
        let auth = state
            .auth()
            .open_stream(
                state.store().as_ref(),
                credential(&parts.headers)?,
                ticket.as_deref(),
            )
            .await?;
        state
            .auth()
            .check_request(|| match auth.principal().user_id() {
                Some(id) => id.to_string(),
                None => client_address(parts, state),
            })?;
        let caller = Caller(auth.principal().clone(), auth.api_key());
        parts.extensions.insert(caller.clone());
        Ok(Self { caller, auth })
    }
}

/// The `ticket` query parameter, at most once.
fn ticket_param(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|_| ApiError::invalid("query", "is not a valid URL-encoded query string"))?;
    let mut found = None;
    for (key, value) in pairs {
        if key == "ticket" {
            if found.is_some() {
                return Err(ApiError::invalid("ticket", "given more than once"));
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// A caller who is not using an API key: a guest, or an account with an access token from a
/// login. Only such a caller may create, list, read or revoke API keys, so a stolen key
/// cannot mint keys that outlive it; an API key is refused here with a 403.
#[derive(Debug, Clone)]
pub(crate) struct NotApiKey;

impl FromRequestParts<AppState> for NotApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_request_parts(parts, state).await?;
        if credential(&parts.headers)?.is_some_and(crate::auth::is_api_key) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "API keys cannot manage API keys; use an access token from a login",
            ));
        }
        Ok(Self)
    }
}

/// A write's context: the [`Caller`], for the access policy, and the store's [`WriteCtx`]
/// (the caller as actor, and the request id), made here once for every writing handler.
#[derive(Debug, Clone)]
pub(crate) struct WriteContext {
    /// Who is writing.
    pub(crate) caller: Caller,
    /// What the store records with the write.
    pub(crate) ctx: WriteCtx,
}

impl FromRequestParts<AppState> for WriteContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let RequestId(request_id) = RequestId::from_request_parts(parts, state).await?;
        let ctx = WriteCtx {
            actor: caller.0.clone(),
            request_id: request_id.to_string(),
            client_addr: Some(client_address(parts, state)),
            via_api_key: credential(&parts.headers)?.is_some_and(crate::auth::is_api_key),
            user_agent: None,
            files: Vec::new(),
        };
        Ok(Self { caller, ctx })
    }
}

/// The credential a request carries, if any.
pub(crate) fn credential(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let bad = |what: &str| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            format!("malformed {what} header"),
        )
    };
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| bad("Authorization"))?;
        let (scheme, token) = v.split_once(' ').ok_or_else(|| bad("Authorization"))?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(bad("Authorization"));
        }
        return Ok(Some(token));
    }
    match headers.get("x-api-key") {
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| bad("X-API-Key")),
        None => Ok(None),
    }
}

/// The client's address, by the auth settings' trusted proxies.
fn client_address(parts: &Parts, state: &AppState) -> String {
    crate::auth::client_address(parts, &state.auth().config().trusted_proxies)
}

/// The model named by the first path segment after `/api/v1/`.
#[derive(Debug, Clone)]
pub(crate) struct ModelParam(pub(crate) Arc<ModelDef>);

impl FromRequestParts<AppState> for ModelParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| no_such_route())?;
        lookup(state, &name).map(Self)
    }
}

/// A record address: model and id.
#[derive(Debug, Clone)]
pub(crate) struct RecordParam(pub(crate) Arc<ModelDef>, pub(crate) RecordId);

impl FromRequestParts<AppState> for RecordParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((name, id)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| no_such_route())?;
        let model = lookup(state, &name)?;
        let id = RecordId::parse(&id).map_err(|reason| ApiError::invalid("id", reason))?;
        Ok(Self(model, id))
    }
}

fn lookup(state: &AppState, name: &str) -> Result<Arc<ModelDef>, ApiError> {
    state.model(name).cloned().ok_or_else(no_such_route)
}

/// The 404 for a path that names nothing.
pub(crate) fn no_such_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// The raw query string as ordered `(key, value)` pairs, percent-decoded.
#[derive(Debug)]
pub(crate) struct QueryPairs(pub(crate) Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(Self)
            .map_err(|_| ApiError::invalid("query", "is not a valid URL-encoded query string"))
    }
}

impl QueryPairs {
    /// Refuses any parameter, for routes that take none: naming it rather than ignoring it,
    /// so a client's typo is a `400` and not a silently different answer.
    pub(crate) fn refuse_any(&self) -> Result<(), ApiError> {
        match self.0.first() {
            Some((k, _)) => Err(ApiError::invalid(k, "unknown parameter; this takes none")),
            None => Ok(()),
        }
    }
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKey(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let bad = || {
            ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        };
        let s = v.to_str().map_err(|_| bad())?;
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Self(Some(s.to_owned())))
    }
}

/// The client's address: the TCP peer, or the client a trusted proxy names in
/// `X-Forwarded-For` (see `auth::client_address`, the one place that decides it).
#[derive(Debug, Clone)]
pub(crate) struct ClientAddr(pub(crate) String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_address(parts, state)))
    }
}

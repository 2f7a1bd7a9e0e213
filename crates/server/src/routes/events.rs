//! `GET /api/v1/{model}/events` and `GET /api/v1/events?models=`: the change feed as
//! Server-Sent Events (`crate::realtime`). The query is checked here, as strictly as a
//! list's: a model's filters are the list's own (`ListQuery::parse_within`), and anything
//! else unknown is refused.

use crate::auth::StreamAuth;
use crate::error::ApiError;
use crate::extract::{ClientAddr, ModelParam, QueryPairs, StreamCaller};
use crate::openapi::shapes::ChangeEvent;
use crate::realtime::{Feed, Target};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use plinth_core::policy::list_scope;
use plinth_core::{Error, ErrorCode, FieldError, ListQuery, RecordId};
use std::collections::HashSet;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The most records `id=` names.
const MAX_IDS: usize = 100;
/// The most models one stream follows.
const MAX_MODELS: usize = 32;
/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stream_model_events))
        .routes(routes!(stream_events))
}

/// The changes of one model's records the caller may read, as they happen: `created`,
/// `updated`, `deleted`, `restored`, `purged`, each with the record as `GET` shows it;
/// `ready` once live; `reset` when a resume cannot be served; `end` before the server
/// closes the stream; a `: heartbeat` comment on a quiet stream.
#[utoipa::path(get, path = "/api/v1/{model}/events", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("after" = Option<i64>, Query, minimum = 0, description = "resume after this `seq` (as `Last-Event-ID`, which wins)"),
        ("id" = Option<String>, Query, description = "only these records: up to 100 comma-separated ids"),
        ("filter" = Option<String>, Query, description = "a boolean expression over the fields, e.g. `(status = \"active\" || price < 10) && title ~ \"rust\"`: `=`, `!=`, `<`, `<=`, `>`, `>=`, `~` (contains, case-insensitive), `!~`, `&&`, `||`, `!`, parentheses; only the changes whose record (after the write) satisfies it, ANDed with the `field[op]` filters"),
        ("ticket" = Option<String>, Query, description = "a ticket from `POST /api/v1/events/ticket`, for clients that cannot send `Authorization` (`EventSource`)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "the `id` of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "the stream: every `data` is one JSON object, a change event's shaped as this schema", content_type = "text/event-stream", body = ChangeEvent),
        (status = 400, description = "an unknown parameter, field or operator, a bad value, `limit`, `sort`, `cursor`, `count`, `fields` or `expand`, a bad `filter` expression, or a bad `after`, `Last-Event-ID` or `id`"),
        (status = 401, description = "a bad credential or ticket (or both), or a guest where the model refuses guests"),
        (status = 429, description = "the caller holds `realtime.max_per_principal` streams already; see Retry-After"),
        (status = 503, description = "the server is shutting down, or holds `realtime.max_total` streams; see Retry-After"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn stream_model_events(
    State(state): State<AppState>,
    StreamCaller { caller, auth }: StreamCaller,
    ClientAddr(addr): ClientAddr,
    ModelParam(model): ModelParam,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list_scope(&caller.0, model.policy())?;
    let mut errors = Vec::new();
    let mut after = None;
    let mut ids: Option<HashSet<RecordId>> = None;
    let mut filters = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            // Read by `StreamCaller`.
            "ticket" => {}
            "after" => after_param(&mut after, &value, &mut errors),
            "limit" | "sort" | "cursor" => errors.push(FieldError::new(
                key.as_str(),
                "a stream is not paged or sorted: changes come in the order they were made",
            )),
            "count" | "fields" | "expand" => errors.push(FieldError::new(
                key.as_str(),
                "a stream is not counted or shaped: each event carries the whole record",
            )),
            "id" => match parse_ids(&value) {
                Ok(more) => {
                    let ids = ids.get_or_insert_with(HashSet::new);
                    ids.extend(more);
                    if ids.len() > MAX_IDS {
                        errors.push(FieldError::new("id", format!("at most {MAX_IDS} ids")));
                    }
                }
                Err(reason) => errors.push(FieldError::new("id", reason)),
            },
            _ => filters.push((key, value)),
        }
    }
    let access = caller.0.field_access();
    let query = ListQuery::parse_within(&model, &filters, access, state.query_limits());
    let query = match query {
        Ok(query) => Some(query),
        Err(Error::Invalid { details, .. }) => {
            errors.extend(details);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let after = last_event_id(&headers, &mut errors).or(after);
    let query = match query {
        Some(query) if errors.is_empty() => query,
        _ => return Err(invalid(errors)),
    };
    let feed = Feed {
        principal: caller.0.clone(),
        targets: vec![Target {
            model,
            query: Some(query),
            ids,
        }],
    };
    open(&state, auth, &addr, feed, after).await
}

/// The changes of several models' records the caller may read, on one stream (events as
/// `GET /api/v1/{model}/events` sends them; no filters).
#[utoipa::path(get, path = "/api/v1/events", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("models" = String, Query, description = "up to 32 comma-separated declared models"),
        ("after" = Option<i64>, Query, minimum = 0, description = "resume after this `seq` (as `Last-Event-ID`, which wins)"),
        ("ticket" = Option<String>, Query, description = "a ticket from `POST /api/v1/events/ticket`, for clients that cannot send `Authorization` (`EventSource`)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "the `id` of the last event received: resume after it"),
    ),
    responses(
        (status = 200, description = "the stream: every `data` is one JSON object, a change event's shaped as this schema", content_type = "text/event-stream", body = ChangeEvent),
        (status = 400, description = "no `models`, too many, an unknown parameter, or a bad `after` or `Last-Event-ID`"),
        (status = 401, description = "a bad credential or ticket (or both), or a guest where a model refuses guests"),
        (status = 404, description = "a model that is not declared"),
        (status = 429, description = "the caller holds `realtime.max_per_principal` streams already; see Retry-After"),
        (status = 503, description = "the server is shutting down, or holds `realtime.max_total` streams; see Retry-After"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn stream_events(
    State(state): State<AppState>,
    StreamCaller { caller, auth }: StreamCaller,
    ClientAddr(addr): ClientAddr,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let mut after = None;
    let mut models: Option<String> = None;
    for (key, value) in pairs {
        match key.as_str() {
            // Read by `StreamCaller`.
            "ticket" => {}
            "after" => after_param(&mut after, &value, &mut errors),
            "models" if models.is_some() => {
                errors.push(FieldError::new("models", "given more than once"));
            }
            "models" => models = Some(value),
            _ => errors.push(FieldError::new(
                key.chars().take(64).collect::<String>(),
                "unknown parameter: this stream takes models and after (filters and id only on one model's stream)",
            )),
        }
    }
    let after = last_event_id(&headers, &mut errors).or(after);
    let names: Vec<&str> = match &models {
        None => {
            errors.push(FieldError::new(
                "models",
                "required: comma-separated models",
            ));
            Vec::new()
        }
        Some(list) => {
            let mut names: Vec<&str> = Vec::new();
            for name in list.split(',') {
                if name.is_empty() {
                    errors.push(FieldError::new("models", "an empty model name"));
                } else if !names.contains(&name) {
                    names.push(name);
                }
            }
            if names.len() > MAX_MODELS {
                errors.push(FieldError::new(
                    "models",
                    format!("at most {MAX_MODELS} models"),
                ));
            }
            names
        }
    };
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let shown: String = name.chars().take(64).collect();
        let model = state
            .model(name)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no such model: {shown}")))?;
        list_scope(&caller.0, model.policy())?;
        targets.push(Target {
            model: Arc::clone(&model),
            query: None,
            ids: None,
        });
    }
    let feed = Feed {
        principal: caller.0.clone(),
        targets,
    };
    open(&state, auth, &addr, feed, after).await
}

/// Opens the stream on this instance's feed, for as long as `auth` stays valid.
async fn open(
    state: &AppState,
    auth: StreamAuth,
    addr: &str,
    feed: Feed,
    after: Option<i64>,
) -> Result<Response, ApiError> {
    let realtime = state
        .realtime()
        .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "the change feed is not running"))?;
    realtime.open(state, feed, auth, addr, after).await
}

/// A position: a whole number, at least 0.
fn position(value: &str) -> Option<i64> {
    value.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// Reads `after=`, once.
fn after_param(after: &mut Option<i64>, value: &str, errors: &mut Vec<FieldError>) {
    if after.is_some() {
        errors.push(FieldError::new("after", "given more than once"));
        return;
    }
    match position(value) {
        Some(n) => *after = Some(n),
        None => errors.push(FieldError::new(
            "after",
            "must be a whole number, at least 0 (the id of an event)",
        )),
    }
}

/// `Last-Event-ID`, when sent.
fn last_event_id(headers: &HeaderMap, errors: &mut Vec<FieldError>) -> Option<i64> {
    let value = headers.get(LAST_EVENT_ID)?;
    let parsed = value.to_str().ok().and_then(|v| position(v.trim()));
    if parsed.is_none() {
        errors.push(FieldError::new(
            "Last-Event-ID",
            "must be a whole number, at least 0 (the id of an event)",
        ));
    }
    parsed
}

/// `id=`: comma-separated record ids.
fn parse_ids(value: &str) -> Result<Vec<RecordId>, String> {
    let parts: Vec<&str> = value.split(',').collect();
    if parts.len() > MAX_IDS {
        return Err(format!("at most {MAX_IDS} ids"));
    }
    parts
        .iter()
        .map(|p| {
            RecordId::parse(p).map_err(|_| "must be record ids (UUIDs), comma-separated".to_owned())
        })
        .collect()
}

/// The 400 naming every bad parameter.
fn invalid(errors: Vec<FieldError>) -> ApiError {
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let message = format!("invalid query parameters: {}", names.join(", "));
    Error::invalid(message, errors).into()
}

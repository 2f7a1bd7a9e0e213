//! `GET /api/v1/{model}/{id}`.

use super::shape::Shaped;
use super::{authorize, expand, precheck, validators};
use crate::conditional::{IfModifiedSince, IfNoneMatch};
use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs, RecordParam};
use crate::openapi::shapes::Shaped as ShapedRecord;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::policy::Action;
use plinth_core::query::shape::Shape;

/// One record; `304 Not Modified` when `If-None-Match` names its current version or, without
/// `If-None-Match`, when it is unchanged since `If-Modified-Since` (RFC 9110 §13.2.2). An
/// expanded read has no validators and is never `304`.
#[utoipa::path(get, path = "/api/v1/{model}/{id}", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("fields" = Option<String>, Query, description = "only these keys: comma-separated base or declared fields"),
        ("expand" = Option<String>, Query, description = "comma-separated reference fields (`author`, or `author.publisher`: at most 2 levels) replaced by the records they name, where the caller may read them"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client holds"),
        ("If-Modified-Since" = Option<String>, Header, description = "an HTTP-date"),
    ),
    responses(
        (status = 200, description = "the record", body = ShapedRecord,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "the client's copy is current"),
        (status = 400, description = "the id is not a UUID, a malformed conditional header, or a bad fields or expand"),
        (status = 401, description = "a bad credential, or a guest where the model refuses guests"),
        (status = 403, description = "the caller may not read it (models with hide_forbidden = false)"),
        (status = 404, description = "no such record, or one the caller may not read"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn read_record(
    State(state): State<AppState>,
    caller: Caller,
    RecordParam(model, id): RecordParam,
    if_none_match: IfNoneMatch,
    if_modified_since: IfModifiedSince,
    QueryPairs(pairs): QueryPairs,
) -> Result<Reply, ApiError> {
    precheck(&caller, &model, Action::Read)?;
    let access = caller.0.field_access();
    let shape = Shape::parse(state.schema(), &model, &pairs, access)?;
    let from = state.read_from(&caller);
    let record = state
        .store()
        .get_from(&model, id, from)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Read, Some(&record))?;
    // An expanded read holds other records too, whose changes the record's version does not
    // follow: it has no validators, so no cache revalidates it into a stale copy.
    let expands = !shape.expand.is_empty();
    let unchanged = if expands {
        false
    } else if if_none_match.present() {
        if_none_match.matches(record.version)
    } else {
        if_modified_since.unmodified(record.updated_at)
    };
    if unchanged {
        return Ok(validators(Reply::empty(StatusCode::NOT_MODIFIED), &record));
    }
    let records = std::slice::from_ref(&record);
    let nodes = expand::resolve(&**state.store(), &caller.0, from, records, &shape.expand).await?;
    let shaped = Shaped {
        model: &model,
        record: &record,
        access,
        shape: Some(&shape),
        nodes: &nodes,
    };
    // Otherwise the record's own validators, whatever `fields` says.
    let reply = Reply::data(&shaped)?;
    Ok(if expands {
        reply.private()
    } else {
        validators(reply, &record)
    })
}

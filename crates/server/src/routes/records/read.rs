//! `GET /api/v1/{model}/{id}`.

use super::{authorize, precheck, record_reply, validators};
use crate::conditional::{IfModifiedSince, IfNoneMatch};
use crate::error::ApiError;
use crate::extract::{Caller, RecordParam};
use crate::openapi::shapes::Record;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::policy::Action;

/// One record; `304 Not Modified` when `If-None-Match` names its current version or, without
/// `If-None-Match`, when it is unchanged since `If-Modified-Since` (RFC 9110 §13.2.2).
#[utoipa::path(get, path = "/api/v1/{model}/{id}", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client holds"),
        ("If-Modified-Since" = Option<String>, Header, description = "an HTTP-date"),
    ),
    responses(
        (status = 200, description = "the record", body = Record,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "the client's copy is current"),
        (status = 400, description = "the id is not a UUID, or a malformed conditional header"),
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
) -> Result<Reply, ApiError> {
    precheck(&caller, &model, Action::Read)?;
    let record = state
        .store()
        .get_from(&model, id, state.read_from(&caller))
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Read, Some(&record))?;
    let unchanged = if if_none_match.present() {
        if_none_match.matches(record.version)
    } else {
        if_modified_since.unmodified(record.updated_at)
    };
    if unchanged {
        return Ok(validators(Reply::empty(StatusCode::NOT_MODIFIED), &record));
    }
    record_reply(&model, &record, caller.0.field_access())
}

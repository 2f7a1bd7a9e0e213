//! `GET /api/v1/{model}/{id}`.

use super::{authorize, precheck, record_reply};
use crate::error::ApiError;
use crate::extract::{Caller, IfNoneMatch, RecordParam};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::policy::Action;

/// One record; `304 Not Modified` when `If-None-Match` names its current version.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn read_record(
    State(state): State<AppState>,
    caller: Caller,
    RecordParam(model, id): RecordParam,
    if_none_match: IfNoneMatch,
) -> Result<Reply, ApiError> {
    precheck(&caller, &model, Action::Read)?;
    let record = state
        .store()
        .get_from(&model, id, state.read_from(&caller.0))
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Read, Some(&record))?;
    if if_none_match.matches(record.version) {
        return Ok(Reply::empty(StatusCode::NOT_MODIFIED).with_etag(record.version));
    }
    record_reply(&model, &record, caller.0.field_access())
}

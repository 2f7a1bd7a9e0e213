//! `GET /api/v1/{model}/{id}`.

use super::{authorize, precheck, record_response};
use crate::error::ApiError;
use crate::extract::{Caller, IfNoneMatch, RecordParam, etag};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::policy::Action;

/// One record; `304 Not Modified` when `If-None-Match` names its current version.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn read_record(
    State(state): State<AppState>,
    caller: Caller,
    RecordParam(model, id): RecordParam,
    if_none_match: IfNoneMatch,
) -> Result<Response, ApiError> {
    precheck(&caller, &model, Action::Read)?;
    let record = state
        .store()
        .get_from(&model, id, state.read_from(&caller.0))
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Read, Some(&record))?;
    if if_none_match.matches(record.version) {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(record.version)) {
            res.headers_mut().insert(header::ETAG, v);
        }
        return Ok(res);
    }
    record_response(StatusCode::OK, &model, &record, caller.0.field_access())
}

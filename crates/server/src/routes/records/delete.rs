//! `DELETE /api/v1/{model}/{id}` (soft delete, or purge with `?purge=true`) and
//! `POST /api/v1/{model}/{id}/restore`.

use super::{authorize, precheck, record_response};
use crate::error::ApiError;
use crate::extract::{Caller, IfMatch, QueryPairs, RecordParam, RequestId};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_core::policy::Action;
use plinth_store::WriteCtx;

/// Soft delete: the record's status becomes `deleted` and it leaves default lists. With
/// `?purge=true` (admins only) the record is removed for good: `204 No Content`.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn delete_record(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    RecordParam(model, id): RecordParam,
    IfMatch(expected): IfMatch,
    QueryPairs(query): QueryPairs,
) -> Result<Response, ApiError> {
    let purge = match query.as_slice() {
        [] => false,
        [(k, v)] if k == "purge" && (v == "true" || v == "false") => v == "true",
        _ => {
            return Err(ApiError::invalid(
                "query",
                "DELETE accepts only purge=true or purge=false",
            ));
        }
    };
    let access = caller.0.field_access();
    precheck(
        &caller,
        &model,
        if purge { Action::Purge } else { Action::Delete },
    )?;
    let current = state
        .store()
        .get(&model, id)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    let ctx = WriteCtx {
        actor: caller.0.clone(),
        request_id: request_id.to_string(),
    };
    if purge {
        authorize(&caller, &model, Action::Purge, Some(&current))?;
        state.store().purge(&ctx, &model, id, expected).await?;
        state.note_write(&ctx.actor);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    authorize(&caller, &model, Action::Delete, Some(&current))?;
    let record = state.store().delete(&ctx, &model, id, expected).await?;
    state.note_write(&ctx.actor);
    record_response(StatusCode::OK, &model, &record, access)
}

/// Undoes a soft delete (admins only): status becomes `active`.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn restore_record(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    RecordParam(model, id): RecordParam,
) -> Result<Response, ApiError> {
    precheck(&caller, &model, Action::Restore)?;
    let access = caller.0.field_access();
    let current = state
        .store()
        .get(&model, id)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Restore, Some(&current))?;
    let ctx = WriteCtx {
        actor: caller.0,
        request_id: request_id.to_string(),
    };
    let record = state.store().restore(&ctx, &model, id).await?;
    state.note_write(&ctx.actor);
    record_response(StatusCode::OK, &model, &record, access)
}

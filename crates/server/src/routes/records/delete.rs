//! `DELETE /api/v1/{model}/{id}` (soft delete, or purge with `?purge=true`) and
//! `POST /api/v1/{model}/{id}/restore`.

use super::{authorize, precheck, record_reply};
use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{QueryPairs, RecordParam, WriteContext};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::policy::Action;

/// Soft delete: the record's status becomes `deleted` and it leaves default lists. With
/// `?purge=true` (admins only) the record is removed for good: `204 No Content`.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn delete_record(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    RecordParam(model, id): RecordParam,
    if_match: IfMatch,
    QueryPairs(query): QueryPairs,
) -> Result<Reply, ApiError> {
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
    if purge {
        authorize(&caller, &model, Action::Purge, Some(&current))?;
        let expected = if_match.expect(current.version)?;
        state.store().purge(&ctx, &model, id, expected).await?;
        state.note_write(&ctx.actor);
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    }
    authorize(&caller, &model, Action::Delete, Some(&current))?;
    let expected = if_match.expect(current.version)?;
    let record = state.store().delete(&ctx, &model, id, expected).await?;
    state.note_write(&ctx.actor);
    record_reply(&model, &record, access)
}

/// Undoes a soft delete (admins only): status becomes `active`.
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn restore_record(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    RecordParam(model, id): RecordParam,
) -> Result<Reply, ApiError> {
    precheck(&caller, &model, Action::Restore)?;
    let access = caller.0.field_access();
    let current = state
        .store()
        .get(&model, id)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Restore, Some(&current))?;
    let record = state.store().restore(&ctx, &model, id).await?;
    state.note_write(&ctx.actor);
    record_reply(&model, &record, access)
}

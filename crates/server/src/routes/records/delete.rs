//! `DELETE /api/v1/{model}/{id}` (soft delete, or purge with `?purge=true`) and
//! `POST /api/v1/{model}/{id}/restore`.

use super::{authorize, precheck, record_reply};
use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{QueryPairs, RecordParam, WriteContext};
use crate::files::upload;
use crate::openapi::shapes::Record;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::policy::Action;

/// Soft delete: the record's status becomes `deleted` and it leaves default lists. With
/// `?purge=true` (admins only) the record is removed for good: `204 No Content`.
#[utoipa::path(delete, path = "/api/v1/{model}/{id}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("purge" = Option<bool>, Query, description = "`true` (admins): remove the record for good"),
        ("If-Match" = Option<String>, Header, description = "the ETags the delete expects, or `*`"),
    ),
    responses(
        (status = 200, description = "soft-deleted: the record, its status `deleted`", body = Record),
        (status = 204, description = "purged"),
        (status = 400, description = "a bad id, a parameter other than purge, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "not the caller's record, or a purge by a non-admin"),
        (status = 404, description = "no such record, one the caller may not read, or one already deleted"),
        (status = 409, description = "purging a record still referenced"),
        (status = 412, description = "If-Match names no version the record is at"),
    ))]
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
        let held = upload::held(&state, &model, id).await?;
        state.store().purge(&ctx, &model, id, expected).await?;
        state.note_write(&ctx.actor);
        upload::Body::default().release(&state, held).await;
        return Ok(Reply::empty(StatusCode::NO_CONTENT));
    }
    authorize(&caller, &model, Action::Delete, Some(&current))?;
    let expected = if_match.expect(current.version)?;
    let record = state.store().delete(&ctx, &model, id, expected).await?;
    state.note_write(&ctx.actor);
    record_reply(&model, &record, access)
}

/// Undoes a soft delete (admins only): status becomes `active`.
#[utoipa::path(post, path = "/api/v1/{model}/{id}/restore", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
    ),
    responses(
        (status = 200, description = "restored: status `active`", body = Record),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "only admins restore"),
        (status = 404, description = "no such record"),
        (status = 409, description = "the record is not deleted"),
    ))]
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

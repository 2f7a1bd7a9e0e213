//! `PUT` and `PATCH /api/v1/{model}/{id}`.

use super::{authorize, precheck, record_reply};
use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{ApiJson, RecordParam, WriteContext};
use crate::openapi::shapes::{Record, RecordInput, RecordPatch};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Request, State};
use plinth_core::input::{validate_draft, validate_patch};
use plinth_core::policy::Action;
use plinth_core::{ModelDef, Patch, RecordId};
use std::sync::Arc;

/// Replaces every client-settable value; absent optional fields become null.
#[utoipa::path(put, path = "/api/v1/{model}/{id}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "the ETags the write expects, or `*`"),
    ),
    request_body = RecordInput,
    responses(
        (status = 200, description = "the record as written", body = Record, headers(("ETag" = String))),
        (status = 400, description = "an invalid, unknown or server-set field, a bad id, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "not the caller's record, or a role that may not write here"),
        (status = 404, description = "no such record, or one the caller may not read"),
        (status = 409, description = "the record is deleted, or a unique value is taken"),
        (status = 412, description = "If-Match names no version the record is at"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn replace_record(
    State(state): State<AppState>,
    write_ctx: WriteContext,
    RecordParam(model, id): RecordParam,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    let caller = &write_ctx.caller;
    precheck(caller, &model, Action::Update)?;
    let body = ApiJson::read(req, &state).await?;
    let patch = Patch::from(validate_draft(&model, &body, caller.0.field_access())?)
        .keep_hidden(&model, caller.0.field_access());
    write(&state, write_ctx, &model, id, patch, if_match).await
}

/// Changes only the fields present; `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/{model}/{id}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "the ETags the write expects, or `*`"),
    ),
    request_body = RecordPatch,
    responses(
        (status = 200, description = "the record as written", body = Record, headers(("ETag" = String))),
        (status = 400, description = "an invalid, unknown or server-set field, a bad id, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "not the caller's record, or a role that may not write here"),
        (status = 404, description = "no such record, or one the caller may not read"),
        (status = 409, description = "the record is deleted, or a unique value is taken"),
        (status = 412, description = "If-Match names no version the record is at"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn patch_record(
    State(state): State<AppState>,
    write_ctx: WriteContext,
    RecordParam(model, id): RecordParam,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    let caller = &write_ctx.caller;
    precheck(caller, &model, Action::Update)?;
    let body = ApiJson::read(req, &state).await?;
    let patch = validate_patch(&model, &body, caller.0.field_access())?;
    write(&state, write_ctx, &model, id, patch, if_match).await
}

async fn write(
    state: &AppState,
    WriteContext { caller, ctx }: WriteContext,
    model: &Arc<ModelDef>,
    id: RecordId,
    patch: Patch,
    if_match: IfMatch,
) -> Result<Reply, ApiError> {
    let access = caller.0.field_access();
    let current = state
        .store()
        .get(model, id)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, model, Action::Update, Some(&current))?;
    let expected = if_match.expect(current.version)?;
    let record = state
        .store()
        .update(&ctx, model, id, patch, expected)
        .await?;
    state.note_write(&ctx.actor);
    record_reply(model, &record, access)
}

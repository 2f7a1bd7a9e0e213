//! `PUT` and `PATCH /api/v1/{model}/{id}`.

use super::{authorize, precheck, record_reply};
use crate::conditional::IfMatch;
use crate::error::ApiError;
use crate::extract::{RecordParam, WriteContext};
use crate::files::upload;
use crate::openapi::shapes::{Record, RecordInput, RecordPatch, RecordUpload};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Request, State};
use plinth_core::input::{validate_draft, validate_patch};
use plinth_core::policy::Action;
use plinth_core::{ModelDef, Patch, RecordId};
use plinth_store::WriteCtx;
use std::sync::Arc;

/// Replaces every client-settable value; absent optional fields become null.
#[utoipa::path(put, path = "/api/v1/{model}/{id}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "the ETags the write expects, or `*`"),
    ),
    request_body(content(
        (RecordInput = "application/json"),
        (RecordUpload = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "the record as written", body = Record, headers(("ETag" = String))),
        (status = 400, description = "an invalid, unknown or server-set field, a bad id, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "not the caller's record, or a role that may not write here"),
        (status = 404, description = "no such record, or one the caller may not read"),
        (status = 409, description = "the record is deleted, or a unique value is taken"),
        (status = 412, description = "If-Match names no version the record is at"),
        (status = 413, description = "a file over its field's max_size, or the body over the server's limit"),
        (status = 415, description = "neither JSON nor multipart/form-data (or multipart where no file storage is set)"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn replace_record(
    State(state): State<AppState>,
    write_ctx: WriteContext,
    RecordParam(model, id): RecordParam,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    write(&state, write_ctx, &model, id, req, if_match, true).await
}

/// Changes only the fields present; `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/{model}/{id}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "the ETags the write expects, or `*`"),
    ),
    request_body(content(
        (RecordPatch = "application/json"),
        (RecordUpload = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "the record as written", body = Record, headers(("ETag" = String))),
        (status = 400, description = "an invalid, unknown or server-set field, a bad id, or a malformed If-Match"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "not the caller's record, or a role that may not write here"),
        (status = 404, description = "no such record, or one the caller may not read"),
        (status = 409, description = "the record is deleted, or a unique value is taken"),
        (status = 412, description = "If-Match names no version the record is at"),
        (status = 413, description = "a file over its field's max_size, or the body over the server's limit"),
        (status = 415, description = "neither JSON nor multipart/form-data (or multipart where no file storage is set)"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name(), id = %id))]
pub(super) async fn patch_record(
    State(state): State<AppState>,
    write_ctx: WriteContext,
    RecordParam(model, id): RecordParam,
    if_match: IfMatch,
    req: Request,
) -> Result<Reply, ApiError> {
    write(&state, write_ctx, &model, id, req, if_match, false).await
}

/// A PUT (`replace`) or PATCH: the caller is checked against the record before the body
/// is read (no upload is stored for a record the caller may not write), then the body's
/// files are stored and the record written; afterwards the content the write stopped
/// holding (or never took) is released.
async fn write(
    state: &AppState,
    WriteContext { caller, ctx }: WriteContext,
    model: &Arc<ModelDef>,
    id: RecordId,
    req: Request,
    if_match: IfMatch,
    replace: bool,
) -> Result<Reply, ApiError> {
    let access = caller.0.field_access();
    precheck(&caller, model, Action::Update)?;
    let current = state
        .store()
        .get(model, id)
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, model, Action::Update, Some(&current))?;
    let expected = if_match.expect(current.version)?;
    let body = upload::read(req, state, model, access, Some(&current)).await?;
    let mut held = Vec::new();
    let written = async {
        let patch = if replace {
            Patch::from(validate_draft(model, &body.json, access)?).keep_hidden(model, access)
        } else {
            validate_patch(model, &body.json, access)?
        };
        held = upload::held(state, model, id).await?;
        let ctx = WriteCtx {
            files: body.files.clone(),
            ..ctx
        };
        let record = state
            .store()
            .update(&ctx, model, id, patch, expected)
            .await?;
        state.note_write(&ctx.actor);
        Ok::<_, ApiError>(record)
    }
    .await;
    body.release(state, held).await;
    record_reply(model, &written?, access)
}

//! `POST /api/v1/{model}`.

use super::{authorize, record_reply};
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, ModelParam, WriteContext};
use crate::files::upload;
use crate::openapi::shapes::{Record, RecordInput, RecordUpload};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use plinth_core::input::validate_draft;
use plinth_core::policy::Action;
use plinth_store::{IdempotencyClaim, WriteCtx};
use sha2::{Digest, Sha256};

/// Creates a record: `201 Created` with `Location` and `ETag`. With an `Idempotency-Key`, a
/// retry with the same body gets the same record back; another body gets `409`.
#[utoipa::path(post, path = "/api/v1/{model}", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "a retry with the same key and body gets the first answer again"),
    ),
    request_body(content(
        (RecordInput = "application/json"),
        (RecordUpload = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "created (or replayed: `Idempotent-Replayed: true`)", body = Record,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "an invalid field, an unknown field, a server-set field, or a reference to no record"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "the caller may not create records of this model"),
        (status = 409, description = "a unique value taken, or the Idempotency-Key reused with another body"),
        (status = 413, description = "a file over its field's max_size, or the body over the server's limit"),
        (status = 415, description = "neither JSON nor multipart/form-data (or multipart where no file storage is set)"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn create_record(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ModelParam(model): ModelParam,
    IdempotencyKey(key): IdempotencyKey,
    req: Request,
) -> Result<Reply, ApiError> {
    // The caller is checked before the body is even read: a guest's write is a 401 whatever
    // it sends.
    authorize(&caller, &model, Action::Create, None)?;
    let access = caller.0.field_access();
    let body = upload::read(req, &state, &model, access, None).await?;
    let created = async {
        let draft = validate_draft(&model, &body.json, access)?;
        let claim = key.map(|key| IdempotencyClaim {
            key,
            body_digest: digest(&body.fingerprint()),
        });
        let ctx = WriteCtx {
            files: body.files.clone(),
            ..ctx
        };
        let created = state.store().create(&ctx, &model, draft, claim).await?;
        state.note_write(&ctx.actor);
        Ok::<_, ApiError>(created)
    }
    .await;
    body.release(&state, Vec::new()).await;
    let created = created?;
    let location = format!("/api/v1/{}/{}", model.name(), created.record.id);
    Ok(record_reply(&model, &created.record, access)?
        .with_status(StatusCode::CREATED)
        .with_location(location)
        .replayed(created.replayed))
}

/// SHA-256 of the body in canonical form (object keys sorted, no insignificant whitespace),
/// so a retry that reformats the same JSON still matches.
pub(super) fn digest(body: &serde_json::Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    base16ct::lower::encode_string(&Sha256::digest(&canonical))
}

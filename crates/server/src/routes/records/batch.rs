//! `POST /api/v1/{model}/batch`: many creates, updates, replaces and soft deletes of one
//! model in one transaction, all or nothing. The items are read and checked here (see
//! `batch_items`); the store authorises each update and delete on the record it locks, so
//! the answer is the one each item would get alone, naming the item.

use super::batch_items;
use super::{RecordJson, authorize, create::digest};
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, ModelParam, WriteContext};
use crate::files::upload;
use crate::openapi::shapes::{BatchRequest, Record};
use crate::reply::Reply;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header;
use plinth_core::policy::Action;
use plinth_core::schema::FieldType;
use plinth_core::{ErrorCode, ModelDef};
use plinth_store::{BatchOp, IdempotencyClaim};

/// Applies up to 1000 writes in order, in one transaction: `200` with the records as
/// written, one per item in order. Any failed item fails the batch, which writes nothing.
#[utoipa::path(post, path = "/api/v1/{model}/batch", tag = "records",
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "a retry with the same key and body gets the first answer again"),
    ),
    request_body = inline(BatchRequest),
    responses(
        (status = 200, description = "every item written (or replayed: `Idempotent-Replayed: true`): the records in item order", body = [Record]),
        (status = 400, description = "invalid items, each fault under its item's path (`items[3].price`), no item or more than 1000, or a reference to no record"),
        (status = 401, description = "no credential, or a bad one"),
        (status = 403, description = "an item's record is not the caller's, or a role that may not write here"),
        (status = 404, description = "an item's record does not exist, is one the caller may not read, or (delete) is already deleted"),
        (status = 409, description = "an item's unique value is taken or its record is deleted, or the Idempotency-Key reused with another body"),
        (status = 412, description = "an item's if_match names a version its record is not at"),
    ))]
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn batch_records(
    State(state): State<AppState>,
    WriteContext { caller, ctx }: WriteContext,
    ModelParam(model): ModelParam,
    IdempotencyKey(key): IdempotencyKey,
    req: Request,
) -> Result<Reply, ApiError> {
    // The caller is checked before the body is read: a guest's batch is a 401 whatever it
    // sends.
    authorize(&caller, &model, Action::Create, None)?;
    let body = read_json(req, state.batch_body_limit()).await?;
    let ops = batch_items::read(&caller, &model, &body)?;
    let claim = key.map(|key| IdempotencyClaim {
        key,
        body_digest: digest(&body),
    });
    let held = held_by_updates(&state, &model, &ops).await?;
    let batched = state.store().batch(&ctx, &model, ops, claim).await;
    // What the items stopped holding goes as after a single write (whether the batch
    // committed or not: a content still held anywhere is kept).
    if let Some(files) = state.files()
        && !held.is_empty()
    {
        files.release(state.store().as_ref(), held).await;
    }
    let batched = batched?;
    state.note_write(&ctx.actor);
    let access = caller.0.field_access();
    let records: Vec<RecordJson<'_>> = batched
        .records
        .iter()
        .map(|r| RecordJson(&model, r, access))
        .collect();
    Ok(Reply::data(&records)?.private().replayed(batched.replayed))
}

/// The contents held now by the records whose file fields an update item sets.
async fn held_by_updates(
    state: &AppState,
    model: &ModelDef,
    ops: &[BatchOp],
) -> Result<Vec<String>, ApiError> {
    let mut held = Vec::new();
    if state.files().is_none() {
        return Ok(held);
    }
    for op in ops {
        let BatchOp::Update { id, patch, .. } = op else {
            continue;
        };
        let sets_file = model
            .fields()
            .iter()
            .zip(&patch.fields)
            .any(|(f, v)| v.is_some() && matches!(f.ty(), FieldType::File(_)));
        if sets_file {
            held.extend(upload::held(state, model, *id).await?);
        }
    }
    Ok(held)
}

/// The body as JSON, read up to `limit` bytes (the batch's own limit, not `body_limit`).
async fn read_json(req: Request, limit: usize) -> Result<serde_json::Value, ApiError> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut over = false;
            while let Some(c) = cause {
                over |= c.is::<http_body_util::LengthLimitError>();
                cause = c.source();
            }
            if over {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::invalid("body", "could not be read")
            }
        })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid("body", e.to_string()))
}

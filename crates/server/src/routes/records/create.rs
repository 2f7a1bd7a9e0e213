//! `POST /api/v1/{model}`.

use super::{authorize, record_response};
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, IdempotencyKey, ModelParam, RequestId};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use plinth_core::input::validate_draft;
use plinth_core::policy::Action;
use plinth_store::{IdempotencyClaim, WriteCtx};
use sha2::{Digest, Sha256};

/// Creates a record: `201 Created` with `Location` and `ETag`. With an `Idempotency-Key`, a
/// retry with the same body gets the same record back; another body gets `409`.
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn create_record(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ModelParam(model): ModelParam,
    IdempotencyKey(key): IdempotencyKey,
    req: Request,
) -> Result<Response, ApiError> {
    // The caller is checked before the body is even read: a guest's write is a 401 whatever
    // it sends.
    authorize(&caller, &model, Action::Create, None)?;
    let body = ApiJson::read(req, &state).await?;
    let access = caller.0.field_access();
    let draft = validate_draft(&model, &body, access)?;
    let claim = key.map(|key| IdempotencyClaim {
        key,
        body_digest: digest(&body),
    });
    let ctx = WriteCtx {
        actor: caller.0,
        request_id: request_id.to_string(),
    };
    let created = state.store().create(&ctx, &model, draft, claim).await?;
    state.note_write(&ctx.actor);
    let mut res = record_response(StatusCode::CREATED, &model, &created.record, access)?;
    let location = format!("/api/v1/{}/{}", model.name(), created.record.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if created.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// SHA-256 of the body in canonical form (object keys sorted, no insignificant whitespace),
/// so a retry that reformats the same JSON still matches.
fn digest(body: &serde_json::Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

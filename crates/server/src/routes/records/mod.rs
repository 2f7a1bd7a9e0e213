//! The REST contract for every declared model: `/api/v1/{model}[/{id}]`.
//!
//! One handler per file. Every handler asks the access policy (`plinth_core::policy`)
//! before touching the store, through [`authorize`].

mod create;
mod delete;
mod list;
mod read;
mod update;

use crate::error::ApiError;
use crate::extract::{Caller, etag};
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_core::policy::{self, Action};
use plinth_core::{FieldAccess, ModelDef, Record};
use serde::Serialize;
use serde::ser::SerializeMap;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/{model}",
            get(list::list_records).post(create::create_record),
        )
        .route(
            "/api/v1/{model}/{id}",
            get(read::read_record)
                .put(update::replace_record)
                .patch(update::patch_record)
                .delete(delete::delete_record),
        )
        .route("/api/v1/{model}/{id}/restore", post(delete::restore_record))
}

/// Asks the part of the policy that needs no record, before any lookup or validation.
fn precheck(caller: &Caller, model: &ModelDef, action: Action) -> Result<(), ApiError> {
    policy::precheck(&caller.0, model.policy(), action).map_err(ApiError::from)
}

/// Asks the access policy; `record` is the target of an action on an existing record.
fn authorize(
    caller: &Caller,
    model: &ModelDef,
    action: Action,
    record: Option<&Record>,
) -> Result<(), ApiError> {
    policy::authorize(
        &caller.0,
        model.policy(),
        action,
        record.map(|r| r.owner_id),
    )
    .map_err(ApiError::from)
}

/// A record as JSON: base fields first, then declared fields in declaration order.
struct RecordJson<'a>(&'a ModelDef, &'a Record, FieldAccess);

impl Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RecordJson(model, r, access) = *self;
        let mut map = s.serialize_map(Some(7 + r.fields.len()))?;
        map.serialize_entry("id", &r.id.to_string())?;
        map.serialize_entry("name", &r.name)?;
        map.serialize_entry("status", r.status.as_str())?;
        map.serialize_entry("created_at", &r.created_at.to_string())?;
        map.serialize_entry("updated_at", &r.updated_at.to_string())?;
        map.serialize_entry("owner_id", &r.owner_id.map(|u| u.hyphenated().to_string()))?;
        map.serialize_entry("version", &r.version)?;
        for (f, v) in model.fields().iter().zip(&r.fields) {
            if f.visible_to(access) {
                map.serialize_entry(f.name().as_str(), &v.to_json())?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct One<'a> {
    success: bool,
    data: RecordJson<'a>,
}

/// A JSON response with the right content type.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `{"success": true, "data": record}` with its `ETag`.
fn record_response(
    status: StatusCode,
    model: &ModelDef,
    record: &Record,
    access: FieldAccess,
) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(&One {
        success: true,
        data: RecordJson(model, record, access),
    })
    .map_err(ApiError::internal)?;
    let mut res = json_response(status, body);
    if let Ok(v) = HeaderValue::from_str(&etag(record.version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}

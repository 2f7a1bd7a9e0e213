//! The REST contract for every declared model: `/api/v1/{model}[/{id}]`.
//!
//! One handler per file. Every handler asks the access policy (`plinth_core::policy`)
//! before touching the store, through [`authorize`].

mod batch;
mod batch_items;
mod create;
mod delete;
mod expand;
mod files;
mod list;
mod read;
mod shape;
mod update;

use crate::conditional::last_modified;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::reply::Reply;
use crate::state::AppState;
use plinth_core::policy::{self, Action};
use plinth_core::{FieldAccess, ModelDef, Record};
use serde::Serialize;
use std::time::SystemTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of every model: `{model}` in their documented paths is replaced by each
/// declared model when the document is built (`openapi::models`).
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list_records, create::create_record))
        .routes(routes!(
            read::read_record,
            update::replace_record,
            update::patch_record,
            delete::delete_record
        ))
        .routes(routes!(delete::restore_record))
        .routes(routes!(files::download_file))
        .routes(routes!(batch::batch_records))
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

/// A record as JSON: base fields first, then declared fields in declaration order, those
/// `access` cannot see left out (the read endpoint's form, also the change feed's).
pub(crate) struct RecordJson<'a>(
    pub(crate) &'a ModelDef,
    pub(crate) &'a Record,
    pub(crate) FieldAccess,
);

impl Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RecordJson(model, r, access) = *self;
        shape::Shaped::whole(model, r, access).serialize(s)
    }
}

/// A record with its validators (`ETag`, `Last-Modified`) and how caches may keep it.
fn record_reply(model: &ModelDef, record: &Record, access: FieldAccess) -> Result<Reply, ApiError> {
    Ok(validators(
        Reply::data(&RecordJson(model, record, access))?,
        record,
    ))
}

/// Adds a record's `ETag`, `Last-Modified` and cache policy to `reply` (a record or its
/// `304`).
fn validators(reply: Reply, record: &Record) -> Reply {
    reply
        .with_etag(record.version)
        .with_last_modified(last_modified(record.updated_at, SystemTime::now()))
        .private()
}

//! `/api/v1/version`, and `/api/v1/models`: the declared models as the caller may use them.

use crate::error::ApiError;
use crate::extract::{Caller, QueryPairs};
use crate::openapi::shapes::{ModelInfo, Version};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use plinth_core::policy::{Action, FieldAccess, precheck};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(list_models))
}

/// Build and API version.
#[utoipa::path(get, path = "/api/v1/version", tag = "meta", security(()),
    responses((status = 200, description = "this build", body = Version)))]
async fn version() -> Result<Reply, ApiError> {
    Reply::data(&json!({"name": "plinth", "version": env!("CARGO_PKG_VERSION"), "api": "v1"}))
}

/// Every declared model, in declaration order, as `plinth.toml` declares it (but for
/// `renamed_from`, and `admin_only` fields for anyone but an admin), with what the caller
/// may attempt on it (`can`: for a user, `update` and `delete` mean their own records).
/// Clients build forms and tables from it, the admin console among them.
#[utoipa::path(get, path = "/api/v1/models", tag = "meta",
    security((), ("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "the declared models", body = [ModelInfo]),
        (status = 400, description = "any query parameter"),
        (status = 401, description = "a bad credential"),
    ))]
#[tracing::instrument(skip_all)]
async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    query.refuse_any()?;
    let who = &caller.0;
    let all_fields = who.field_access() == FieldAccess::All;
    let models: Vec<Value> = state
        .schema()
        .models()
        .iter()
        .map(|model| {
            let decl = model.decl();
            let fields: Vec<Value> = decl
                .fields
                .iter()
                .filter(|f| all_fields || !f.admin_only)
                .map(|f| {
                    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("renamed_from");
                    }
                    v
                })
                .collect();
            let may = |action| precheck(who, model.policy(), action).is_ok();
            json!({
                "name": decl.name,
                "guest_read": decl.guest_read,
                "user_read": decl.user_read,
                "hide_forbidden": decl.hide_forbidden,
                "searchable": model.searchable_fields().next().is_some(),
                "fields": fields,
                "can": {
                    "read": may(Action::Read),
                    "create": may(Action::Create),
                    "update": may(Action::Update),
                    "delete": may(Action::Delete),
                    "restore": may(Action::Restore),
                    "purge": may(Action::Purge),
                },
            })
        })
        .collect();
    // What is listed depends on who asks: only a private cache may keep it.
    Reply::data(&models).map(Reply::private)
}

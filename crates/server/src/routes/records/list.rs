//! `GET /api/v1/{model}`: filtered, sorted, keyset-paginated lists.

use super::{RecordJson, json_response};
use crate::error::ApiError;
use crate::extract::{Caller, ModelParam, QueryPairs};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use plinth_core::ListQuery;
use plinth_core::policy::list_scope;
use serde::Serialize;

#[derive(Serialize)]
struct ListBody<'a> {
    success: bool,
    data: Vec<RecordJson<'a>>,
    page: PageInfo,
}

#[derive(Serialize)]
struct PageInfo {
    next_cursor: Option<String>,
    limit: u32,
}

/// One page; `page.next_cursor` resumes after it and is `null` on the last page.
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ModelParam(model): ModelParam,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let scope = list_scope(&caller.0, model.policy())?;
    let query = ListQuery::parse(&model, &pairs, caller.0.field_access())?;
    let from = state.read_from(&caller.0);
    let page = state.store().list_from(&model, &query, scope, from).await?;
    let next_cursor = if page.has_more {
        page.records.last().map(|r| query.next_cursor(r))
    } else {
        None
    };
    let body = ListBody {
        success: true,
        data: page
            .records
            .iter()
            .map(|r| RecordJson(&model, r, caller.0.field_access()))
            .collect(),
        page: PageInfo {
            next_cursor,
            limit: query.limit,
        },
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
    ))
}

//! `GET /api/v1/{model}`: filtered, sorted, keyset-paginated lists.

use super::RecordJson;
use crate::error::ApiError;
use crate::extract::{Caller, ModelParam, QueryPairs};
use crate::reply::{Page, Reply};
use crate::state::AppState;
use axum::extract::State;
use plinth_core::ListQuery;
use plinth_core::policy::list_scope;

/// One page; `page.next_cursor` resumes after it and is `null` on the last page.
#[tracing::instrument(skip_all, fields(model = %model.name()))]
pub(super) async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ModelParam(model): ModelParam,
    QueryPairs(pairs): QueryPairs,
) -> Result<Reply, ApiError> {
    let scope = list_scope(&caller.0, model.policy())?;
    let limits = state.query_limits();
    let query = ListQuery::parse_within(&model, &pairs, caller.0.field_access(), limits)?;
    let from = state.read_from(&caller.0);
    let page = state.store().list_from(&model, &query, scope, from).await?;
    let next_cursor = if page.has_more {
        page.records.last().map(|r| query.next_cursor(r))
    } else {
        None
    };
    let data: Vec<RecordJson<'_>> = page
        .records
        .iter()
        .map(|r| RecordJson(&model, r, caller.0.field_access()))
        .collect();
    Reply::page(
        &data,
        Page {
            next_cursor,
            limit: query.limit,
        },
    )
    .map(Reply::private)
}

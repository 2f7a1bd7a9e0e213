//! `GET /api/v1/{model}`: filtered, sorted, keyset-paginated lists.

use super::RecordJson;
use crate::error::ApiError;
use crate::extract::{Caller, ModelParam, QueryPairs};
use crate::openapi::shapes::Record;
use crate::reply::{Page, Reply};
use crate::state::AppState;
use axum::extract::State;
use plinth_core::ListQuery;
use plinth_core::policy::list_scope;

/// One page; `page.next_cursor` resumes after it and is `null` on the last page.
#[utoipa::path(get, path = "/api/v1/{model}", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 20 by default"),
        ("cursor" = Option<String>, Query, description = "`page.next_cursor` of the page before, with the same filters and sort"),
        ("sort" = Option<String>, Query, description = "a sort key, `-` for descending; `-created_at` by default"),
    ),
    responses(
        (status = 200, description = "one page of records", body = [Record]),
        (status = 400, description = "an unknown parameter, field or operator, or a bad value, limit, sort, cursor or q"),
        (status = 401, description = "a bad credential, or a guest where the model refuses guests"),
        (status = 503, description = "the list ran past its time budget; narrow the filter"),
    ))]
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
    let from = state.read_from(&caller);
    let page = state.store().list_from(&model, &query, scope, from).await?;
    let next_cursor = if page.has_more {
        page.records
            .last()
            .map(|r| query.cursor_after(r, page.rank))
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

//! `GET /api/v1/{model}`: filtered, sorted, keyset-paginated lists.

use super::expand;
use super::shape::Shaped;
use crate::error::ApiError;
use crate::extract::{Caller, ModelParam, QueryPairs};
use crate::openapi::shapes::Shaped as ShapedRecord;
use crate::reply::{Page, Reply};
use crate::state::AppState;
use axum::extract::State;
use plinth_core::ListQuery;
use plinth_core::policy::list_scope;
use plinth_core::query::shape::{self, Shape};

/// One page; `page.next_cursor` resumes after it and is `null` on the last page.
#[utoipa::path(get, path = "/api/v1/{model}", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 20 by default"),
        ("cursor" = Option<String>, Query, description = "`page.next_cursor` of the page before, with the same filters and sort"),
        ("sort" = Option<String>, Query, description = "a sort key, `-` for descending; `-created_at` by default"),
        ("filter" = Option<String>, Query, description = "a boolean expression over the fields, e.g. `(status = \"active\" || price < 10) && title ~ \"rust\"`: `=`, `!=`, `<`, `<=`, `>`, `>=`, `~` (contains, case-insensitive), `!~`, `&&`, `||`, `!`, parentheses; ANDed with the `field[op]` filters"),
        ("count" = Option<bool>, Query, description = "`true`: `page.total` counts the matching records over every page (one more query, as costly as reading them all)"),
        ("fields" = Option<String>, Query, description = "only these keys in each record: comma-separated base or declared fields"),
        ("expand" = Option<String>, Query, description = "comma-separated reference fields (`author`, or `author.publisher`: at most 2 levels) replaced by the records they name, where the caller may read them"),
    ),
    responses(
        (status = 200, description = "one page of records", body = [ShapedRecord]),
        (status = 400, description = "an unknown parameter, field or operator, a bad value, limit, sort, cursor, count, fields or expand, or a bad `filter` expression (`details` give its column)"),
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
    let access = caller.0.field_access();
    let (query, shape) = shape::both(
        ListQuery::parse_within(&model, &pairs, access, state.query_limits()),
        Shape::parse(state.schema(), &model, &pairs, access),
    )?;
    let from = state.read_from(&caller);
    let store = state.store();
    let page = store.list_from(&model, &query, scope, from).await?;
    let total = match query.count {
        true => Some(store.count(&model, &query, scope, from).await?),
        false => None,
    };
    let next_cursor = if page.has_more {
        page.records.last().map(|r| query.next_cursor(r))
    } else {
        None
    };
    let nodes = expand::resolve(&**store, &caller.0, from, &page.records, &shape.expand).await?;
    let data: Vec<Shaped<'_>> = page
        .records
        .iter()
        .map(|record| Shaped {
            model: &model,
            record,
            access,
            shape: Some(&shape),
            nodes: &nodes,
        })
        .collect();
    Reply::page(
        &data,
        Page {
            next_cursor,
            limit: query.limit,
            total,
        },
    )
    .map(Reply::private)
}

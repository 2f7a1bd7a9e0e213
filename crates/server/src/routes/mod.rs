//! The router: each area exposes `router()`, merged here. Every route is registered with
//! `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, so the router and the
//! OpenAPI document (`crate::openapi`) are made from one list and cannot drift apart.

mod alerts;
mod audit;
mod auth;
mod docs;
mod events;
mod flags;
mod health;
mod meta;
pub(crate) mod metrics;
mod records;
mod users;

pub(crate) use records::RecordJson;

use crate::middleware::no_store;
use crate::state::AppState;
use axum::middleware::from_fn;
use utoipa_axum::router::OpenApiRouter;

/// A page size from a `limit` parameter: 1 to `MAX_LIMIT`, as record lists take it.
pub(crate) fn page_limit(v: &str) -> Result<u32, crate::error::ApiError> {
    use plinth_core::query::MAX_LIMIT;
    v.parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            crate::error::ApiError::invalid(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )
        })
}

/// Every route of the API, with its documentation (`split_for_parts` separates them).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(docs::router())
        .merge(meta::router())
        .merge(records::router())
        .merge(events::router())
        // Tokens, keys and accounts: no cache may keep them.
        .merge(auth::router().layer(from_fn(no_store)))
        .merge(users::router().layer(from_fn(no_store)))
        // Audit entries hold values as written: no cache may keep them either.
        .merge(audit::router().layer(from_fn(no_store)))
        .merge(alerts::router().layer(from_fn(no_store)))
        // A flag's answer is the caller's own.
        .merge(flags::router().layer(from_fn(no_store)))
        // The series is a reading of the moment (`/metrics` says no-store itself).
        .merge(metrics::router().layer(from_fn(no_store)))
}

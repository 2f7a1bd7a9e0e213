//! The router: each area exposes `router()`, merged here.

mod auth;
mod health;
mod meta;
mod records;
mod users;

use crate::state::AppState;
use axum::Router;

/// Every route of the API.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(meta::router())
        .merge(records::router())
        .merge(auth::router())
        .merge(users::router())
}

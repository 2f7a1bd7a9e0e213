//! Plinth's HTTP layer: the router, extractors, the error envelope, middleware, and the
//! [`Application`] that serves them.
//!
//! Layout:
//! - [`app`]: [`Application`]: bind, serve, drain, close.
//! - [`config`]: the [`ServerConfig`] settings.
//! - [`state`]: [`AppState`], the shared state handlers take.
//! - [`auth`]: [`Auth`]: password hashing, tokens, API keys, rate limits.
//! - [`error`]: [`ApiError`] and the one code → status table.
//! - [`extract`]: Plinth's extractors (`ApiJson`, `RecordParam`, `Caller`, `IfMatch`…).
//! - [`middleware`]: request ids, envelope rendering, access log, panics.
//! - `routes`: one module per area; `routes/records` has one file per handler.
//!
//! API boundary: the binary builds a [`AppState`] over a migrated [`plinth_store::Store`]
//! and calls [`Application::build`]; nothing else is needed to serve.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod middleware;
mod routes;
pub mod state;

pub use app::{Application, StartError};
pub use auth::{Auth, AuthConfig, SigningKey};
pub use config::ServerConfig;
pub use error::ApiError;
pub use state::AppState;

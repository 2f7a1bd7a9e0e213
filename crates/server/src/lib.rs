//! Plinth's HTTP layer: the router, extractors, the error envelope, middleware, and the
//! [`Application`] that serves them.
//!
//! Layout:
//! - `app`: [`Application`]: bind, serve, drain, close.
//! - `admin`: the admin console's files (`admin/`, embedded by `build.rs`) at `/admin`.
//! - [`alerts`]: the alert rules evaluated in-process, their recorder and webhook.
//! - [`config`]: the [`ServerConfig`] settings.
//! - [`tls`]: HTTPS: [`TlsFiles`] loaded into rustls, reloaded on change or SIGHUP.
//! - `backups`: scheduled backups into a directory, the oldest beyond a count deleted.
//! - `flags`: this instance's copy of the feature flags, and what they decide.
//! - `state`: [`AppState`], the shared state handlers take.
//! - [`auth`]: [`Auth`]: password hashing, tokens, API keys, rate limits, the clock.
//! - `accounts`: [`create_account`], the one way an account is made.
//! - [`mail`]: account mail: the SMTP settings, the templates, the background queue.
//! - [`audit`]: [`audit::AuditJson`], an audit entry as the API and `plinth audit export`
//!   show it.
//! - `error`: `ApiError`, the one code → status table; `reply`: `Reply`, the one success
//!   envelope.
//! - `extract`: Plinth's extractors (`ApiJson`, `RecordParam`, `Caller`, `WriteContext`…).
//! - `metrics`: Prometheus metrics: the registry, the request middleware, the timed
//!   store (`MeteredStore`) and what `/metrics` samples at scrape time.
//! - `middleware`: request ids, envelope rendering, access log, panics.
//! - `faults` (only with the `faults` feature, in tests): answers 500 or sleeps on request.
//! - `routes`: one module per area; `routes/records` has one file per handler.
//! - `realtime`: the change feed: each instance's hub following the change log, and the
//!   Server-Sent Events streams it feeds.
//! - `openapi`: the OpenAPI document made from the routes and the declared models, and the
//!   `/docs` page's files.
//!
//! API boundary: the binary builds a [`AppState`] over a migrated [`plinth_store::Store`]
//! and calls [`Application::build`]; nothing else is needed to serve. Only what the binary,
//! the benchmark and the tests use is public.

mod accounts;
mod admin;
pub mod alerts;
mod app;
pub mod audit;
pub mod auth;
mod backups;
mod compress;
mod conditional;
pub mod config;
mod error;
mod extract;
#[cfg(feature = "faults")]
mod faults;
mod fds;
pub mod files;
mod flags;
mod limits;
pub mod mail;
mod metrics;
mod middleware;
mod openapi;
mod realtime;
mod redirect;
mod reply;
mod routes;
mod serve;
mod state;
mod sweep;
pub mod tls;
mod trace;

pub use accounts::{AccountError, create_account};
pub use app::{Application, StartError, with_middleware};
pub use auth::{Auth, AuthConfig, AuthError, SigningKey};
pub use config::{BackupSchedule, DEFAULT_BODY_LIMIT, RealtimeConfig, ServerConfig};
pub use files::{FilesConfig, S3Config};
pub use metrics::{MetricsAccess, MetricsToken};
pub use serve::MAX_H2_STREAMS;
pub use state::AppState;
pub use tls::{TlsError, TlsFiles};

//! Plinth's domain: what a model is, what a valid record and a valid list query are, and
//! who may do what. Pure logic with no I/O, so every rule here is unit-tested in isolation
//! and shared unchanged by every storage engine and the HTTP layer.
//!
//! Layout:
//! - [`error`]: [`ErrorCode`] (the wire codes), [`Error`] (validation and policy failures).
//! - [`names`]: validated [`ModelName`] and [`FieldName`].
//! - [`schema`]: declarations from `plinth.toml` and the validated [`Schema`] / [`ModelDef`].
//! - [`record`]: [`Record`], [`RecordId`], [`Status`], typed [`Value`]s.
//! - [`input`]: validation of create / PUT / PATCH bodies into [`Draft`] and [`Patch`].
//! - [`query`]: list queries (filters, sort, limit) and [`cursor`]s.
//! - [`policy`]: [`Principal`], roles, per-model overrides and the access decision.
//! - [`flags`]: feature flags: [`flags::FlagKey`], rollouts, audiences and the decision.
//! - [`auth`]: account rules: [`auth::Email`], the password policy, role names.
//! - [`migrate`]: planning schema migrations.
//! - [`time`]: microsecond [`Timestamp`]s; [`date`]: calendar [`Date`]s; [`decimal`]: exact
//!   [`Decimal`]s; [`format`]: the `email` and `url` checks.

pub mod auth;
pub mod cursor;
pub mod date;
pub mod decimal;
pub mod error;
pub mod flags;
pub mod format;
pub mod input;
pub mod migrate;
pub mod names;
pub mod policy;
pub mod query;
pub mod record;
pub mod schema;
pub mod time;

pub use date::Date;
pub use decimal::Decimal;
pub use error::{Denial, Error, ErrorCode, FieldError};
pub use input::{Draft, Patch};
pub use names::{FieldName, ModelName};
pub use policy::{Action, FieldAccess, ListScope, ModelPolicy, Principal, ReadScope, Role};
pub use query::{ListQuery, QueryLimits};
pub use record::{Record, RecordId, Status, Value};
pub use schema::{ModelDecl, ModelDef, Schema};
pub use time::Timestamp;

#[cfg(test)]
mod proptests;

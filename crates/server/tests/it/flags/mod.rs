//! Feature flags: `/api/v1/flags` (admins) and `/api/v1/flags/evaluate` (every caller).
//!
//! - `crud`: the endpoints' happy path, audit entries, and their attacks (no credential, a
//!   user, a user's key, a revoked key, hostile bodies), with nothing written by a refusal.
//! - `evaluate`: what decides an answer (allow, deny, schedule, rollout, guests) and a
//!   10 % rollout over 10,000 principals.
//! - `instances`: two instances on one PostgreSQL agree, a change through one reaches
//!   the other's evaluation by notification, and a hung flag load delays no other notice.
//! - `loads`: how often the flags are loaded (no load for a change to nothing; one shared
//!   load for evaluations that find nothing held).
//! - `reload`: a failed load keeps the flags held; a change made without a notice is seen
//!   after `flags.reload_seconds`.
//! - `replica`: `plinth.replica_reads` steers reads between the replica and the primary,
//!   and stays as it was when loading the flags fails.

mod crud;
mod evaluate;
mod instances;
mod loads;
mod reload;
mod replica;

use crate::helpers::{Resp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

impl TestApp {
    /// `method path` on the flags API as `credential`, with an optional body.
    pub(crate) async fn flags_as(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        self.call_as(method, &format!("/api/v1/flags{path}"), credential, body)
            .await
    }

    /// Makes a flag as the admin; must succeed. Returns it.
    pub(crate) async fn flag_ok(&self, body: &Value) -> Value {
        let r = self
            .flags_as(Method::POST, "", Some(&self.admin_token), Some(body))
            .await;
        r.data(StatusCode::CREATED).clone()
    }

    /// Changes a flag as the admin; must succeed. Returns it.
    pub(crate) async fn patch_flag_ok(&self, key: &str, body: &Value) -> Value {
        let r = self
            .flags_as(
                Method::PATCH,
                &format!("/{key}"),
                Some(&self.admin_token),
                Some(body),
            )
            .await;
        r.data(StatusCode::OK).clone()
    }

    /// `GET /api/v1/flags/evaluate` as `credential` (or a guest); must succeed.
    pub(crate) async fn evaluate(&self, credential: Option<&str>) -> Value {
        let r = self
            .flags_as(Method::GET, "/evaluate", credential, None)
            .await;
        r.data(StatusCode::OK).clone()
    }
}

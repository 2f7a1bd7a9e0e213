//! `/api/v1/auth/*`: login (and its second step), refresh, logout, sign-up and the mailed
//! flows, OpenID Connect, the caller's sessions, own account and second factor, API keys; and
//! `POST /api/v1/events/ticket`, the stream tickets made from those credentials.

mod keys;
mod me;
mod mfa;
mod mfa_login;
mod oidc;
mod recovery;
mod session;
pub(crate) mod sessions;
mod signup;
mod ticket;

use crate::accounts::invalid_fields;
use crate::error::ApiError;
use crate::openapi::shapes::Role as RoleShape;
use crate::state::AppState;
use plinth_core::auth::{parse_role, role_name};
use plinth_core::{FieldError, Role};
use plinth_store::User;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::login))
        .routes(routes!(session::refresh))
        .routes(routes!(session::logout))
        .routes(routes!(mfa_login::login_mfa))
        .routes(routes!(mfa::read_mfa))
        .routes(routes!(mfa::enrol_totp, mfa::disable_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::new_codes))
        .routes(routes!(me::read_me, me::change_password))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::read_key, keys::revoke_key))
        .routes(routes!(ticket::create_ticket))
        .routes(routes!(oidc::list_providers))
        .routes(routes!(oidc::start))
        .routes(routes!(oidc::callback))
        .routes(routes!(signup::signup))
        .routes(routes!(signup::verify_email))
        .routes(routes!(signup::resend_verification))
        .routes(routes!(recovery::request_reset))
        .routes(routes!(recovery::confirm_reset))
        .routes(routes!(recovery::request_email_change))
        .routes(routes!(recovery::confirm_email_change))
        .routes(routes!(sessions::list_sessions, sessions::end_sessions))
        .routes(routes!(sessions::end_session))
        .routes(routes!(
            sessions::list_user_sessions,
            sessions::end_user_sessions
        ))
}

/// A user as the API shows it: never the hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub(crate) struct UserJson<'a> {
    #[schema(format = "uuid")]
    id: String,
    email: &'a str,
    #[schema(value_type = RoleShape)]
    role: &'static str,
    /// Whether the account proved it receives mail at `email`.
    email_verified: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(minimum = 1)]
    version: i64,
}

impl<'a> From<&'a User> for UserJson<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            id: u.id.to_string(),
            email: &u.email,
            role: role_name(u.role),
            email_verified: u.email_verified_at.is_some(),
            created_at: u.created_at.to_string(),
            updated_at: u.updated_at.to_string(),
            version: u.version,
        }
    }
}

/// The object fields of a small request body: refuses non-objects and unknown keys, and
/// reads strings by name, collecting every problem.
pub(crate) struct BodyFields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> BodyFields<'a> {
    /// Checks that `body` is an object whose keys are all in `allowed`; `forbidden` keys get
    /// their own reason (e.g. a role that may not be changed here).
    pub(crate) fn new(
        body: &'a Value,
        allowed: &[&str],
        forbidden: &[(&str, &str)],
    ) -> Result<Self, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))?;
        let mut errors = Vec::new();
        for key in obj.keys() {
            if let Some((_, reason)) = forbidden.iter().find(|(k, _)| k == key) {
                errors.push(FieldError::new(key.as_str(), *reason));
            } else if !allowed.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    key.chars().take(64).collect::<String>(),
                    "unknown field",
                ));
            }
        }
        Ok(Self { obj, errors })
    }

    /// An optional string field.
    pub(crate) fn string(&mut self, key: &str) -> Option<&'a str> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.errors.push(FieldError::new(key, "must be a string"));
                None
            }
        }
    }

    /// A required string field.
    pub(crate) fn required(&mut self, key: &str) -> Option<&'a str> {
        let v = self.string(key);
        if v.is_none() && !self.errors.iter().any(|e| e.field == key) {
            self.errors.push(FieldError::new(key, "is required"));
        }
        v
    }

    /// Records a problem found while checking a value.
    pub(crate) fn reject(&mut self, key: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(key, reason));
    }

    /// Fails with every problem collected, if any.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(invalid_fields(self.errors))
    }
}

/// Parses a role sent by a client.
pub(crate) fn role_from_client(s: &str) -> Result<Role, ApiError> {
    parse_role(s).map_err(|reason| ApiError::invalid("role", reason))
}

//! Accounts: the one way an account is made, whether by an admin over HTTP
//! (`POST /api/v1/users`), by the first-admin bootstrap, or by `plinth user create`.

use crate::auth::{Auth, AuthError};
use crate::error::ApiError;
use plinth_core::auth::{Email, check_password};
use plinth_core::{ErrorCode, FieldError, Role};
use plinth_store::{NewUser, Store, StoreError, User, WriteCtx};

/// Why an account was not created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email or password breaks the account rules; each problem names its field
    /// (`email` or `password`).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Hashing the password failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store refused or failed (a `Conflict` when the email is taken).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(problems: &[FieldError]) -> String {
    problems
        .iter()
        .map(|p| format!("{} {}", p.field, p.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The account rules on an email and a password as given (either may be absent: the
/// caller reports that itself): the email must parse, and the password must pass the
/// policy, which also refuses the email as a password.
pub(crate) fn problems(email: Option<&str>, password: Option<&str>) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let email = email.and_then(|e| match Email::parse(e) {
        Ok(e) => Some(e),
        Err(reason) => {
            problems.push(FieldError::new("email", reason));
            None
        }
    });
    if let Some(p) = password
        && let Err(reason) = check_password(p, email.as_ref())
    {
        problems.push(FieldError::new("password", reason));
    }
    problems
}

/// Checks the account rules, hashes the password (argon2id) and stores the account.
pub async fn create_account(
    store: &dyn Store,
    auth: &Auth,
    ctx: &WriteCtx,
    email: &str,
    password: &str,
    role: Role,
) -> Result<User, AccountError> {
    let problems = problems(Some(email), Some(password));
    let email = match Email::parse(email) {
        Ok(email) if problems.is_empty() => email,
        _ => return Err(AccountError::Invalid(problems)),
    };
    let password_hash = auth.hash_password(password).await?;
    let user = store
        .create_user(
            ctx,
            NewUser {
                email,
                password_hash,
                role,
            },
        )
        .await?;
    tracing::info!(target: "plinth::security", event = "user_created", user_id = %user.id, "user created");
    Ok(user)
}

/// `INVALID_INPUT` naming each field, as every body check answers.
pub(crate) fn invalid_fields(details: Vec<FieldError>) -> ApiError {
    let names: Vec<&str> = details.iter().map(|e| e.field.as_str()).collect();
    ApiError::new(
        ErrorCode::InvalidInput,
        format!("invalid fields: {}", names.join(", ")),
    )
    .with_details(details)
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(details) => invalid_fields(details),
            AccountError::Auth(e) => e.into(),
            AccountError::Store(e) => e.into(),
        }
    }
}

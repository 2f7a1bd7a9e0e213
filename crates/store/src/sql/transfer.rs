//! `plinth import` inside the engine's one transaction, written once: the emptiness check
//! and the inserts. The engine migrates first, in the same transaction, refusing steps that
//! lose data with [`refuse_destructive`].

use super::accounts::{mfa, oidc};
use super::{Exec, Query, accounts, files, flags, records};
use crate::StoreError;
use crate::transfer::{Item, Line, TransferError};
use plinth_core::Schema;
use plinth_core::migrate::Plan;

/// The migration check of an import: a target whose recorded models would lose data to the
/// declared ones is not a fresh database.
pub(crate) fn refuse_destructive(plan: &Plan) -> Result<(), StoreError> {
    let destructive = plan.destructive();
    if destructive.is_empty() {
        return Ok(());
    }
    Err(StoreError::Migration(format!(
        "the target database's recorded models differ from the declared ones in ways that lose \
         data ({}); import only into a fresh database",
        destructive.join("; ")
    )))
}

/// Refuses a target holding users, flags or records of `schema`'s models, then inserts
/// `lines`.
pub(crate) async fn fill<E: Exec>(
    e: &E,
    keys: &crate::Keys,
    schema: &Schema,
    lines: &[Line],
) -> Result<(), TransferError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT 1 FROM _plinth_users LIMIT 1");
    if e.row(&q, |_| Ok(())).await?.is_some() {
        return Err(TransferError::NotEmpty("it has users".to_owned()));
    }
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT 1 FROM _plinth_flags LIMIT 1");
    if e.row(&q, |_| Ok(())).await?.is_some() {
        return Err(TransferError::NotEmpty("it has feature flags".to_owned()));
    }
    for model in schema.models() {
        let mut q = Query::new(E::DIALECT);
        q.push("SELECT 1 FROM ")
            .ident(model.name().as_str())
            .push(" LIMIT 1");
        if e.row(&q, |_| Ok(())).await?.is_some() {
            return Err(TransferError::NotEmpty(format!(
                "model {} has records",
                model.name()
            )));
        }
    }
    for line in lines {
        let done = match &line.item {
            Item::User(user) => accounts::import_user(e, keys, user).await,
            Item::Flag(flag) => flags::import_flag(e, flag).await,
            Item::Record(model, record) => records::insert(e, keys, model, record, None).await,
            Item::File(model, id, file) => files::import(e, model, *id, file).await,
            Item::Totp(totp) => mfa::import_totp(e, keys, totp).await,
            Item::RecoveryCode(user_id, code) => mfa::import_recovery_code(e, *user_id, code).await,
            Item::OidcIdentity(identity) => oidc::import_identity(e, identity).await,
        };
        done.map_err(|err| at(line.number, err))?;
    }
    Ok(())
}

/// A line the target refuses (a taken value, a bad value) is the file's fault, located.
fn at(line: u64, err: StoreError) -> TransferError {
    let reason = match err {
        StoreError::Conflict {
            field: Some(field),
            reason,
        } => format!("{field}: {reason}"),
        StoreError::Conflict {
            field: None,
            reason,
        }
        | StoreError::InvalidValue { reason } => reason,
        StoreError::InvalidReference { field } => {
            format!("{field} references no existing record")
        }
        other => return TransferError::Store(other),
    };
    TransferError::Format { line, reason }
}

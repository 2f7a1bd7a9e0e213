//! What backup and restore share across engines: the list of Plinth's own tables, and what
//! a database holds ([`Contents`]), read once for both.

use super::{Exec, Query, SqlRow};
use crate::StoreError;
use crate::backup::Contents;

/// Plinth's own tables, in the order a backup holds them: `_plinth_models` first (a
/// restore reads the declarations before the models' rows). A test checks this against
/// the tables `sql::ddl` creates.
pub(crate) const INTERNAL_TABLES: [&str; 14] = [
    "_plinth_models",
    "_plinth_users",
    "_plinth_api_keys",
    "_plinth_refresh_tokens",
    "_plinth_account_tokens",
    "_plinth_totp",
    "_plinth_recovery_codes",
    "_plinth_oidc_identities",
    "_plinth_idempotency",
    "_plinth_batch_keys",
    "_plinth_flags",
    "_plinth_files",
    "_plinth_audit",
    "_plinth_audit_checkpoints",
];

/// Plinth's own tables a backup leaves out: the change log, which a restore empties (a
/// reader is told to start again rather than replay across it), and OpenID logins in
/// progress (ten minutes long, bound to a browser's cookie).
#[cfg(test)]
pub(crate) const UNSAVED_TABLES: [&str; 3] = [
    "_plinth_changes",
    "_plinth_change_window",
    "_plinth_oidc_logins",
];

/// Counts the accounts, API keys, audit entries and each of `models`' records.
pub(crate) async fn contents<E: Exec>(e: &E, models: &[String]) -> Result<Contents, StoreError> {
    let count = async |table: &str| -> Result<u64, StoreError> {
        let mut q = Query::new(E::DIALECT);
        q.push("SELECT count(*) FROM ").ident(table);
        let n = e.row(&q, |r| r.int(0)).await?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let mut records = Vec::with_capacity(models.len());
    for m in models {
        records.push((m.clone(), count(m).await?));
    }
    Ok(Contents {
        users: count("_plinth_users").await?,
        api_keys: count("_plinth_api_keys").await?,
        audit_entries: count("_plinth_audit").await?,
        records,
    })
}

//! Feature flags: the [`FlagStore`] trait every engine implements beside the record and
//! account operations. Flags live in `_plinth_flags`; what a flag is and how it is decided
//! is `plinth_core::flags`.
//!
//! Every change is audited in its own transaction (`flag.create`, `flag.update`,
//! `flag.delete`) and, on PostgreSQL, announced to every instance in it
//! ([`crate::Invalidation::Flags`]), so their in-memory copies are loaded again.

use crate::{StoreError, WriteCtx};
use async_trait::async_trait;
use plinth_core::flags::{Flag, FlagChanges, FlagKey, FlagRule};

/// A new flag.
#[derive(Debug, Clone)]
pub struct NewFlag {
    /// Its key (unique).
    pub key: FlagKey,
    /// For humans.
    pub description: String,
    /// What decides it.
    pub rule: FlagRule,
}

/// Storage of feature flags.
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Stores a flag; `Conflict` on `key` if the key is taken.
    async fn create_flag(&self, ctx: &WriteCtx, flag: NewFlag) -> Result<Flag, StoreError>;
    /// Every flag, by key.
    async fn list_flags(&self) -> Result<Vec<Flag>, StoreError>;
    /// A flag by key.
    async fn get_flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError>;
    /// Changes a flag; with `expected_version`, only if it is current (`Stale`). No change
    /// leaves it (and its version) as it was.
    async fn update_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        changes: FlagChanges,
        expected_version: Option<i64>,
    ) -> Result<Flag, StoreError>;
    /// Deletes a flag; with `expected_version`, only if it is current (`Stale`).
    async fn delete_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError>;
}

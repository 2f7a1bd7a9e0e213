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
use uuid::Uuid;

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

/// The flag a conditional change expects: this very flag (a flag deleted and made again
/// under the same key has another id) at this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagVersion {
    /// The flag's id.
    pub id: Uuid,
    /// Its version.
    pub version: i64,
}

impl FlagVersion {
    /// Where `flag` is now.
    pub fn of(flag: &Flag) -> Self {
        Self {
            id: flag.id,
            version: flag.version,
        }
    }
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
    /// Changes a flag; with `expected`, only if the flag is that one at that version
    /// (`Stale`). No change leaves it (and its version) as it was.
    async fn update_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        changes: FlagChanges,
        expected: Option<FlagVersion>,
    ) -> Result<Flag, StoreError>;
    /// Deletes a flag; with `expected`, only if the flag is that one at that version
    /// (`Stale`).
    async fn delete_flag(
        &self,
        ctx: &WriteCtx,
        key: &FlagKey,
        expected: Option<FlagVersion>,
    ) -> Result<(), StoreError>;
}

//! Plinth's own tables in numbered versions (`plinth migrate status|plan|up|down`): what a
//! database has applied, and what this binary knows.

use plinth_core::Timestamp;

/// The newest version of Plinth's own tables this binary knows.
pub const LATEST: u32 = crate::sql::versions::LATEST;

/// The numbers of every version this binary knows, in order (not necessarily contiguous:
/// release lines may skip one).
pub fn known() -> Vec<u32> {
    crate::sql::versions::VERSIONS
        .iter()
        .map(|v| v.number)
        .collect()
}

/// One version: known to this binary, recorded in the database, or both.
#[derive(Debug, Clone)]
pub struct SchemaVersion {
    /// Its number (0 is the baseline every database has).
    pub number: u32,
    /// What it adds.
    pub name: String,
    /// New tables, columns or indexes only: a binary that does not know it keeps running.
    pub additive: bool,
    /// Rolling it back loses data (refused without `allow_destructive`).
    pub destructive_down: bool,
    /// This binary knows it (false: a newer binary recorded it).
    pub known: bool,
    /// When it was applied; `None` while pending.
    pub applied_at: Option<Timestamp>,
    /// The name the database records for this number when it is not this binary's: it
    /// was applied by another release line (opening and `down` refuse such a database).
    pub recorded_name: Option<String>,
    /// Its `up`, in the engine's SQL (empty when unknown).
    pub up_sql: String,
    /// Its `down`, in the engine's SQL (`None` for the baseline and unknown versions).
    pub down_sql: Option<String>,
}

/// Every version this binary knows, then the unknown ones the database records.
#[derive(Debug, Clone)]
pub struct SchemaStatus {
    /// In order of number.
    pub versions: Vec<SchemaVersion>,
}

impl SchemaStatus {
    /// The database's version: the highest applied (`None` for a database that has none
    /// recorded, new or from before versions).
    pub fn database(&self) -> Option<u32> {
        self.versions
            .iter()
            .filter(|v| v.applied_at.is_some())
            .map(|v| v.number)
            .max()
    }

    /// The known versions not applied yet, in order.
    pub fn pending(&self) -> impl Iterator<Item = &SchemaVersion> {
        self.versions
            .iter()
            .filter(|v| v.known && v.applied_at.is_none())
    }

    /// Whether `number` is applied.
    pub fn is_applied(&self, number: u32) -> bool {
        self.versions
            .iter()
            .any(|v| v.number == number && v.applied_at.is_some())
    }
}

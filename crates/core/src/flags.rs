//! Feature flags: a flag's validated parts ([`FlagKey`], [`Rollout`], [`Audience`]), its
//! rule ([`FlagRule`]) and the one decision ([`FlagRule::decide`]) of whether it is on for a
//! [`Subject`] at a time.
//!
//! The decision, in order: a disabled flag is off; outside its schedule (`on_from`,
//! `off_after`) it is off; a `deny` match is off; an `allow` match is on; else the subject's
//! [`bucket`] (0..10000) below the rollout (in basis points) is on. A guest has no id to
//! hash: only a flag rolled out to 100 % is on for a guest.
//!
//! The bucket is a fixed hash (FNV-1a 64 with the SplitMix64 finaliser) of `key ‖ 0x00 ‖
//! principal id`: no seed, so every instance and every restart puts a subject in the same
//! bucket, and a subject's buckets for two flags are unrelated.

use crate::policy::{Principal, Role};
use crate::time::Timestamp;
use std::fmt;
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// How many buckets subjects are spread over: a rollout is counted in basis points.
pub const BUCKETS: u16 = 10_000;

/// The longest flag key.
pub const MAX_KEY: usize = 64;

/// The most entries `allow` or `deny` may hold.
pub const MAX_AUDIENCE: usize = 1_000;

/// The longest description.
pub const MAX_DESCRIPTION: usize = 1_000;

/// The prefix of the flags that steer Plinth itself (`plinth.replica_reads`); they are not
/// reported to clients by the evaluation.
pub const RESERVED_PREFIX: &str = "plinth.";

/// A flag's name: 1–64 characters of lowercase letters and digits, starting with a letter,
/// in words joined by single `-`, `_` or `.` (`new-checkout`, `plinth.replica_reads`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlagKey(String);

impl FlagKey {
    /// Validates a key.
    pub fn parse(s: &str) -> Result<Self, String> {
        const RULE: &str = "must be 1 to 64 lowercase letters, digits and single '-', '_' or \
                            '.' between them, starting with a letter";
        let bytes = s.as_bytes();
        let ok = !s.is_empty()
            && s.len() <= MAX_KEY
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
            && !bytes
                .last()
                .is_some_and(|b| matches!(b, b'-' | b'_' | b'.'))
            && !bytes
                .windows(2)
                .any(|w| matches!(w[0], b'-' | b'_' | b'.') && matches!(w[1], b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(RULE.to_owned())
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key steers Plinth itself ([`RESERVED_PREFIX`]).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The share of subjects a flag is on for, in basis points (0..=10000): a percentage with
/// at most two decimals (`12.5`, `0.01`, `100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rollout(u16);

impl Rollout {
    /// Everyone.
    pub const FULL: Self = Self(BUCKETS);
    /// No one (beyond `allow`).
    pub const NONE: Self = Self(0);

    /// A rollout from basis points.
    pub fn from_basis_points(bp: i64) -> Result<Self, String> {
        u16::try_from(bp)
            .ok()
            .filter(|bp| *bp <= BUCKETS)
            .map(Self)
            .ok_or_else(|| "must be a percentage from 0 to 100".to_owned())
    }

    /// A rollout from a percentage, which must be 0 to 100 with at most two decimals.
    pub fn from_percent(percent: f64) -> Result<Self, String> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err("must be a percentage from 0 to 100".to_owned());
        }
        let bp = (percent * 100.0).round();
        if (percent * 100.0 - bp).abs() > 1e-6 {
            return Err("may have at most two decimals (a step of 0.01 %)".to_owned());
        }
        // In range: 0.0..=10000.0, a whole number.
        #[allow(clippy::cast_possible_truncation)]
        Self::from_basis_points(bp as i64)
    }

    /// Basis points.
    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// The percentage (`12.5`).
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

/// One entry of a flag's `allow` or `deny` list: `user:<uuid>`, `role:<admin|user>` or
/// `api_key:<uuid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An account, however it authenticates.
    User(Uuid),
    /// Every account of a role (`admin` or `user`).
    Role(Role),
    /// Requests made with one API key.
    ApiKey(Uuid),
}

impl Audience {
    /// Parses `user:<uuid>`, `role:<admin|user>` or `api_key:<uuid>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        const RULE: &str = "must be user:<uuid>, role:admin, role:user or api_key:<uuid>";
        let (kind, rest) = s.split_once(':').ok_or_else(|| RULE.to_owned())?;
        let id = || Uuid::try_parse(rest).map_err(|_| RULE.to_owned());
        match kind {
            "user" => Ok(Self::User(id()?)),
            "api_key" => Ok(Self::ApiKey(id()?)),
            "role" => match rest {
                "admin" => Ok(Self::Role(Role::Admin)),
                "user" => Ok(Self::Role(Role::User)),
                _ => Err(RULE.to_owned()),
            },
            _ => Err(RULE.to_owned()),
        }
    }

    fn matches(self, subject: &Subject) -> bool {
        match self {
            Self::User(id) => subject.user == Some(id),
            Self::ApiKey(id) => subject.api_key == Some(id),
            Self::Role(role) => subject.user.is_some() && subject.role == role,
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::ApiKey(id) => write!(f, "api_key:{id}"),
            Self::Role(Role::Admin) => f.write_str("role:admin"),
            Self::Role(Role::User) => f.write_str("role:user"),
            Self::Role(Role::Guest) => f.write_str("role:guest"),
        }
    }
}

/// Who a flag is decided for: an account (with the API key it used, if any), or a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    user: Option<Uuid>,
    role: Role,
    api_key: Option<Uuid>,
}

impl Subject {
    /// The subject of a request by `principal`, with the API key it authenticated with.
    /// The local administrator (no stored account) counts as a guest: it has no id.
    pub fn of(principal: &Principal, api_key: Option<Uuid>) -> Self {
        Self {
            user: principal.user_id(),
            role: principal.role(),
            api_key,
        }
    }

    /// A guest.
    pub fn guest() -> Self {
        Self {
            user: None,
            role: Role::Guest,
            api_key: None,
        }
    }

    /// Whether the subject has an id to be bucketed by.
    pub fn is_guest(&self) -> bool {
        self.user.is_none()
    }
}

/// What decides a flag: everything but its identity and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRule {
    /// The master switch: off means off for everyone.
    pub enabled: bool,
    /// The share of subjects the flag is on for, beyond `allow`.
    pub rollout: Rollout,
    /// Subjects the flag is on for (unless denied), whatever the rollout.
    pub allow: Vec<Audience>,
    /// Subjects the flag is off for, whatever else holds.
    pub deny: Vec<Audience>,
    /// Off before this.
    pub on_from: Option<Timestamp>,
    /// Off after this.
    pub off_after: Option<Timestamp>,
}

impl FlagRule {
    /// Whether the flag is on for `subject` at `now` (the order is the module's).
    pub fn decide(&self, key: &FlagKey, subject: &Subject, now: Timestamp) -> bool {
        if !self.enabled {
            return false;
        }
        if self.on_from.is_some_and(|t| now < t) || self.off_after.is_some_and(|t| now > t) {
            return false;
        }
        if self.deny.iter().any(|a| a.matches(subject)) {
            return false;
        }
        if self.allow.iter().any(|a| a.matches(subject)) {
            return true;
        }
        match subject.user {
            Some(id) => bucket(key, &id.to_string()) < self.rollout.basis_points(),
            None => self.rollout == Rollout::FULL,
        }
    }

    /// Checks what no single field can: the schedule's order.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let (Some(from), Some(until)) = (self.on_from, self.off_after)
            && until < from
        {
            return Err(("off_after", "must not be before on_from".to_owned()));
        }
        Ok(())
    }
}

/// The bucket (0..[`BUCKETS`]) of a principal id for a flag: fixed, seedless and the same
/// on every instance and after every restart.
pub fn bucket(key: &FlagKey, principal_id: &str) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = key
        .as_str()
        .bytes()
        .chain(std::iter::once(0))
        .chain(principal_id.bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // SplitMix64's finaliser: FNV's low bits alone are poorly mixed.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // Below BUCKETS, so it fits.
    #[allow(clippy::cast_possible_truncation)]
    let b = (h % u64::from(BUCKETS)) as u16;
    b
}

/// A stored flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// UUIDv7; what audit entries about the flag name.
    pub id: Uuid,
    /// The flag's name, unique.
    pub key: FlagKey,
    /// For humans.
    pub description: String,
    /// What decides it.
    pub rule: FlagRule,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// 1, then +1 per change.
    pub version: i64,
}

/// Changes to a flag; `None` leaves a part as it is (`Some(None)` clears a schedule end).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagChanges {
    /// New description.
    pub description: Option<String>,
    /// New master switch.
    pub enabled: Option<bool>,
    /// New rollout.
    pub rollout: Option<Rollout>,
    /// New allow list.
    pub allow: Option<Vec<Audience>>,
    /// New deny list.
    pub deny: Option<Vec<Audience>>,
    /// New start, or none.
    pub on_from: Option<Option<Timestamp>>,
    /// New end, or none.
    pub off_after: Option<Option<Timestamp>>,
}

impl FlagChanges {
    /// The flag with these changes applied (its bookkeeping untouched).
    pub fn apply(&self, flag: &Flag) -> Flag {
        let mut f = flag.clone();
        if let Some(d) = &self.description {
            f.description.clone_from(d);
        }
        if let Some(e) = self.enabled {
            f.rule.enabled = e;
        }
        if let Some(r) = self.rollout {
            f.rule.rollout = r;
        }
        if let Some(a) = &self.allow {
            f.rule.allow.clone_from(a);
        }
        if let Some(d) = &self.deny {
            f.rule.deny.clone_from(d);
        }
        if let Some(t) = self.on_from {
            f.rule.on_from = t;
        }
        if let Some(t) = self.off_after {
            f.rule.off_after = t;
        }
        f
    }
}

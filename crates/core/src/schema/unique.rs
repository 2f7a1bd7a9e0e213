//! `unique` in a field declaration: `true` (no two records share a value), `"owner"` (no
//! two records of one owner share a value) or `false`.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which records may not share a field's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unique {
    /// Any number of records may share a value (`false`, or not written).
    #[default]
    No,
    /// No two records at all (`true`): a unique index on the field.
    Global,
    /// No two records of one owner (`"owner"`): a unique index on (`owner_id`, field).
    /// Records without an owner are not constrained.
    PerOwner,
}

impl Unique {
    /// Whether some uniqueness applies.
    pub fn is_some(self) -> bool {
        self != Self::No
    }

    /// Whether nothing applies (for skipping the attribute when serialising).
    pub fn is_no(&self) -> bool {
        *self == Self::No
    }
}

impl Serialize for Unique {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::No => s.serialize_bool(false),
            Self::Global => s.serialize_bool(true),
            Self::PerOwner => s.serialize_str("owner"),
        }
    }
}

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Spelling;
        impl Visitor<'_> for Spelling {
            type Value = Unique;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"owner\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Unique, E> {
                Ok(if v { Unique::Global } else { Unique::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Unique, E> {
                match v {
                    "owner" => Ok(Unique::PerOwner),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Spelling)
    }
}

/// Which records a `unique` field's values must differ among (`unique_among`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UniqueAmong {
    /// Every record, soft-deleted ones included (the default).
    #[default]
    All,
    /// Live records only: a soft-deleted record's value may be taken again (a partial
    /// unique index leaving out `status = 'deleted'`).
    Live,
}

impl UniqueAmong {
    /// Whether this is the default (for skipping the attribute when serialising).
    pub fn is_all(&self) -> bool {
        *self == Self::All
    }
}

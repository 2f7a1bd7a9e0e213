//! The names and base columns of model tables, for both engines. Plinth's own tables are in
//! `versions`; the steps that change model tables are in `steps`.

use super::Dialect;

// Plinth's own tables are in numbered versions: `sql::versions`.

/// PostgreSQL identifiers' longest length, in bytes; longer ones are silently truncated.
const MAX_IDENT: usize = 63;

impl Dialect {
    /// The name of a model's index: `{model}__{suffix}`; in PostgreSQL, when that is longer
    /// than it keeps, its first 46 bytes and a hash of the whole, so distinct names stay
    /// distinct.
    pub(crate) fn index_name(self, model: &str, suffix: &str) -> String {
        let full = format!("{model}__{suffix}");
        if self == Self::Sqlite || full.len() <= MAX_IDENT {
            return full;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in full.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}_{h:016x}", &full[..46])
    }

    /// A query counting the columns named `column` of `table` (0: add it).
    pub(crate) fn column_count(self, table: &str, column: &str) -> String {
        match self {
            Self::Sqlite => {
                format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{column}'")
            }
            Self::Postgres => format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = '{table}' AND column_name = '{column}'"
            ),
        }
    }

    /// `ALTER TABLE … ADD COLUMN` in this dialect's types, for a version of Plinth's own
    /// tables (`ty` a placeholder of [`Dialect::render`]).
    pub(crate) fn add_column(self, table: &str, column: &str, ty: &str) -> String {
        let ty = self.render(ty);
        format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")
    }

    /// The base columns of a model table. SQLite's checks spell a choice with `OR`: an `IN`
    /// list of three or more values fills an ephemeral table on every insert.
    pub(crate) fn base_columns(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "\"id\" TEXT NOT NULL PRIMARY KEY,
            \"name\" TEXT NOT NULL,
            \"status\" TEXT NOT NULL DEFAULT 'active' CHECK (\"status\" = 'active' OR \"status\" = 'inactive' OR \"status\" = 'deleted'),
            \"created_at\" INTEGER NOT NULL,
            \"updated_at\" INTEGER NOT NULL,
            \"owner_id\" TEXT,
            \"version\" INTEGER NOT NULL DEFAULT 1 CHECK (\"version\" >= 1)"
            }
            Self::Postgres => {
                "\"id\" UUID NOT NULL PRIMARY KEY,
            \"name\" TEXT NOT NULL CHECK (char_length(\"name\") BETWEEN 1 AND 255),
            \"status\" TEXT NOT NULL DEFAULT 'active' CHECK (\"status\" IN ('active', 'inactive', 'deleted')),
            \"created_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"updated_at\" TIMESTAMPTZ NOT NULL DEFAULT now(),
            \"owner_id\" UUID,
            \"version\" BIGINT NOT NULL DEFAULT 1 CHECK (\"version\" >= 1)"
            }
        }
    }
}

//! Full-text search in a list (`?q=words`, `sort=-relevance`): the words, checked and split
//! here so that client text never reaches an engine's search syntax.
//!
//! A query is split into words at every character that is not a letter or a digit (as the
//! indexes split the text they hold), so quotes, operators and control characters are
//! separators, never syntax. The engines match records holding every word, stemmed.

use super::{Column, ListQuery};
use crate::cursor::{Cursor, CursorPos};
use crate::record::Record;
use crate::schema::{ModelDef, ValueKind};

/// Longest `q`, in characters (after trimming).
pub const MAX_Q_CHARS: usize = 256;
/// Most words a `q` may hold.
pub const MAX_Q_WORDS: usize = 16;
/// The name of the relevance sort key (`sort=-relevance`), which no field can take.
pub const RELEVANCE: &str = "relevance";

/// The words of a full-text search, each a run of letters and digits, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    words: Vec<String>,
}

impl Search {
    /// Checks `q` against `model`: it must declare searchable fields, and `q` must hold a
    /// word, at most [`MAX_Q_WORDS`] of them in at most [`MAX_Q_CHARS`] characters.
    pub fn parse(model: &ModelDef, q: &str) -> Result<Self, String> {
        if model.searchable_fields().next().is_none() {
            return Err(format!(
                "model {} has no searchable fields to search",
                model.name()
            ));
        }
        let q = q.trim();
        if q.chars().count() > MAX_Q_CHARS {
            return Err(format!("must be at most {MAX_Q_CHARS} characters"));
        }
        let words: Vec<String> = q
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Err("must hold at least one word (letters or digits)".to_owned());
        }
        if words.len() > MAX_Q_WORDS {
            return Err(format!("must be at most {MAX_Q_WORDS} words"));
        }
        Ok(Self { words })
    }

    /// The words, in the order given.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

impl Column {
    /// The relevance of a record to a search: a rank computed by the engine, larger is
    /// better. Not a column of any table, and never in a [`Record`].
    pub(super) fn relevance() -> Self {
        Self {
            name: RELEVANCE.to_owned(),
            kind: ValueKind::Float,
            nullable: false,
            base: None,
            field_index: None,
            allowed: None,
            pii: false,
        }
    }

    /// Whether this is the relevance of a search (`sort=-relevance`).
    pub fn is_relevance(&self) -> bool {
        self.base.is_none() && self.field_index.is_none() && self.name == RELEVANCE
    }
}

impl ListQuery {
    /// The cursor that resumes after `last`, the final record of a full page, whose
    /// relevance was `rank` (read with the page when the list is sorted by relevance).
    pub fn cursor_after(&self, last: &Record, rank: Option<f64>) -> String {
        if !self.sort.column.is_relevance() {
            return self.next_cursor(last);
        }
        Cursor::encode(
            &self.sort,
            self.fingerprint,
            &CursorPos {
                value: rank.map_or(crate::record::Value::Null, crate::record::Value::Float),
                id: last.id,
            },
        )
    }
}

/// What a relevance sort needs: a search.
pub(super) fn check_relevance(query_has_search: bool) -> Result<(), String> {
    if query_has_search {
        Ok(())
    } else {
        Err("relevance sorts the results of a search: give q too".to_owned())
    }
}

#[cfg(test)]
mod tests;

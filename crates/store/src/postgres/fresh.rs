//! Planner statistics kept fresh by the store. PostgreSQL plans a list from its table's
//! statistics, which autovacuum refreshes about once a minute at best and never where it is
//! turned off. A table filled fast (a bulk import, a burst of creates) is planned meanwhile
//! from the figures of a much smaller table, or from none: a filtered list then reads every
//! matching row and sorts them instead of walking its index, so a page deep in a cursor
//! walk costs as much as all the rows it skips; and the change feed's poll, its plan made
//! and kept while the change log was empty, reads the whole log each time. So each instance
//! counts the records it writes per model (and the audit entries and changes that go with
//! them) and, once they reach the rows a table held at its last analysis (the table has
//! doubled; at least [`FIRST`]), runs `ANALYZE` on that table in the background, one at a
//! time per table. A write never waits for it. Doubling keeps the figures within a factor
//! of two (the planner scales the row count by the table's size itself) for a handful of
//! analyses up to a million rows: each one samples the table, and makes every connection
//! plan its statements on that table again, so a tenth (autovacuum's rule) cost a
//! PostgreSQL create burst a quarter of its rate.

use super::{PRIMARY, PgStore, errors};
use std::collections::HashMap;
use std::sync::Mutex;

/// The audit trail and the change log: read only by `seq` ranges (and indexes of their
/// own), so only `seq` is analyzed there (their large text columns, detoasted and sorted,
/// made an analysis cost more than the writes between two).
const AUDIT: &str = "_plinth_audit";
const CHANGES: &str = "_plinth_changes";

/// Records written to a table never analyzed by this instance before it is analyzed.
const FIRST: u64 = 1_000;

/// Records written per model since its table was last analyzed here.
#[derive(Debug, Default)]
pub(super) struct Freshness(Mutex<HashMap<String, Tally>>);

#[derive(Debug, Default)]
struct Tally {
    /// Records written since the last analysis began.
    since: u64,
    /// Rows the table held at the last analysis (PostgreSQL's estimate).
    rows: u64,
    /// An analysis is running.
    running: bool,
}

impl Freshness {
    /// Counts `n` records written to each of `tables`, under one lock; gives those due an
    /// analysis now (the caller runs each, then calls [`Freshness::analyzed`]).
    fn wrote<'t>(&self, tables: &[&'t str], n: u64) -> Vec<&'t str> {
        let mut tallies = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        for &table in tables {
            let tally = match tallies.get_mut(table) {
                Some(tally) => tally,
                None => tallies.entry(table.to_owned()).or_default(),
            };
            tally.since += n;
            if tally.running || tally.since < FIRST.max(tally.rows) {
                continue;
            }
            tally.running = true;
            tally.since = 0;
            due.push(table);
        }
        due
    }

    /// The analysis of `model`'s table ended, finding `rows` rows (`None`: it failed).
    fn analyzed(&self, model: &str, rows: Option<u64>) {
        let mut tallies = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tally) = tallies.get_mut(model) {
            tally.running = false;
            if let Some(rows) = rows {
                tally.rows = rows;
            }
        }
    }
}

impl PgStore {
    /// Counts `n` records written to `model` (committed), each with its audit entry and its
    /// change, analyzing a table when due: the change log and the audit trail grow with the
    /// records, and the change feed's poll, planned on an empty log, would read the whole
    /// log on every poll.
    pub(super) fn wrote(&self, model: &str, n: u64) {
        if n == 0 {
            return;
        }
        for table in self.inner.fresh.wrote(&[model, AUDIT, CHANGES], n) {
            self.analyze_in_background(table.to_owned());
        }
    }

    fn analyze_in_background(&self, table: String) {
        let store = self.clone();
        tokio::spawn(async move {
            let rows = match store.analyze(&table).await {
                Ok(rows) => Some(rows),
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "refreshing a table's planner statistics failed");
                    None
                }
            };
            store.inner.fresh.analyzed(&table, rows);
        });
    }

    /// `ANALYZE` on `table`; the rows PostgreSQL now counts there.
    async fn analyze(&self, table: &str) -> Result<u64, crate::StoreError> {
        // A model's name is an identifier of lowercase letters, digits and underscores, as
        // are Plinth's own tables'.
        let columns = if [AUDIT, CHANGES].contains(&table) {
            " (seq)"
        } else {
            ""
        };
        let table = format!("\"{table}\"");
        self.call(PRIMARY, async |c| {
            c.0.batch_execute(&format!("ANALYZE {table}{columns}"))
                .await
                .map_err(errors::map)?;
            let row =
                c.0.query_one(
                    "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::text::regclass",
                    &[&table],
                )
                .await
                .map_err(errors::map)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_due_after_a_thousand_records_then_each_time_it_doubles() {
        let fresh = Freshness::default();
        let due = |n| !fresh.wrote(&["book"], n).is_empty();
        assert!(!due(999));
        assert!(due(1), "the thousandth record");
        fresh.analyzed("book", Some(50_000));
        assert!(!due(49_999), "below the 50,000 rows analyzed");
        assert!(due(1), "the table doubled");
        assert!(!due(100_000), "one analysis at a time");
        fresh.analyzed("book", None);
        assert!(
            due(1),
            "the records written meanwhile count; a failed analysis keeps the last rows"
        );
        assert_eq!(
            fresh.wrote(&["paper", "book", "log"], 1_000),
            ["paper", "log"],
            "each table counts apart, under one lock"
        );
    }
}

//! Full-text search over a model's `searchable` fields, for both engines: the structures
//! (built by migrations, shown by `plan_sql`) and the match and rank of a list.
//!
//! - SQLite: an FTS5 table per model, external content over the model table by `rowid`,
//!   tokenizer `porter unicode61 remove_diacritics 2`, kept in step by triggers (so in the
//!   write's transaction, whoever writes); rank `bm25()`, negated so larger is better.
//! - PostgreSQL: a generated `tsvector` column (`english`) with a GIN index; match `@@`,
//!   rank `ts_rank`.
//!
//! The words reach the engine as one bound parameter: each word quoted as an FTS5 string
//! (SQLite), or given to `plainto_tsquery` (PostgreSQL), never as search syntax.

use super::{Dialect, Param, Query};
use plinth_core::query::Search;
use plinth_core::{ListQuery, ModelDef};

/// The generated `tsvector` column of a model table (PostgreSQL): a name no declared field
/// can take (field names start with a letter).
pub(crate) const VECTOR: &str = "_plinth_search";

/// The text search configuration: English stemming and stop words (PostgreSQL).
const CONFIG: &str = "'english'";

/// The FTS5 table of `model` (SQLite). Model names start with a letter, so it is no model's;
/// FTS5 names its own tables `{name}_data`, `{name}_idx`, …, which end otherwise than
/// `_fts`, so no model's search tables clash with another's.
pub(crate) fn fts_table(model: &str) -> String {
    format!("_plinth_search_{model}_fts")
}

fn trigger(model: &str, event: &str) -> String {
    format!("_plinth_search_{model}_{event}")
}

/// The GIN index over a model's search column (PostgreSQL): `{model}___search`, which no
/// field's index takes (field names start with a letter).
fn index(d: Dialect, model: &str) -> String {
    d.index_name(model, "_search")
}

/// The statements that build `model`'s search structures over its searchable fields, and
/// fill them from its rows; none without searchable fields.
pub(crate) fn build(d: Dialect, model: &ModelDef) -> Vec<String> {
    let m = model.name().as_str();
    let fields: Vec<String> = model
        .searchable_fields()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    if fields.is_empty() {
        return Vec::new();
    }
    match d {
        Dialect::Sqlite => {
            let fts = fts_table(m);
            let cols = fields.join(", ");
            let values = |row: &str| {
                fields
                    .iter()
                    .map(|f| format!("{row}.{f}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (new, old) = (values("new"), values("old"));
            let insert = format!("INSERT INTO \"{fts}\"(rowid, {cols}) VALUES (new.rowid, {new});");
            let delete = format!(
                "INSERT INTO \"{fts}\"(\"{fts}\", rowid, {cols}) VALUES ('delete', old.rowid, {old});"
            );
            vec![
                format!(
                    "CREATE VIRTUAL TABLE \"{fts}\" USING fts5({cols}, content='{m}', \
                     content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')"
                ),
                format!(
                    "CREATE TRIGGER \"{}\" AFTER INSERT ON \"{m}\" BEGIN {insert} END",
                    trigger(m, "insert")
                ),
                format!(
                    "CREATE TRIGGER \"{}\" AFTER DELETE ON \"{m}\" BEGIN {delete} END",
                    trigger(m, "delete")
                ),
                format!(
                    "CREATE TRIGGER \"{}\" AFTER UPDATE OF {cols} ON \"{m}\" BEGIN {delete} {insert} END",
                    trigger(m, "update")
                ),
                format!("INSERT INTO \"{fts}\"(\"{fts}\") VALUES ('rebuild')"),
            ]
        }
        Dialect::Postgres => {
            // Split at every character that is not a letter or a digit, as the words of a
            // search are (and as SQLite's tokenizer does): an email or a URL is words, not
            // one token of PostgreSQL's parser.
            let text = fields
                .iter()
                .map(|f| format!("regexp_replace(coalesce({f}, ''), '[^[:alnum:]]+', ' ', 'g')"))
                .collect::<Vec<_>>()
                .join(" || ' ' || ");
            vec![
                format!(
                    "ALTER TABLE \"{m}\" ADD COLUMN \"{VECTOR}\" tsvector GENERATED ALWAYS AS \
                     (to_tsvector({CONFIG}, {text})) STORED"
                ),
                format!(
                    "CREATE INDEX \"{}\" ON \"{m}\" USING gin (\"{VECTOR}\")",
                    index(d, m)
                ),
            ]
        }
    }
}

/// The statements that drop `model`'s search structures, if it has them.
pub(crate) fn drop(d: Dialect, model: &str) -> Vec<String> {
    match d {
        Dialect::Sqlite => {
            let mut v: Vec<String> = ["insert", "delete", "update"]
                .iter()
                .map(|e| format!("DROP TRIGGER IF EXISTS \"{}\"", trigger(model, e)))
                .collect();
            v.push(format!("DROP TABLE IF EXISTS \"{}\"", fts_table(model)));
            v
        }
        Dialect::Postgres => vec![
            format!("DROP INDEX IF EXISTS \"{}\"", index(d, model)),
            format!("ALTER TABLE \"{model}\" DROP COLUMN IF EXISTS \"{VECTOR}\""),
        ],
    }
}

/// The search as the engine's one parameter: FTS5 strings, one per word, all required
/// (SQLite); the words for `plainto_tsquery` (PostgreSQL).
fn words(d: Dialect, search: &Search) -> Param<'static> {
    let text = match d {
        Dialect::Sqlite => search
            .words()
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" "),
        Dialect::Postgres => search.words().join(" "),
    };
    Param::Text(text.into())
}

/// The condition a record matching `search` meets (a list and its count share it).
pub(crate) fn condition(q: &mut Query<'_>, model: &ModelDef, search: &Search) {
    let d = q.dialect;
    let m = model.name().as_str();
    match d {
        Dialect::Sqlite => {
            let fts = fts_table(m);
            q.push(&format!(
                "\"{m}\".rowid IN (SELECT rowid FROM \"{fts}\" WHERE \"{fts}\" MATCH "
            ))
            .bind(words(d, search))
            .push(")")
        }
        Dialect::Postgres => q
            .push(&format!("\"{VECTOR}\" @@ plainto_tsquery({CONFIG}, "))
            .bind(words(d, search))
            .push(")"),
    };
}

/// A list's relevance, when it is sorted by it: what joins the list's table (SQLite), and
/// the expression of a record's rank (larger is better).
pub(crate) struct Rank {
    /// Appended after `FROM "{model}"`.
    pub(crate) join: String,
    /// The rank of the row, a float.
    pub(crate) expr: String,
}

/// The relevance of `query`'s rows, if it is sorted by relevance (it searches then).
pub(crate) fn rank(q: &mut Query<'_>, model: &ModelDef, query: &ListQuery) -> Option<Rank> {
    let search = query.search.as_ref()?;
    if !query.sort.column.is_relevance() {
        return None;
    }
    let d = q.dialect;
    let p = q.placeholder(words(d, search));
    let m = model.name().as_str();
    Some(match d {
        Dialect::Sqlite => {
            let fts = fts_table(m);
            Rank {
                join: format!(
                    " JOIN (SELECT rowid AS \"_rowid\", -bm25(\"{fts}\") AS \"_rank\" FROM \"{fts}\" \
                     WHERE \"{fts}\" MATCH {p}) AS \"_search\" ON \"_search\".\"_rowid\" = \"{m}\".rowid"
                ),
                expr: "\"_search\".\"_rank\"".to_owned(),
            }
        }
        Dialect::Postgres => Rank {
            join: String::new(),
            expr: format!("ts_rank(\"{VECTOR}\", plainto_tsquery({CONFIG}, {p}), 1)::float8"),
        },
    })
}

/// The triggers Plinth makes for `model` on SQLite: all a backup may hold.
pub(crate) fn sqlite_triggers(model: &ModelDef) -> Vec<String> {
    build(Dialect::Sqlite, model)
        .into_iter()
        .filter(|s| s.starts_with("CREATE TRIGGER"))
        .collect()
}

/// Re-derives `model`'s FTS5 index from its rows (SQLite), if it has one: after a restore,
/// whose copy may have renumbered rows.
pub(crate) fn sqlite_rebuild(model: &ModelDef) -> Option<String> {
    model.searchable_fields().next()?;
    let fts = fts_table(model.name().as_str());
    Some(format!(
        "INSERT INTO \"{fts}\"(\"{fts}\") VALUES ('rebuild')"
    ))
}

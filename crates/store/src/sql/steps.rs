//! The steps of a migration as SQL, written once for both engines: [`statements`] spells a
//! step's statements in a dialect; [`apply`] runs them inside the engine's migration
//! transaction and [`rendered`] shows them (`plinth migrate --dry-run`), so what is shown
//! is what runs.

use super::{Dialect, Exec, Query, SqlRow, blind_column, search};
use crate::StoreError;
use plinth_core::format::TextFormat;
use plinth_core::migrate::{IndexKind, Plan, Rule, Step};
use plinth_core::schema::{FieldDef, FieldType, Unique, UniqueAmong, ValueKind};
use plinth_core::{ModelDef, Value};

mod checks;
use checks::{NARROW_ADVICE, breaks, literal, offenders, quote, rescale};

/// How many offending records a refusal names.
const NAMED: usize = 10;

/// One statement of a step, with what its outcome means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    /// Runs; its error is the step's.
    Run(String),
    /// Builds a unique index: a conflict means existing records share values, and refuses
    /// the step with this message.
    Unique(String, String),
    /// Selects every value (`id`, the value) for a check SQL cannot make (a text format):
    /// any value failing it refuses the step.
    Scan {
        /// The query.
        sql: String,
        /// The format each value must have.
        format: TextFormat,
        /// What is refused and why.
        head: String,
    },
    /// Selects the records that keep the step from being made (`id`, and the count of
    /// all): any refuses it.
    Check {
        /// The query.
        sql: String,
        /// What is refused and why.
        head: String,
        /// What the operator can do.
        advice: &'static str,
    },
}

impl Stmt {
    /// The SQL, as run.
    pub(crate) fn sql(&self) -> &str {
        match self {
            Self::Run(sql)
            | Self::Unique(sql, _)
            | Self::Check { sql, .. }
            | Self::Scan { sql, .. } => sql,
        }
    }
}

/// Each step's description with the statements it runs in `d` (none for a step that is
/// refused whatever the data).
pub(crate) fn rendered(d: Dialect, plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.steps
        .iter()
        .map(|step| {
            let sql = statements(d, step)
                .map(|s| s.iter().map(|s| s.sql().to_owned()).collect())
                .unwrap_or_default();
            (step.describe(), sql)
        })
        .collect()
}

/// Applies one step of a plan.
pub(crate) async fn apply<E: Exec>(e: &E, step: &Step) -> Result<(), StoreError> {
    for stmt in statements(E::DIALECT, step).map_err(StoreError::Migration)? {
        match stmt {
            Stmt::Run(sql) => e.batch(&sql).await?,
            Stmt::Unique(sql, refusal) => e.batch(&sql).await.map_err(|e| match e {
                StoreError::Conflict { .. } => StoreError::Migration(refusal),
                other => other,
            })?,
            Stmt::Scan { sql, format, head } => {
                let mut q = Query::new(E::DIALECT);
                q.push(&sql);
                let rows = e
                    .rows(&q, |r| {
                        let bad = match r.value(1, ValueKind::Text)? {
                            Value::Text(t) => format.check(&t).is_err(),
                            _ => false,
                        };
                        bad.then(|| r.uuid(0)).transpose()
                    })
                    .await?;
                let bad: Vec<String> = rows
                    .into_iter()
                    .flatten()
                    .map(|id| id.to_string())
                    .collect();
                if !bad.is_empty() {
                    let more = if bad.len() > NAMED { ", …" } else { "" };
                    return Err(StoreError::Migration(format!(
                        "{head}, and {} record(s) (soft-deleted ones count) do not: {}{more}. {}",
                        bad.len(),
                        bad[..bad.len().min(NAMED)].join(", "),
                        NARROW_ADVICE
                    )));
                }
            }
            Stmt::Check { sql, head, advice } => {
                let mut q = Query::new(E::DIALECT);
                q.push(&sql);
                let rows = e.rows(&q, |r| Ok((r.uuid(0)?, r.int(1)?))).await?;
                if let Some((_, count)) = rows.first() {
                    let ids: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
                    let more = if *count > i64::try_from(rows.len()).unwrap_or(i64::MAX) {
                        ", …"
                    } else {
                        ""
                    };
                    return Err(StoreError::Migration(format!(
                        "{head}, and {count} record(s) (soft-deleted ones count) do not: {}{more}. {advice}",
                        ids.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The statements of one step in `d`, or why the step cannot be made at all.
pub(crate) fn statements(d: Dialect, step: &Step) -> Result<Vec<Stmt>, String> {
    use Stmt::Run;
    Ok(match step {
        Step::CreateModel(model) => create_model(d, model),
        Step::DropModel(name) => {
            // PostgreSQL's search column and index go with the table; SQLite's search table
            // is a table of its own.
            let mut v: Vec<Stmt> = match d {
                Dialect::Sqlite => search::drop(d, name).into_iter().map(Run).collect(),
                Dialect::Postgres => Vec::new(),
            };
            v.push(Run(format!("DROP TABLE IF EXISTS \"{name}\"")));
            v.push(Run(format!(
                "DELETE FROM _plinth_idempotency WHERE model = {}",
                quote(name)
            )));
            v.push(Run(format!(
                "DELETE FROM _plinth_batch_keys WHERE model = {}",
                quote(name)
            )));
            v
        }
        Step::DropSearch { model } => search::drop(d, model).into_iter().map(Run).collect(),
        Step::BuildSearch { model, .. } => search::build(d, model).into_iter().map(Run).collect(),
        Step::AddField { model, index } => {
            let f = field(model, *index)?;
            let (m, name) = (model.name(), f.name());
            let ty = d.column_type(f.value_kind());
            let mut v = vec![Run(format!(
                "ALTER TABLE \"{m}\" ADD COLUMN \"{name}\" {ty}"
            ))];
            if f.pii() {
                let blind = blind_column(name.as_str());
                v.push(Run(format!(
                    "ALTER TABLE \"{m}\" ADD COLUMN \"{blind}\" TEXT"
                )));
            }
            if let Some(value) = f.default() {
                let value = literal(d, value);
                v.push(Run(format!("UPDATE \"{m}\" SET \"{name}\" = {value}")));
            }
            v.extend(field_indexes(d, model, f));
            v
        }
        Step::DropField { model, field, pii } => {
            let m = model.as_str();
            let mut v = vec![
                Run(format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    d.index_name(m, field)
                )),
                Run(format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    d.index_name(m, &format!("{field}__ref"))
                )),
                Run(format!("ALTER TABLE \"{m}\" DROP COLUMN \"{field}\"")),
            ];
            // A pii field's blind index goes with it.
            if *pii {
                let blind = blind_column(field);
                v.push(Run(format!("ALTER TABLE \"{m}\" DROP COLUMN \"{blind}\"")));
            }
            v
        }
        Step::RenameField {
            model,
            index,
            from,
            pii,
        } => {
            let f = field(model, *index)?;
            let (m, name) = (model.name().as_str(), f.name().as_str());
            // Index names follow the field's: the old ones go, the declared ones are built.
            let mut v = vec![
                Run(format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    d.index_name(m, from)
                )),
                Run(format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    d.index_name(m, &format!("{from}__ref"))
                )),
                Run(format!(
                    "ALTER TABLE \"{m}\" RENAME COLUMN \"{from}\" TO \"{name}\""
                )),
            ];
            if *pii {
                let (old, new) = (blind_column(from), blind_column(name));
                v.push(Run(format!(
                    "ALTER TABLE \"{m}\" RENAME COLUMN \"{old}\" TO \"{new}\""
                )));
            }
            v.extend(field_indexes(d, model, f));
            v
        }
        Step::Narrow {
            model,
            index,
            rules,
        } => {
            let f = field(model, *index)?;
            let c = format!("\"{}\"", f.name());
            let broken: Vec<String> = rules.iter().filter_map(|r| breaks(d, &c, r)).collect();
            let must: Vec<String> = rules.iter().map(Rule::describe).collect();
            let head = format!(
                "cannot migrate: every {}.{} must be {}",
                model.name(),
                f.name(),
                must.join(" and ")
            );
            let mut v = Vec::new();
            if !broken.is_empty() {
                v.push(Stmt::Check {
                    sql: offenders(model, &broken.join(" OR ")),
                    head: head.clone(),
                    advice: NARROW_ADVICE,
                });
            }
            for rule in rules {
                if let Rule::Format(format) = rule {
                    v.push(Stmt::Scan {
                        sql: format!(
                            "SELECT \"id\", {c} FROM \"{}\" WHERE {c} IS NOT NULL ORDER BY \"id\"",
                            model.name()
                        ),
                        format: *format,
                        head: head.clone(),
                    });
                }
            }
            v
        }
        Step::Rescale { model, index, from } => {
            let f = field(model, *index)?;
            let to = match f.value_kind() {
                ValueKind::Decimal(s) => s,
                _ => return Err("a rescale names a field that is not a decimal".to_owned()),
            };
            rescale(model, f, *from, to)
        }
        Step::ChangeType { model, index, .. } => {
            let f = field(model, *index)?;
            let (m, name) = (model.name().as_str(), f.name().as_str());
            let ty = d.column_type(f.value_kind());
            match d {
                Dialect::Postgres => vec![Run(format!(
                    "ALTER TABLE \"{m}\" ALTER COLUMN \"{name}\" TYPE {ty} USING \"{name}\"::{ty}"
                ))],
                // SQLite cannot change a column's type: a new column takes the values.
                Dialect::Sqlite => {
                    let tmp = format!("_retype_{name}");
                    let mut v = vec![
                        Run(format!(
                            "DROP INDEX IF EXISTS \"{}\"",
                            d.index_name(m, name)
                        )),
                        Run(format!("ALTER TABLE \"{m}\" ADD COLUMN \"{tmp}\" {ty}")),
                        Run(format!(
                            "UPDATE \"{m}\" SET \"{tmp}\" = CAST(\"{name}\" AS {ty})"
                        )),
                        Run(format!("ALTER TABLE \"{m}\" DROP COLUMN \"{name}\"")),
                        Run(format!(
                            "ALTER TABLE \"{m}\" RENAME COLUMN \"{tmp}\" TO \"{name}\""
                        )),
                    ];
                    v.extend(field_index(d, model, f));
                    v
                }
            }
        }
        Step::ChangePii { model, field, pii } => {
            let (how, what) = if *pii {
                ("pii", "sealed")
            } else {
                ("no longer pii", "opened")
            };
            return Err(format!(
                "cannot make {model}.{field} {how} in place: its stored values would have to be {what}. \
                 Declare a new field, copy the values over through the API, then drop the old one"
            ));
        }
        Step::Refused { .. } => return Err(step.describe()),
        Step::Reindex { model, index, .. } => {
            // Whatever the old index was, one may exist: a pii field always has one, and on
            // SQLite a type change before this step has built the declared one.
            let f = field(model, *index)?;
            let idx = d.index_name(model.name().as_str(), f.name().as_str());
            let mut v = vec![Run(format!("DROP INDEX IF EXISTS \"{idx}\""))];
            v.extend(field_index(d, model, f));
            v
        }
        Step::RequireField {
            model,
            field,
            added,
        } => {
            let (head, advice) = if *added {
                (
                    format!(
                        "cannot add the required field {model}.{field}: every existing record needs a value"
                    ),
                    "Give the field a default for them, or declare it optional",
                )
            } else {
                (
                    format!("cannot make {model}.{field} required: every record needs a value"),
                    "Give those records a value, or keep the field optional",
                )
            };
            let sql = format!(
                "SELECT \"id\", count(*) OVER () FROM \"{model}\" WHERE \"{field}\" IS NULL \
                 ORDER BY \"id\" LIMIT {NAMED}"
            );
            vec![Stmt::Check { sql, head, advice }]
        }
    })
}

/// The field a migration step names.
fn field(model: &ModelDef, index: usize) -> Result<&FieldDef, String> {
    model
        .fields()
        .get(index)
        .ok_or_else(|| "migration step names a missing field".to_owned())
}

fn create_model(d: Dialect, model: &ModelDef) -> Vec<Stmt> {
    let m = model.name().as_str();
    let mut sql = format!("CREATE TABLE \"{m}\" (\n    {}", d.base_columns());
    for f in model.fields() {
        let ty = d.column_type(f.value_kind());
        sql.push_str(&format!(",\n    \"{}\" {ty}", f.name()));
    }
    for f in model.fields().iter().filter(|f| f.pii()) {
        let blind = blind_column(f.name().as_str());
        sql.push_str(&format!(",\n    \"{blind}\" TEXT"));
    }
    sql.push_str("\n)");
    let mut v = vec![Stmt::Run(sql)];
    for (suffix, columns) in [
        ("status_created", "\"status\", \"created_at\", \"id\""),
        ("created", "\"created_at\", \"id\""),
        ("updated", "\"updated_at\", \"id\""),
        ("name", "\"name\", \"id\""),
        ("owner", "\"owner_id\""),
    ] {
        let idx = d.index_name(m, suffix);
        v.push(Stmt::Run(format!(
            "CREATE INDEX \"{idx}\" ON \"{m}\" ({columns})"
        )));
    }
    for f in model.fields() {
        v.extend(field_indexes(d, model, f));
    }
    v.extend(search::build(d, model).into_iter().map(Stmt::Run));
    v
}

/// A field's index, and a reference's lookup index.
fn field_indexes(d: Dialect, model: &ModelDef, f: &FieldDef) -> Vec<Stmt> {
    let mut v: Vec<Stmt> = field_index(d, model, f).into_iter().collect();
    if matches!(f.ty(), FieldType::Reference { .. }) {
        // Purge looks up references to the record it removes.
        let (m, name) = (model.name().as_str(), f.name());
        let idx = d.index_name(m, &format!("{name}__ref"));
        v.push(Stmt::Run(format!(
            "CREATE INDEX IF NOT EXISTS \"{idx}\" ON \"{m}\" (\"{name}\")"
        )));
    }
    v
}

/// A field's index; a pii field's is on its blind index, and it always has one (equality
/// filters look values up through it).
fn field_index(d: Dialect, model: &ModelDef, f: &FieldDef) -> Option<Stmt> {
    let m = model.name().as_str();
    let idx = d.index_name(m, f.name().as_str());
    let blind;
    let (name, kind) = if f.pii() {
        blind = blind_column(f.name().as_str());
        let kind = match IndexKind::of_field(f) {
            IndexKind::None => IndexKind::Plain,
            other => other,
        };
        (blind.as_str(), kind)
    } else {
        (f.name().as_str(), IndexKind::of_field(f))
    };
    let unique = |sql: String| Some(Stmt::Unique(sql, unique_refusal(model, f)));
    // `unique_among = "live"`: soft-deleted records are left out of the index.
    let live = " WHERE \"status\" <> 'deleted'";
    match kind {
        IndexKind::None => None,
        IndexKind::Unique => unique(format!(
            "CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"{name}\")"
        )),
        IndexKind::UniquePerOwner => unique(format!(
            "CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"owner_id\", \"{name}\")"
        )),
        IndexKind::UniqueLive => unique(format!(
            "CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"{name}\"){live}"
        )),
        IndexKind::UniquePerOwnerLive => unique(format!(
            "CREATE UNIQUE INDEX \"{idx}\" ON \"{m}\" (\"owner_id\", \"{name}\"){live}"
        )),
        IndexKind::Plain => Some(Stmt::Run(format!(
            "CREATE INDEX \"{idx}\" ON \"{m}\" (\"{name}\", \"id\")"
        ))),
    }
}

/// Why a unique index cannot be built: existing records share values.
fn unique_refusal(model: &ModelDef, f: &FieldDef) -> String {
    let (how, whose) = match (f.unique(), f.unique_among()) {
        (Unique::PerOwner, UniqueAmong::All) => (" per owner", "records of one owner"),
        (Unique::PerOwner, UniqueAmong::Live) => (" per owner", "live records of one owner"),
        (_, UniqueAmong::Live) => ("", "live records"),
        _ => ("", "records"),
    };
    format!(
        "cannot make {}.{} unique{how}: existing {whose} share values. Fix the duplicates first",
        model.name(),
        f.name()
    )
}

//! Schema migration planning: the difference between the models applied to a database and
//! the models declared now, as an ordered list of steps.
//!
//! Planning is pure; the store executes a [`Plan`] inside one transaction. Steps that lose
//! data are marked destructive and refused unless the operator allows them.

use crate::format::TextFormat;
use crate::record::Value;
use crate::schema::{
    Bound, FieldDef, FieldKind, ModelDecl, ModelDef, Schema, Unique, UniqueAmong, kind_name,
};
use std::sync::Arc;

/// Which index a field has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// No index.
    None,
    /// A plain index.
    Plain,
    /// A unique index.
    Unique,
    /// A unique index on (`owner_id`, the field).
    UniquePerOwner,
    /// A unique index leaving out soft-deleted records (`unique_among = "live"`).
    UniqueLive,
    /// A unique index on (`owner_id`, the field) leaving out soft-deleted records.
    UniquePerOwnerLive,
}

impl IndexKind {
    fn of(unique: Unique, among: UniqueAmong, indexed: bool) -> Self {
        let live = among == UniqueAmong::Live;
        match unique {
            Unique::Global if live => Self::UniqueLive,
            Unique::Global => Self::Unique,
            Unique::PerOwner if live => Self::UniquePerOwnerLive,
            Unique::PerOwner => Self::UniquePerOwner,
            Unique::No if indexed => Self::Plain,
            Unique::No => Self::None,
        }
    }

    /// The index a field definition asks for.
    pub fn of_field(f: &FieldDef) -> Self {
        Self::of(f.unique(), f.unique_among(), f.indexed())
    }
}

/// One schema change.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create a model's table with its base and declared columns and indexes.
    CreateModel(Arc<ModelDef>),
    /// Drop a model's table and everything in it (destructive).
    DropModel(String),
    /// Add a nullable column (and its index, if declared).
    AddField {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field in the model's declared fields.
        index: usize,
    },
    /// Drop a column and its values (destructive).
    DropField {
        /// Model name.
        model: String,
        /// Field name.
        field: String,
        /// Whether it was `pii` (its blind index column goes too).
        pii: bool,
    },
    /// Rename a column keeping its values, with its blind index column and its indexes.
    RenameField {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field (under its new name).
        index: usize,
        /// The name it had.
        from: String,
        /// Whether it was `pii`.
        pii: bool,
    },
    /// Check that every existing value (soft-deleted records' too) meets tighter
    /// constraints: refused, naming records, while any does not.
    Narrow {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field.
        index: usize,
        /// The constraints that got tighter.
        rules: Vec<Rule>,
    },
    /// Change a `decimal`'s scale keeping its values: every stored count of units is
    /// multiplied (scale up) or divided (scale down) by a power of ten, after a check that
    /// each value fits (no digit lost, no overflow), refused naming records otherwise.
    Rescale {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field.
        index: usize,
        /// The scale it had.
        from: u8,
    },
    /// Convert a column between `integer` and `float` keeping its values (a preceding
    /// [`Step::Narrow`] with [`Rule::Integral`] or [`Rule::ExactInFloat`] makes sure values
    /// convert exactly).
    ChangeType {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field.
        index: usize,
        /// The kind it had.
        from: FieldKind,
    },
    /// A change the declaration asks for but the plan cannot make: refused.
    Refused {
        /// Model name.
        model: String,
        /// Field name.
        field: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Change a field's index: drop the old one (if any), create the new one (if any).
    Reindex {
        /// The model, as declared now.
        model: Arc<ModelDef>,
        /// Position of the field.
        index: usize,
        /// The index it had.
        from: IndexKind,
    },
    /// A kept field became `pii` or stopped being one: refused, naming the field (its
    /// values would need sealing or opening in place).
    ChangePii {
        /// Model name.
        model: String,
        /// Field name.
        field: String,
        /// Whether it is `pii` now.
        pii: bool,
    },
    /// A field became required (or a required one was added): refused, naming records,
    /// while any record lacks a value.
    RequireField {
        /// Model name.
        model: String,
        /// Field name.
        field: String,
        /// Whether the field is new (its default, if any, filled existing records).
        added: bool,
    },
}

/// A constraint that got tighter, which existing values must meet.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// At most this many characters.
    MaxLength(u32),
    /// At least this many characters.
    MinLength(u32),
    /// One of these values.
    Values(Vec<String>),
    /// At least this.
    Min(Bound),
    /// At most this.
    Max(Bound),
    /// At least this date or decimal (at the field's scale).
    AtLeast(Value),
    /// At most this date or decimal (at the field's scale).
    AtMost(Value),
    /// Of this format (text becoming `email` or `url`): checked value by value.
    Format(TextFormat),
    /// At most this many items (`array`).
    MaxItems(u32),
    /// Each string item at most this many characters (`array`).
    ItemMaxLength(u32),
    /// A whole number within 64 bits (a float becoming an integer).
    Integral,
    /// Within ±[`EXACT_IN_FLOAT`], where a float holds every whole number exactly (an
    /// integer becoming a float).
    ExactInFloat,
}

/// 2^53: past it, a float cannot hold every whole number, so an integer becoming a float
/// would silently round.
pub const EXACT_IN_FLOAT: i64 = 1 << 53;

impl Rule {
    /// What values must be, e.g. `at most 10 characters`.
    pub fn describe(&self) -> String {
        match self {
            Self::MaxLength(n) => format!("at most {n} characters"),
            Self::MinLength(n) => format!("at least {n} characters"),
            Self::Values(v) => format!("one of {}", v.join(", ")),
            Self::Min(b) => format!("at least {}", b.text()),
            Self::Max(b) => format!("at most {}", b.text()),
            Self::AtLeast(v) => format!("at least {}", value_text(v)),
            Self::AtMost(v) => format!("at most {}", value_text(v)),
            Self::Format(TextFormat::Email) => "an email address".to_owned(),
            Self::Format(TextFormat::Url) => "an absolute http or https URL".to_owned(),
            Self::MaxItems(n) => format!("a list of at most {n} items"),
            Self::ItemMaxLength(n) => format!("a list of items of at most {n} characters"),
            Self::Integral => "a whole number".to_owned(),
            Self::ExactInFloat => format!(
                "between -{EXACT_IN_FLOAT} and {EXACT_IN_FLOAT} (beyond, a float would round it)"
            ),
        }
    }
}

fn value_text(v: &Value) -> String {
    match v.to_json() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

impl Step {
    /// Whether the step loses data.
    pub fn is_destructive(&self) -> bool {
        matches!(self, Self::DropModel(_) | Self::DropField { .. })
    }

    /// Whether instances still declaring the models from before keep working once the
    /// step is applied: a new model, a new (nullable) column, a new index, a check of
    /// stored values. A rename, a type change or a changed index would break or undo them.
    pub fn runs_beside_older(&self) -> bool {
        match self {
            Self::CreateModel(_)
            | Self::AddField { .. }
            | Self::Narrow { .. }
            | Self::RequireField { .. } => true,
            Self::Reindex { from, .. } => *from == IndexKind::None,
            _ => false,
        }
    }

    /// A one-line description for logs and `plinth migrate --dry-run`.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateModel(m) => format!("create model {}", m.name()),
            Self::DropModel(m) => format!("drop model {m} and all its records"),
            Self::AddField { model, index } => {
                format!("add field {}.{}", model.name(), field_name(model, *index))
            }
            Self::DropField { model, field, .. } => {
                format!("drop field {model}.{field} and its values")
            }
            Self::RenameField {
                model, index, from, ..
            } => format!(
                "rename field {m}.{from} to {m}.{}, keeping its values",
                field_name(model, *index),
                m = model.name()
            ),
            Self::Narrow {
                model,
                index,
                rules,
            } => format!(
                "check that every {}.{} is {}",
                model.name(),
                field_name(model, *index),
                rules
                    .iter()
                    .map(Rule::describe)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Self::ChangeType { model, index, from } => {
                let to = model
                    .fields()
                    .get(*index)
                    .map_or("?", |f| kind_name(f.kind()));
                format!(
                    "change {}.{} from {} to {to}, keeping its values",
                    model.name(),
                    field_name(model, *index),
                    kind_name(*from)
                )
            }
            Self::Rescale { model, index, from } => {
                let to = match model.fields().get(*index).map(FieldDef::value_kind) {
                    Some(crate::schema::ValueKind::Decimal(s)) => s.to_string(),
                    _ => "?".to_owned(),
                };
                format!(
                    "change the scale of {}.{} from {from} to {to}, keeping its values",
                    model.name(),
                    field_name(model, *index)
                )
            }
            Self::Refused {
                model,
                field,
                reason,
            } => format!("cannot change {model}.{field}: {reason}"),
            Self::Reindex { model, index, .. } => format!(
                "change the index of {}.{}",
                model.name(),
                field_name(model, *index)
            ),
            Self::RequireField { model, field, .. } => format!("make {model}.{field} required"),
            Self::ChangePii { model, field, pii } => {
                let how = if *pii { "pii" } else { "no longer pii" };
                format!("make {model}.{field} {how}")
            }
        }
    }
}

fn field_name(model: &ModelDef, index: usize) -> &str {
    model.fields().get(index).map_or("?", |f| f.name().as_str())
}

/// The steps that bring an applied schema to the declared one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Plans the migration from `applied` (the declarations recorded in the database) to
    /// `declared`.
    pub fn new(applied: &[ModelDecl], declared: &Schema) -> Self {
        let mut steps = Vec::new();
        for old in applied {
            if declared.model(&old.name).is_none() {
                steps.push(Step::DropModel(old.name.clone()));
            }
        }
        for model in declared.models() {
            let Some(old) = applied.iter().find(|a| a.name == model.name().as_str()) else {
                steps.push(Step::CreateModel(Arc::clone(model)));
                continue;
            };
            plan_fields(old, model, &mut steps);
        }
        Self { steps }
    }

    /// Whether nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether every step drops a model, a field or an index the declarations no longer
    /// name: the database holds everything declared, and more. A server can
    /// run on it as it is (the extra columns, tables and indexes kept, unseen), as an older
    /// instance does beside a newer one during a rolling update.
    pub fn holds_more(&self) -> bool {
        !self.steps.is_empty()
            && self.steps.iter().all(|s| match s {
                Step::DropModel(_) | Step::DropField { .. } => true,
                // An index the database has and the declaration does not ask for.
                Step::Reindex { model, index, .. } => model
                    .fields()
                    .get(*index)
                    .is_some_and(|f| IndexKind::of_field(f) == IndexKind::None),
                _ => false,
            })
    }

    /// Refuses, naming them, the steps that instances running on the current declarations
    /// could not work beside ([`Step::runs_beside_older`]): what a server starting beside
    /// other instances may apply is new models, new fields, new indexes and checks.
    pub fn check_beside_others(&self) -> Result<(), String> {
        let blocking: Vec<String> = self
            .steps
            .iter()
            .filter(|s| !s.runs_beside_older())
            .map(Step::describe)
            .collect();
        if blocking.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing a schema change while other instances use the database: {}. A rolling \
             update applies only new models, new fields and new indexes; stop every instance, \
             then start one (with --allow-destructive for a destructive step, after taking a \
             backup) or run plinth migrate",
            blocking.join("; ")
        ))
    }

    /// The descriptions of the steps that lose data.
    pub fn destructive(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.is_destructive())
            .map(Step::describe)
            .collect()
    }

    /// Refuses destructive steps unless allowed, with a message naming each of them.
    /// Changes the plan cannot make are refused first, whatever is allowed.
    pub fn check(&self, allow_destructive: bool) -> Result<(), String> {
        let refused: Vec<String> = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Refused { .. }))
            .map(Step::describe)
            .collect();
        if !refused.is_empty() {
            return Err(format!(
                "refusing the schema change: {}",
                refused.join("; ")
            ));
        }
        let destructive = self.destructive();
        if destructive.is_empty() || allow_destructive {
            return Ok(());
        }
        Err(format!(
            "refusing a destructive schema change: {}. Restore the declaration, or run again with --allow-destructive \
             after taking a backup",
            destructive.join("; ")
        ))
    }
}

mod fields;
use fields::plan_fields;

#[cfg(test)]
mod evolve_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;

/// Whether a server may run on a database whose recorded declarations are `applied` while
/// it declares `declared`, without migrating ([`Plan::holds_more`]): the steps kept undone,
/// or why not. A field this configuration does not declare must be optional and without a
/// default there, or this server would write records the recorded rules forbid.
pub fn adoptable(applied: &[ModelDecl], declared: &Schema) -> Result<Vec<String>, String> {
    let plan = Plan::new(applied, declared);
    if !plan.is_empty() && !plan.holds_more() {
        plan.check(false)?;
        return Err(
            "the database does not hold every declared model and field: migrate it first"
                .to_owned(),
        );
    }
    for step in &plan.steps {
        let Step::DropField { model, field, .. } = step else {
            continue;
        };
        let recorded = applied
            .iter()
            .find(|m| &m.name == model)
            .and_then(|m| m.fields.iter().find(|f| &f.name == field));
        if recorded.is_some_and(|f| f.required || f.default.is_some()) {
            return Err(format!(
                "{model}.{field} is not declared here but is required or has a default in the \
                 database: this server would write records without it. Declare it, or stop \
                 the instances that declare it first"
            ));
        }
    }
    Ok(plan.steps.iter().map(Step::describe).collect())
}

//! Schema migration planning: the difference between the models applied to a database and
//! the models declared now, as an ordered list of steps.
//!
//! Planning is pure; the store executes a [`Plan`] inside one transaction. Steps that lose
//! data are marked destructive and refused unless the operator allows them.

use crate::schema::{FieldDecl, FieldDef, FieldKind, ModelDecl, ModelDef, Schema, Unique};
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
}

impl IndexKind {
    fn of(unique: Unique, indexed: bool) -> Self {
        match unique {
            Unique::Global => Self::Unique,
            Unique::PerOwner => Self::UniquePerOwner,
            Unique::No if indexed => Self::Plain,
            Unique::No => Self::None,
        }
    }

    /// The index a field definition asks for.
    pub fn of_field(f: &FieldDef) -> Self {
        Self::of(f.unique(), f.indexed())
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
    /// A field became required: refused while any record lacks a value.
    RequireField {
        /// Model name.
        model: String,
        /// Field name.
        field: String,
    },
}

impl Step {
    /// Whether the step loses data.
    pub fn is_destructive(&self) -> bool {
        matches!(self, Self::DropModel(_) | Self::DropField { .. })
    }

    /// A one-line description for logs and `plinth migrate --dry-run`.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateModel(m) => format!("create model {}", m.name()),
            Self::DropModel(m) => format!("drop model {m} and all its records"),
            Self::AddField { model, index } => {
                format!("add field {}.{}", model.name(), field_name(model, *index))
            }
            Self::DropField { model, field } => {
                format!("drop field {model}.{field} and its values")
            }
            Self::Reindex { model, index, .. } => format!(
                "change the index of {}.{}",
                model.name(),
                field_name(model, *index)
            ),
            Self::RequireField { model, field } => format!("make {model}.{field} required"),
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

    /// The descriptions of the steps that lose data.
    pub fn destructive(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.is_destructive())
            .map(Step::describe)
            .collect()
    }

    /// Refuses destructive steps unless allowed, with a message naming each of them.
    pub fn check(&self, allow_destructive: bool) -> Result<(), String> {
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

/// Whether an applied field can become the declared one in place.
fn same_storage(old: &FieldDecl, new: &FieldDef) -> bool {
    old.kind.value_kind() == new.value_kind()
        && (old.kind != FieldKind::Reference || old.model.as_deref() == reference_target(new))
}

fn reference_target(f: &FieldDef) -> Option<&str> {
    match f.ty() {
        crate::schema::FieldType::Reference { model } => Some(model.as_str()),
        _ => None,
    }
}

fn plan_fields(old: &ModelDecl, model: &Arc<ModelDef>, steps: &mut Vec<Step>) {
    let name = model.name().as_str();
    for f in &old.fields {
        let kept = model
            .field(&f.name)
            .is_some_and(|(_, new)| same_storage(f, new));
        if !kept {
            steps.push(Step::DropField {
                model: name.to_owned(),
                field: f.name.clone(),
            });
        }
    }
    for (index, new) in model.fields().iter().enumerate() {
        let field = new.name().as_str();
        match old
            .fields
            .iter()
            .find(|f| f.name == field)
            .filter(|f| same_storage(f, new))
        {
            None => {
                steps.push(Step::AddField {
                    model: Arc::clone(model),
                    index,
                });
                if new.required() {
                    steps.push(Step::RequireField {
                        model: name.to_owned(),
                        field: field.to_owned(),
                    });
                }
            }
            Some(f) => {
                if f.pii != new.pii() {
                    steps.push(Step::ChangePii {
                        model: name.to_owned(),
                        field: field.to_owned(),
                        pii: new.pii(),
                    });
                }
                let from = IndexKind::of(f.unique, f.indexed);
                if from != IndexKind::of_field(new) {
                    steps.push(Step::Reindex {
                        model: Arc::clone(model),
                        index,
                        from,
                    });
                }
                if new.required() && !f.required {
                    steps.push(Step::RequireField {
                        model: name.to_owned(),
                        field: field.to_owned(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! What both engines' migrations share: how a step that cannot be applied is explained.
//! (The DDL itself stays with each engine: types, index names and transactions differ.)

use crate::StoreError;
use plinth_core::ModelDef;
use plinth_core::schema::FieldDef;

/// The field a migration step names.
pub(crate) fn field(model: &ModelDef, index: usize) -> Result<&FieldDef, StoreError> {
    model
        .fields()
        .get(index)
        .ok_or_else(|| StoreError::internal("migration step names a missing field"))
}

/// A unique index that cannot be built: existing records share values.
pub(crate) fn unique_failure(e: StoreError, model: &ModelDef, f: &FieldDef) -> StoreError {
    match e {
        StoreError::Conflict { .. } => StoreError::Migration(format!(
            "cannot make {}.{} unique: existing records share values. Fix the duplicates first",
            model.name(),
            f.name()
        )),
        other => other,
    }
}

/// A field cannot become required while `missing` records have no value.
pub(crate) fn require(
    model: impl std::fmt::Display,
    field: impl std::fmt::Display,
    missing: i64,
) -> Result<(), StoreError> {
    if missing > 0 {
        return Err(StoreError::Migration(format!(
            "cannot make {model}.{field} required: {missing} existing record(s) have no value. Declare it \
             optional, give those records a value, then make it required"
        )));
    }
    Ok(())
}

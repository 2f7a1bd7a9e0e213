//! The search structures of a kept model: when its searchable fields change (one made
//! searchable or not, added, dropped or renamed), the old structures go before the fields
//! change and new ones are built, from the stored rows, after. The index is derived data:
//! nothing is lost, so nothing is refused.

use super::Step;
use crate::schema::{ModelDecl, ModelDef};
use std::sync::Arc;

/// The step dropping `old`'s search structures (run before the field steps) and the one
/// building `model`'s (run after), each when needed.
pub(super) fn steps(old: &ModelDecl, model: &Arc<ModelDef>) -> (Option<Step>, Option<Step>) {
    let before: Vec<&str> = old
        .fields
        .iter()
        .filter(|f| f.searchable)
        .map(|f| f.name.as_str())
        .collect();
    let after: Vec<&str> = model
        .searchable_fields()
        .map(|f| f.name().as_str())
        .collect();
    if before == after {
        return (None, None);
    }
    let drop = (!before.is_empty()).then(|| Step::DropSearch {
        model: old.name.clone(),
    });
    let build = (!after.is_empty()).then(|| Step::BuildSearch {
        model: Arc::clone(model),
        rebuilt: !before.is_empty(),
    });
    (drop, build)
}

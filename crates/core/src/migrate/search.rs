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

#[cfg(test)]
mod tests {
    use super::super::tests::{described, field, item, plan};
    use serde_json::json;

    fn title(searchable: bool) -> serde_json::Value {
        field("title", "string", json!({ "searchable": searchable }))
    }

    #[test]
    fn the_index_is_dropped_before_fields_change_and_built_after() {
        let from = item(&[
            title(true),
            field("old", "text", json!({ "searchable": true })),
        ]);
        let to = item(&[
            title(true),
            field(
                "new",
                "text",
                json!({ "searchable": true, "renamed_from": "old" }),
            ),
        ]);
        let p = plan(from, to);
        assert_eq!(
            described(&p),
            [
                "drop the search index of item",
                "rename field item.old to item.new, keeping its values",
                "build the search index of item over title, new, from its records",
            ]
        );
        assert!(p.check(false).is_ok(), "derived data: nothing refused");
        assert!(
            p.check_beside_others().is_err(),
            "older instances search the old index"
        );
    }

    #[test]
    fn a_first_index_runs_beside_older_instances_and_an_undeclared_one_is_held() {
        let added = plan(item(&[title(false)]), item(&[title(true)]));
        assert_eq!(
            described(&added),
            ["build the search index of item over title, from its records"]
        );
        assert!(added.check_beside_others().is_ok());
        let removed = plan(item(&[title(true)]), item(&[title(false)]));
        assert_eq!(described(&removed), ["drop the search index of item"]);
        assert!(
            removed.holds_more(),
            "an index nobody declares is kept, unseen"
        );
        let same = plan(item(&[title(true)]), item(&[title(true)]));
        assert!(same.is_empty());
        // A field that is not searchable changes nothing of the index.
        let other = plan(
            item(&[title(true), field("x", "string", json!({}))]),
            item(&[title(true)]),
        );
        assert_eq!(described(&other), ["drop field item.x and its values"]);
    }
}

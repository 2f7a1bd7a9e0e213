//! Planning renames, conversions and tighter constraints (keeping values), and defaults.
use super::tests::{decls, described, field, item, plan};
use super::*;
use serde_json::{Value as Json, json};

fn refusal(declared: Json) -> String {
    match Schema::from_decls(&decls(declared)) {
        Ok(_) => panic!("accepted"),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.location, e.reason))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[test]
fn a_rename_keeps_the_column_and_is_not_destructive() {
    let old = item(&[field("code", "string", json!({ "unique": true }))]);
    let renamed = field(
        "sku",
        "string",
        json!({ "unique": true, "renamed_from": "code" }),
    );
    let p = plan(old, item(std::slice::from_ref(&renamed)));
    assert_eq!(
        described(&p),
        ["rename field item.code to item.sku, keeping its values"]
    );
    assert!(
        matches!(&p.steps[0], Step::RenameField { from, pii: false, index: 0, .. } if from == "code"),
        "{p:?}"
    );
    assert_eq!(p.check(false), Ok(()));

    // Once applied, the declaration may stay: nothing more to do.
    let applied = item(&[field("sku", "string", json!({ "unique": true }))]);
    assert!(plan(applied, item(&[renamed])).is_empty());
}

#[test]
fn a_pii_field_is_not_renamed_in_place() {
    let old = item(&[field("email", "string", json!({ "pii": true }))]);
    let renamed = field(
        "contact",
        "string",
        json!({ "pii": true, "renamed_from": "email" }),
    );
    let p = plan(old, item(&[renamed]));
    let why = p
        .check(true)
        .expect_err("sealed values are bound to the name");
    assert!(
        why.contains("a pii field cannot be renamed in place"),
        "{why}"
    );
    assert!(p.destructive().is_empty(), "nothing dropped: {p:?}");
}

#[test]
fn a_rename_with_other_changes_plans_them_after_it() {
    let old = item(&[field("n", "float", json!({ "indexed": true }))]);
    let new = field(
        "total",
        "integer",
        json!({ "unique": true, "required": true, "renamed_from": "n" }),
    );
    let p = plan(old, item(&[new]));
    assert_eq!(
        described(&p),
        [
            "rename field item.n to item.total, keeping its values",
            "check that every item.total is a whole number",
            "change item.total from float to integer, keeping its values",
            "make item.total required",
        ],
        "the rename builds the declared index itself"
    );
}

#[test]
fn a_rename_is_refused_when_both_names_or_neither_exist() {
    let renamed = field("b", "string", json!({ "renamed_from": "a" }));
    let both = item(&[
        field("a", "string", json!({})),
        field("b", "string", json!({})),
    ]);
    let p = plan(both, item(std::slice::from_ref(&renamed)));
    assert_eq!(p.steps.len(), 1, "nothing dropped: {p:?}");
    let why = p.check(true).expect_err("both exist");
    assert!(why.contains("both \"a\" and \"b\" exist"), "{why}");

    let p = plan(item(&[field("c", "string", json!({}))]), item(&[renamed]));
    let why = p.check(true).expect_err("neither exists");
    assert!(
        why.contains("renamed_from names \"a\", which model item does not have"),
        "{why}"
    );
}

#[test]
fn renamed_from_is_checked_at_load() {
    let still = item(&[
        field("a", "string", json!({})),
        field("b", "string", json!({ "renamed_from": "a" })),
    ]);
    assert!(refusal(still).contains("which is still declared"));
    let twice = item(&[
        field("b", "string", json!({ "renamed_from": "a" })),
        field("c", "string", json!({ "renamed_from": "a" })),
    ]);
    assert!(refusal(twice).contains("the old name of another field too"));
    let itself = item(&[field("b", "string", json!({ "renamed_from": "b" }))]);
    assert!(refusal(itself).contains("names the field itself"));
    let bad = item(&[field(
        "b",
        "string",
        json!({ "renamed_from": "Not A Name" }),
    )]);
    assert!(refusal(bad).contains("renamed_from"));
}

#[test]
fn integer_to_float_converts_in_place_and_back_checks_first() {
    let p = plan(
        item(&[field("n", "integer", json!({ "min": 0 }))]),
        item(&[field("n", "float", json!({ "min": 0 }))]),
    );
    assert_eq!(
        described(&p),
        [
            "check that every item.n is between -9007199254740992 and 9007199254740992 \
             (beyond, a float would round it)",
            "change item.n from integer to float, keeping its values"
        ]
    );
    assert_eq!(p.check(false), Ok(()));
    let p = plan(
        item(&[field("n", "float", json!({}))]),
        item(&[field("n", "integer", json!({ "max": 10 }))]),
    );
    assert!(
        matches!(&p.steps[0], Step::Narrow { rules, .. } if *rules == [Rule::Integral, Rule::Max(Bound::Int(10))]),
        "{p:?}"
    );
    assert!(matches!(
        p.steps[1],
        Step::ChangeType {
            from: FieldKind::Float,
            ..
        }
    ));
}

#[test]
fn tighter_constraints_are_checked() {
    let p = plan(
        item(&[
            field("t", "string", json!({ "max_length": 99 })),
            field("e", "enum", json!({ "values": ["a", "b"] })),
            field("x", "float", json!({ "min": 0, "max": 10 })),
        ]),
        item(&[
            field("t", "string", json!({ "max_length": 10, "min_length": 1 })),
            field("e", "enum", json!({ "values": ["a"] })),
            field("x", "float", json!({ "min": 0.5, "max": 10 })),
        ]),
    );
    assert_eq!(
        described(&p),
        [
            "check that every item.t is at most 10 characters and at least 1 characters",
            "check that every item.e is one of a",
            "check that every item.x is at least 0.5",
        ]
    );
    assert_eq!(p.check(false), Ok(()), "checks are not destructive");
}

#[test]
fn tighter_lengths_of_a_pii_field_are_refused() {
    let p = plan(
        item(&[field("s", "text", json!({ "pii": true }))]),
        item(&[field("s", "string", json!({ "pii": true }))]),
    );
    let why = p.check(true).expect_err("sealed values");
    assert!(why.contains("item.s") && why.contains("sealed"), "{why}");
}

#[test]
fn defaults_are_checked_against_the_field() {
    let ok = item(&[
        field("n", "integer", json!({ "default": 3, "min": 0 })),
        field("t", "string", json!({ "default": "x", "required": true })),
        field(
            "at",
            "datetime",
            json!({ "default": "2024-01-02T03:04:05Z" }),
        ),
        field("j", "json", json!({ "default": { "a": [1] } })),
    ]);
    let schema = Schema::from_decls(&decls(ok)).expect("valid defaults");
    let model = schema.model("item").expect("item");
    assert_eq!(
        model.fields()[0].default(),
        Some(&crate::record::Value::Integer(3))
    );
    for (attrs, expected) in [
        (
            field("n", "integer", json!({ "default": -1, "min": 0 })),
            "default must be",
        ),
        (
            field("n", "integer", json!({ "default": "3" })),
            "default must be",
        ),
        (
            field("e", "enum", json!({ "values": ["a"], "default": "b" })),
            "default must be one of a",
        ),
        (
            field("s", "string", json!({ "pii": true, "default": "x" })),
            "a pii field cannot have a default",
        ),
        (
            field("s", "string", json!({ "unique": true, "default": "x" })),
            "a unique field cannot have a default",
        ),
    ] {
        let why = refusal(item(&[attrs]));
        assert!(why.contains(expected), "{why}");
    }
    let r = refusal(json!([
        { "name": "a" },
        { "name": "item", "fields": [field("r", "reference", json!({ "model": "a", "default": "x" }))] }
    ]));
    assert!(r.contains("a reference field cannot have a default"), "{r}");
}

#[test]
fn a_new_required_field_is_checked_after_its_default_fills_records() {
    let p = plan(
        item(&[]),
        item(&[field(
            "n",
            "integer",
            json!({ "required": true, "default": 0 }),
        )]),
    );
    assert!(matches!(p.steps[0], Step::AddField { index: 0, .. }));
    assert!(matches!(p.steps[1], Step::RequireField { added: true, .. }));
}

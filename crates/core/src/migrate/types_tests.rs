//! Planning changes to `date`, `decimal`, `array`, `email` and `url` fields and to
//! `unique_among`: free changes, checked ones, and changes between types dropped (refused
//! unless destructive steps are allowed).

use super::tests::{described, field, item, plan};
use super::*;
use serde_json::json;

#[test]
fn text_to_email_or_url_is_checked_and_back_is_free() {
    let p = plan(
        item(&[
            field("a", "string", json!({})),
            field("b", "text", json!({})),
        ]),
        item(&[field("a", "email", json!({})), field("b", "url", json!({}))]),
    );
    assert_eq!(
        described(&p),
        [
            "check that every item.a is an email address and at most 254 characters",
            "check that every item.b is an absolute http or https URL and at most 2048 characters",
        ]
    );
    assert_eq!(p.check(false), Ok(()));
    let back = plan(
        item(&[field("a", "email", json!({})), field("b", "url", json!({}))]),
        item(&[
            field("a", "string", json!({})),
            field("b", "text", json!({})),
        ]),
    );
    // An email of 254 characters fits a string of 255; a url of 2048 fits text.
    assert!(back.is_empty(), "{back:?}");
    let pii = plan(
        item(&[field("a", "string", json!({ "pii": true }))]),
        item(&[field("a", "email", json!({ "pii": true }))]),
    );
    let why = pii
        .check(true)
        .expect_err("sealed values cannot be checked");
    assert!(why.contains("format cannot be checked in place"), "{why}");
}

#[test]
fn a_scale_change_rescales_then_checks_bounds() {
    let p = plan(
        item(&[field("p", "decimal", json!({}))]),
        item(&[field("p", "decimal", json!({ "scale": 4, "max": "10" }))]),
    );
    assert_eq!(
        described(&p),
        [
            "change the scale of item.p from 2 to 4, keeping its values",
            "check that every item.p is at most 10.0000",
        ]
    );
    assert!(matches!(p.steps[0], Step::Rescale { from: 2, .. }));
    assert!(!p.steps[0].runs_beside_older());
    assert_eq!(p.check(false), Ok(()));
    // The same bound at another scale is not tighter.
    let same = plan(
        item(&[field("p", "decimal", json!({ "max": "10" }))]),
        item(&[field(
            "p",
            "decimal",
            json!({ "scale": 3, "max": "10.000" }),
        )]),
    );
    assert_eq!(described(&same).len(), 1, "{same:?}");
}

#[test]
fn tighter_dates_and_arrays_are_checked_looser_ones_are_not() {
    let p = plan(
        item(&[
            field("d", "date", json!({ "min": "2000-01-01" })),
            field("t", "array", json!({ "items": "string" })),
        ]),
        item(&[
            field(
                "d",
                "date",
                json!({ "min": "2001-01-01", "max": "2030-01-01" }),
            ),
            field(
                "t",
                "array",
                json!({ "items": "string", "max_items": 10, "max_length": 20 }),
            ),
        ]),
    );
    assert_eq!(
        p.steps
            .iter()
            .map(|s| match s {
                Step::Narrow { rules, .. } => rules.clone(),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        [
            vec![
                Rule::AtLeast(Value::Date(
                    crate::date::Date::parse("2001-01-01").expect("date")
                )),
                Rule::AtMost(Value::Date(
                    crate::date::Date::parse("2030-01-01").expect("date")
                )),
            ],
            vec![Rule::MaxItems(10), Rule::ItemMaxLength(20)],
        ]
    );
    let looser = plan(
        item(&[
            field("d", "date", json!({ "min": "2001-01-01" })),
            field("t", "array", json!({ "items": "string", "max_items": 5 })),
        ]),
        item(&[
            field("d", "date", json!({ "min": "2000-01-01" })),
            field("t", "array", json!({ "items": "string", "max_items": 6 })),
        ]),
    );
    assert!(looser.is_empty(), "{looser:?}");
}

#[test]
fn other_type_changes_drop_and_add_the_field() {
    for (from, to) in [
        (json!({ "type": "string" }), json!({ "type": "date" })),
        (json!({ "type": "integer" }), json!({ "type": "decimal" })),
        (
            json!({ "type": "array", "items": "string" }),
            json!({ "type": "array", "items": "integer" }),
        ),
        (json!({ "type": "date" }), json!({ "type": "datetime" })),
        (
            json!({ "type": "json" }),
            json!({ "type": "array", "items": "string" }),
        ),
    ] {
        let mut old = from.clone();
        old["name"] = json!("f");
        let mut new = to.clone();
        new["name"] = json!("f");
        let p = plan(item(&[old]), item(&[new]));
        assert_eq!(
            described(&p),
            ["drop field item.f and its values", "add field item.f"],
            "{from} -> {to}"
        );
        let why = p.check(false).expect_err("destructive");
        assert!(why.contains("--allow-destructive"), "{why}");
    }
}

#[test]
fn unique_among_changes_are_index_changes() {
    let p = plan(
        item(&[field("c", "email", json!({ "unique": true }))]),
        item(&[field(
            "c",
            "email",
            json!({ "unique": true, "unique_among": "live" }),
        )]),
    );
    assert!(
        matches!(
            p.steps.as_slice(),
            [Step::Reindex {
                from: IndexKind::Unique,
                ..
            }]
        ),
        "{p:?}"
    );
    let p = plan(
        item(&[field(
            "c",
            "string",
            json!({ "unique": "owner", "unique_among": "live" }),
        )]),
        item(&[field("c", "string", json!({ "unique": "owner" }))]),
    );
    assert!(
        matches!(
            p.steps.as_slice(),
            [Step::Reindex {
                from: IndexKind::UniquePerOwnerLive,
                ..
            }]
        ),
        "{p:?}"
    );
    let model = &p.steps[0];
    let Step::Reindex { model, index, .. } = model else {
        unreachable!()
    };
    assert_eq!(
        IndexKind::of_field(&model.fields()[*index]),
        IndexKind::UniquePerOwner
    );
}

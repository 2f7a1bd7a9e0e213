use super::*;
use serde_json::{Value as Json, json};

pub(super) fn decls(v: Json) -> Vec<ModelDecl> {
    serde_json::from_value(v).expect("well-formed declarations")
}

fn schema(v: Json) -> Schema {
    Schema::from_decls(&decls(v)).expect("valid schema")
}

/// A field declaration: `name`, `type` and any extra attributes.
pub(super) fn field(name: &str, kind: &str, attrs: Json) -> Json {
    let mut f = json!({ "name": name, "type": kind });
    f.as_object_mut()
        .expect("object")
        .extend(attrs.as_object().expect("object").clone());
    f
}

/// One model `item` declaring `fields`.
pub(super) fn item(fields: &[Json]) -> Json {
    json!([{ "name": "item", "fields": fields }])
}

pub(super) fn plan(applied: Json, declared: Json) -> Plan {
    Plan::new(&decls(applied), &schema(declared))
}

pub(super) fn described(p: &Plan) -> Vec<String> {
    p.steps.iter().map(Step::describe).collect()
}

fn none() -> Json {
    json!({})
}

#[test]
fn nothing_applied_creates_every_model() {
    let target = field("customer", "reference", json!({ "model": "customer" }));
    let declared = schema(json!([{ "name": "customer" }, { "name": "order", "fields": [target] }]));
    let p = Plan::new(&[], &declared);
    let [customer, order] = [0, 1].map(|i| Step::CreateModel(Arc::clone(&declared.models()[i])));
    assert_eq!(p.steps, [customer, order]);
    assert_eq!(
        described(&p),
        ["create model customer", "create model order"]
    );
    assert_eq!(p.check(false), Ok(()));

    let default = Plan::new(&[], &Schema::from_decls(&[]).expect("default"));
    assert_eq!(described(&default), ["create model resource"]);
}

#[test]
fn unchanged_declarations_plan_nothing() {
    let fields = item(&[
        field(
            "title",
            "string",
            json!({ "required": true, "unique": true }),
        ),
        field("qty", "integer", json!({ "indexed": true, "min": 0 })),
        field("meta", "json", none()),
    ]);
    let p = plan(fields.clone(), fields);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(p.check(false), Ok(()));
    let default = Schema::from_decls(&[]).expect("default");
    let p = Plan::new(&[ModelDecl::default_resource()], &default);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn looser_constraints_plan_nothing() {
    let p = plan(
        item(&[
            field("t", "string", json!({ "max_length": 10, "min_length": 2 })),
            field("n", "integer", json!({ "min": 1, "max": 2 })),
            field("e", "enum", json!({ "values": ["a"] })),
            field("s", "enum", json!({ "values": ["a"] })),
        ]),
        item(&[
            field("t", "string", json!({ "max_length": 99, "pattern": "^a" })),
            field("n", "integer", json!({ "min": 0 })),
            field("e", "enum", json!({ "values": ["a", "b"] })),
            field("s", "string", none()),
        ]),
    );
    assert!(p.is_empty(), "{p:?}");
    let required = item(&[field("flag", "boolean", json!({ "required": true }))]);
    let p = plan(required, item(&[field("flag", "boolean", none())]));
    assert!(p.is_empty(), "dropping `required` needs no step: {p:?}");
}

#[test]
fn adding_a_nullable_field() {
    let declared = schema(item(&[
        field("a", "string", none()),
        field("b", "float", none()),
    ]));
    let p = Plan::new(&decls(item(&[field("a", "string", none())])), &declared);
    let model = Arc::clone(declared.model("item").expect("item"));
    assert_eq!(p.steps, [Step::AddField { model, index: 1 }]);
    assert_eq!(described(&p), ["add field item.b"]);
    assert!(!p.steps[0].is_destructive());
    assert_eq!(p.check(false), Ok(()));
}

#[test]
fn adding_a_required_field() {
    let p = plan(
        item(&[]),
        item(&[field("sku", "string", json!({ "required": true }))]),
    );
    assert!(
        matches!(p.steps[0], Step::AddField { index: 0, .. }),
        "{p:?}"
    );
    let require = Step::RequireField {
        model: "item".to_owned(),
        field: "sku".to_owned(),
        added: true,
    };
    assert_eq!(p.steps[1], require);
    assert_eq!(
        described(&p),
        ["add field item.sku", "make item.sku required"]
    );
    assert_eq!(
        p.check(false),
        Ok(()),
        "not destructive: refused later if records lack a value"
    );
}

#[test]
fn making_an_existing_field_required() {
    let optional = item(&[field("sku", "string", none())]);
    let p = plan(
        optional,
        item(&[field("sku", "string", json!({ "required": true }))]),
    );
    let require = Step::RequireField {
        model: "item".to_owned(),
        field: "sku".to_owned(),
        added: false,
    };
    assert_eq!(p.steps, [require]);
}

#[test]
fn dropping_a_field_is_destructive() {
    let keep = field("keep", "text", none());
    let p = plan(
        item(&[keep.clone(), field("old", "integer", none())]),
        item(&[keep]),
    );
    let drop = Step::DropField {
        model: "item".to_owned(),
        field: "old".to_owned(),
        pii: false,
    };
    assert_eq!(p.steps, [drop]);
    assert!(p.steps[0].is_destructive());
    let refusal = p.check(false).expect_err("destructive plan allowed");
    assert_eq!(
        refusal,
        "refusing a destructive schema change: drop field item.old and its values. Restore the \
         declaration, or run again with --allow-destructive after taking a backup"
    );
    assert_eq!(p.check(true), Ok(()));
}

#[test]
fn holds_more_tells_a_database_holding_more_than_declared() {
    let keep = field("keep", "text", none());
    let more = json!([
        { "name": "item", "fields": [keep.clone(), field("old", "integer", none())] },
        { "name": "gone", "fields": [] }
    ]);
    assert!(plan(more.clone(), item(std::slice::from_ref(&keep))).holds_more());
    // Anything else to do, or nothing at all, is not a database holding more.
    let added = item(&[keep.clone(), field("new", "integer", none())]);
    assert!(!plan(more, added).holds_more());
    assert!(!plan(item(std::slice::from_ref(&keep)), item(&[keep])).holds_more());
}

#[test]
fn a_database_holding_more_is_adopted_only_when_the_extra_fields_are_optional() {
    let keep = field("keep", "text", none());
    let declared = schema(item(std::slice::from_ref(&keep)));
    let optional = decls(item(&[keep.clone(), field("isbn", "string", none())]));
    assert_eq!(
        adoptable(&optional, &declared),
        Ok(vec!["drop field item.isbn and its values".to_owned()])
    );
    for strict in [json!({ "required": true }), json!({ "default": "x" })] {
        let applied = decls(item(&[keep.clone(), field("isbn", "string", strict)]));
        let refused = adoptable(&applied, &declared).expect_err("writes would break a rule");
        assert!(refused.contains("item.isbn"), "{refused}");
    }
    // An index the database has and this configuration does not is kept.
    let indexed = decls(item(&[field("keep", "text", json!({ "indexed": true }))]));
    assert_eq!(adoptable(&indexed, &declared).map(|k| k.len()), Ok(1));
    // A database lacking a declared field is migrated, never adopted.
    let fewer = decls(item(&[]));
    assert!(adoptable(&fewer, &declared).is_err());
}

#[test]
fn changing_storage_drops_and_re_adds() {
    let required_int = field("code", "integer", json!({ "required": true }));
    let p = plan(
        item(&[field("code", "string", none())]),
        item(&[required_int]),
    );
    let expected = ["drop field item.code and its values", "add field item.code"];
    assert_eq!(
        described(&p),
        [&expected[..], &["make item.code required"]].concat()
    );
    assert!(matches!(p.steps[1], Step::AddField { index: 0, .. }));
    let refusal = p.check(false).expect_err("destructive");
    assert!(
        refusal.contains("drop field item.code and its values"),
        "{refusal}"
    );

    let with_ref = |target: &str| {
        let r = field("r", "reference", json!({ "model": target }));
        json!([{ "name": "a" }, { "name": "b" }, { "name": "item", "fields": [r] }])
    };
    let p = plan(with_ref("a"), with_ref("b"));
    let expected = ["drop field item.r and its values", "add field item.r"];
    assert_eq!(described(&p), expected, "reference target changed");

    let p = plan(
        item(&[field("n", "boolean", none())]),
        item(&[field("n", "integer", none())]),
    );
    let expected = ["drop field item.n and its values", "add field item.n"];
    assert_eq!(described(&p), expected, "boolean to integer");
}

#[test]
fn changing_kind_within_storage_keeps_the_column() {
    let p = plan(
        item(&[field("s", "string", none())]),
        item(&[field("s", "text", none())]),
    );
    assert!(p.is_empty(), "string -> text: {p:?}");
    let p = plan(
        item(&[field("s", "text", none())]),
        item(&[field("s", "string", none())]),
    );
    assert_eq!(
        described(&p),
        ["check that every item.s is at most 255 characters"]
    );
    let to_enum = item(&[field("s", "enum", json!({ "values": ["a", "b"] }))]);
    let p = plan(item(&[field("s", "string", none())]), to_enum);
    assert_eq!(described(&p), ["check that every item.s is one of a, b"]);
}

#[test]
fn index_changes_reindex_from_the_old_index() {
    let with_index = |attrs: &Json| {
        item(&[
            field("pad", "boolean", none()),
            field("f", "string", attrs.clone()),
        ])
    };
    let (plain, unique) = (json!({ "indexed": true }), json!({ "unique": true }));
    let owner = json!({ "unique": "owner" });
    for (old, new, expected) in [
        (unique.clone(), owner.clone(), IndexKind::Unique),
        (owner.clone(), unique.clone(), IndexKind::UniquePerOwner),
        (owner.clone(), none(), IndexKind::UniquePerOwner),
        (plain.clone(), owner.clone(), IndexKind::Plain),
        (none(), plain.clone(), IndexKind::None),
        (none(), unique.clone(), IndexKind::None),
        (plain.clone(), none(), IndexKind::Plain),
        (plain.clone(), unique.clone(), IndexKind::Plain),
        (unique.clone(), plain.clone(), IndexKind::Unique),
        (unique.clone(), none(), IndexKind::Unique),
    ] {
        let p = plan(with_index(&old), with_index(&new));
        let [
            Step::Reindex {
                model,
                index: 1,
                from,
            },
        ] = p.steps.as_slice()
        else {
            panic!("{old} -> {new}: expected one Reindex of field 1, got {p:?}")
        };
        assert_eq!(
            (model.name().as_str(), *from),
            ("item", expected),
            "{old} -> {new}"
        );
        assert_eq!(described(&p), ["change the index of item.f"]);
        assert_eq!(p.check(false), Ok(()));
    }
    let both = json!({ "unique": true, "indexed": true });
    let p = plan(with_index(&unique), with_index(&both));
    assert!(p.is_empty(), "a unique field is already indexed: {p:?}");
}

#[test]
fn reindex_and_require_together() {
    let new = field("f", "string", json!({ "unique": true, "required": true }));
    let p = plan(item(&[field("f", "string", none())]), item(&[new]));
    assert!(
        matches!(
            p.steps[0],
            Step::Reindex {
                index: 0,
                from: IndexKind::None,
                ..
            }
        ),
        "{p:?}"
    );
    assert_eq!(
        described(&p),
        ["change the index of item.f", "make item.f required"]
    );
}

#[test]
fn dropping_a_model_is_destructive_and_comes_first() {
    let applied = json!([{ "name": "gone" }, { "name": "kept" }]);
    let p = plan(applied, json!([{ "name": "kept" }, { "name": "fresh" }]));
    assert_eq!(p.steps[0], Step::DropModel("gone".to_owned()));
    assert_eq!(
        described(&p),
        ["drop model gone and all its records", "create model fresh"]
    );
    assert!(p.steps[0].is_destructive() && !p.steps[1].is_destructive());
    let refusal = p.check(false).expect_err("destructive plan allowed");
    let head = "refusing a destructive schema change: drop model gone and all its records. ";
    assert!(refusal.starts_with(head), "{refusal}");
    assert_eq!(p.check(true), Ok(()));
}

#[test]
fn every_destructive_step_is_named() {
    let old_fields = [field("a", "json", none()), field("b", "text", none())];
    let applied = json!([{ "name": "gone" }, { "name": "item", "fields": old_fields }]);
    let p = plan(applied, item(&[field("c", "boolean", none())]));
    let expected = [
        "drop model gone and all its records",
        "drop field item.a and its values",
        "drop field item.b and its values",
        "add field item.c",
    ];
    assert_eq!(described(&p), expected);
    let refusal = p.check(false).expect_err("destructive");
    let named = expected[..3].join("; ");
    assert!(refusal.contains(&format!(": {named}. ")), "{refusal}");
    assert!(!refusal.contains("add field"), "{refusal}");
}

#[test]
fn reference_fields_keep_their_column_only_while_the_target_is_unchanged() {
    let with_ref = |target: &str| {
        let r = field("r", "reference", json!({ "model": target }));
        json!([{ "name": "a" }, { "name": "b" }, { "name": "item", "fields": [r] }])
    };
    let p = plan(with_ref("a"), with_ref("a"));
    assert!(p.is_empty(), "unchanged reference: {p:?}");
    let p = plan(with_ref("a"), with_ref("b"));
    assert!(!p.is_empty(), "retargeted reference: {p:?}");
    let drop = Step::DropField {
        model: "item".to_owned(),
        field: "r".to_owned(),
        pii: false,
    };
    assert_eq!(p.steps[0], drop);
    assert!(
        matches!(p.steps[1], Step::AddField { index: 0, .. }),
        "{p:?}"
    );
    assert_eq!(p.steps.len(), 2, "{p:?}");
}

#[test]
fn a_plan_with_steps_is_not_empty() {
    let p = plan(item(&[]), item(&[field("a", "string", none())]));
    assert!(!p.is_empty(), "{p:?}");
    assert!(Plan::default().is_empty());
}

#[test]
fn beside_other_instances_only_additions_and_checks_apply() {
    let a = field("a", "integer", none());
    let added = plan(
        item(std::slice::from_ref(&a)),
        item(&[
            field("a", "integer", json!({ "indexed": true, "max": 10 })),
            field("b", "string", json!({ "required": true, "default": "x" })),
        ]),
    );
    assert_eq!(added.check_beside_others(), Ok(()), "{added:?}");
    for (from, to) in [
        (a.clone(), field("a", "float", none())),
        (
            a.clone(),
            field("b", "integer", json!({ "renamed_from": "a" })),
        ),
        (field("a", "integer", json!({ "indexed": true })), a.clone()),
    ] {
        let p = plan(item(&[from]), item(&[to]));
        let refused = p.check_beside_others().expect_err("refused beside others");
        assert!(refused.contains("other instances"), "{refused}");
    }
}

use super::*;
use serde_json::{Value as Json, json};

/// The tail of the reason for a name outside `^[a-z][a-z0-9_]*$`.
const SHAPE: &str =
    "must start with a lowercase letter and contain only lowercase letters, digits and '_'";

fn schema(decls: Json) -> Result<Schema, Vec<DeclError>> {
    let decls: Vec<ModelDecl> = serde_json::from_value(decls).expect("well-formed declarations");
    Schema::from_decls(&decls)
}

/// Model `thing` declaring `fields`.
fn thing(fields: Json) -> Result<Schema, Vec<DeclError>> {
    schema(json!([{ "name": "thing", "fields": fields }]))
}

/// A field `f` of type `kind` with extra attributes.
fn field(kind: &str, attrs: Json) -> Json {
    let mut f = json!({ "name": "f", "type": kind });
    f.as_object_mut()
        .expect("object")
        .extend(attrs.as_object().expect("object").clone());
    f
}

fn err(model_index: usize, location: &str, reason: &str) -> DeclError {
    DeclError {
        model_index,
        location: location.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Asserts that `thing` declaring just `field` is refused, at that field, for `reason`.
#[track_caller]
fn refused(field: Json, reason: &str) {
    let name = field["name"].as_str().expect("field name").to_owned();
    let errors = thing(json!([field])).expect_err("declaration accepted");
    let location = format!("model \"thing\", field {name:?}");
    assert_eq!(errors, [err(0, &location, reason)]);
}

#[test]
fn no_declarations_means_the_default_resource_model() {
    let s = Schema::from_decls(&[]).expect("default schema");
    assert_eq!(s.models().len(), 1);
    let m = s.model("resource").expect("resource model");
    assert_eq!(m.name().as_str(), "resource");
    assert!(m.fields().is_empty());
    assert!(m.policy().guest_read);
    assert_eq!(m.decl(), &ModelDecl::default_resource());
    assert!(s.model("customer").is_none());
}

#[test]
fn declarations_replace_the_default_model() {
    let s = schema(json!([{ "name": "customer" }, { "name": "order", "guest_read": false }]));
    let s = s.expect("valid");
    let names: Vec<&str> = s.models().iter().map(|m| m.name().as_str()).collect();
    assert_eq!(names, ["customer", "order"]);
    assert!(s.model("resource").is_none());
    assert!(s.model("customer").expect("customer").policy().guest_read);
    assert!(!s.model("order").expect("order").policy().guest_read);
}

#[test]
fn every_field_type_compiles_with_its_constraints() {
    let s = thing(json!([
        { "name": "email", "type": "string", "required": true, "unique": true, "pattern": "^.+@" },
        { "name": "bio", "type": "text", "min_length": 1 },
        { "name": "qty", "type": "integer", "min": -5, "max": 10, "indexed": true },
        { "name": "score", "type": "float", "min": 0, "max": 2.5 },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime" },
        { "name": "tier", "type": "enum", "values": ["free", "pro"] },
        { "name": "meta", "type": "json" },
        { "name": "parent", "type": "reference", "model": "thing" },
    ]))
    .expect("valid");
    let m = s.model("thing").expect("thing");
    let ty = |name: &str| m.field(name).expect(name).1.ty().clone();
    let FieldType::Text {
        min_length: 0,
        max_length: 255,
        pattern: Some(p),
        format: None,
    } = ty("email")
    else {
        panic!("email compiled to {:?}", ty("email"))
    };
    assert!(p.is_match("a@b") && !p.is_match("ab"));
    let (min_length, max_length) = (1, DEFAULT_TEXT_MAX);
    assert_eq!(
        ty("bio"),
        FieldType::Text {
            min_length,
            max_length,
            pattern: None,
            format: None,
        }
    );
    assert_eq!(
        ty("qty"),
        FieldType::Integer {
            min: Some(-5),
            max: Some(10)
        }
    );
    assert_eq!(
        ty("score"),
        FieldType::Float {
            min: Some(0.0),
            max: Some(2.5)
        }
    );
    assert_eq!(ty("flag"), FieldType::Boolean);
    assert_eq!(ty("due"), FieldType::Datetime);
    let values = vec!["free".to_owned(), "pro".to_owned()];
    assert_eq!(ty("tier"), FieldType::Enum { values });
    assert_eq!(ty("meta"), FieldType::Json);
    let model = ModelName::parse("thing").expect("name");
    assert_eq!(ty("parent"), FieldType::Reference { model });

    let (pos, email) = m.field("email").expect("email");
    assert_eq!((pos, m.field("parent").expect("parent").0), (0, 8));
    assert!(
        email.required() && email.unique() == Unique::Global && email.indexed() && email.sortable()
    );
    let bio = m.field("bio").expect("bio").1;
    assert!(!bio.required() && !bio.indexed() && !bio.sortable());
    assert!(m.field("qty").expect("qty").1.sortable());
    assert_eq!(
        m.field("parent").expect("parent").1.value_kind(),
        ValueKind::Uuid
    );
    assert!(
        m.field("id").is_none(),
        "base fields are not declared fields"
    );
}

#[test]
fn references_resolve_in_either_order() {
    let s = schema(json!([
        { "name": "order", "fields": [{ "name": "c", "type": "reference", "model": "customer" }] },
        { "name": "customer" },
    ]));
    assert!(s.is_ok(), "{s:?}");
    let undeclared = "references model \"customer\", which is not declared";
    refused(
        field("reference", json!({ "model": "customer" })),
        undeclared,
    );
    let no_target = "a reference field needs `model`, the model it points to";
    refused(field("reference", json!({})), no_target);
}

#[test]
fn bad_and_reserved_model_names() {
    for (name, reason) in [
        ("Customer", format!("model name \"Customer\" {SHAPE}")),
        ("2x", format!("model name \"2x\" {SHAPE}")),
        ("", "model name must not be empty".to_owned()),
        ("users", "model name \"users\" is reserved".to_owned()),
        ("pg_stats", "model name \"pg_stats\" is reserved".to_owned()),
        (
            "sqlite_seq",
            "model name \"sqlite_seq\" is reserved".to_owned(),
        ),
    ] {
        let errors = schema(json!([{ "name": "ok" }, { "name": name }])).expect_err(name);
        assert_eq!(errors, [err(1, &format!("model {name:?}"), &reason)]);
    }
}

#[test]
fn duplicate_models_and_fields() {
    let errors = schema(json!([{ "name": "a" }, { "name": "b" }, { "name": "a" }]));
    assert_eq!(
        errors,
        Err(vec![err(2, "model \"a\"", "is declared twice")])
    );
    let errors = thing(json!([
        field("string", json!({})),
        field("integer", json!({}))
    ]));
    assert_eq!(
        errors,
        Err(vec![err(
            0,
            "model \"thing\", field \"f\"",
            "is declared twice"
        )])
    );
}

#[test]
fn bad_and_reserved_field_names() {
    let base = "is a base field every record already has";
    let query = "is reserved for list queries";
    for (name, tail) in [
        ("id", base),
        ("created_at", base),
        ("name", base),
        ("version", base),
        ("limit", query),
        ("cursor", query),
        ("rowid", query),
        ("Email", SHAPE),
        ("a;drop", SHAPE),
    ] {
        let reason = format!("field name {name:?} {tail}");
        refused(json!({ "name": name, "type": "string" }), &reason);
    }
    refused(
        json!({ "name": "", "type": "string" }),
        "field name must not be empty",
    );
}

#[test]
fn text_constraints() {
    let (min_gt_max, bad_max) = (
        "min_length is greater than max_length",
        "max_length must be between 1 and 1048576",
    );
    refused(
        field("string", json!({ "min_length": 10, "max_length": 5 })),
        min_gt_max,
    );
    refused(field("string", json!({ "min_length": 256 })), min_gt_max);
    refused(field("text", json!({ "max_length": 0 })), bad_max);
    refused(
        field("string", json!({ "max_length": DEFAULT_TEXT_MAX + 1 })),
        bad_max,
    );
    for pattern in ["(unclosed", "a{1000}{1000}"] {
        let errors = thing(json!([field("string", json!({ "pattern": pattern }))]));
        let reason = &errors.expect_err(pattern)[0].reason;
        assert!(
            reason.starts_with("pattern is not a valid regular expression: "),
            "{reason}"
        );
    }
    let ok = thing(json!([field(
        "text",
        json!({ "min_length": 5, "max_length": 5 })
    )]));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn number_constraints() {
    refused(
        field("integer", json!({ "min": 3, "max": 2 })),
        "min is greater than max",
    );
    refused(
        field("integer", json!({ "min": 1.5 })),
        "min of an integer field must be an integer",
    );
    refused(
        field("integer", json!({ "max": 1e3 })),
        "max of an integer field must be an integer",
    );
    refused(
        field("float", json!({ "min": 2.5, "max": 1 })),
        "min is greater than max",
    );
    let ok = thing(json!([
        { "name": "n", "type": "integer", "min": 2, "max": 2 },
        { "name": "x", "type": "float", "min": -1 },
    ]))
    .expect("valid");
    let x = ok
        .model("thing")
        .expect("thing")
        .field("x")
        .expect("x")
        .1
        .ty();
    assert_eq!(
        x,
        &FieldType::Float {
            min: Some(-1.0),
            max: None
        }
    );
}

#[test]
fn enum_values() {
    let count = "an enum field needs between 1 and 256 values";
    let values = |n: usize| -> Vec<String> { (0..n).map(|i| format!("v{i}")).collect() };
    refused(field("enum", json!({})), count);
    refused(field("enum", json!({ "values": [] })), count);
    refused(field("enum", json!({ "values": values(257) })), count);
    refused(
        field("enum", json!({ "values": ["a", "b", "a"] })),
        "enum value \"a\" is listed twice",
    );
    let long = "x".repeat(256);
    for bad in ["", "a\nb", &long] {
        let reason = format!("enum value {bad:?} must be 1 to 255 printable characters");
        refused(field("enum", json!({ "values": ["a", bad] })), &reason);
    }
    assert!(thing(json!([field("enum", json!({ "values": values(256) }))])).is_ok());
}

#[test]
fn attributes_on_the_wrong_type_are_refused() {
    for (kind, attr, value) in [
        ("integer", "pattern", json!("^a$")),
        ("text", "pattern", json!("^a$")),
        ("integer", "min_length", json!(1)),
        ("json", "max_length", json!(1)),
        ("string", "min", json!(1)),
        ("datetime", "max", json!(1)),
        ("string", "values", json!(["a"])),
        ("integer", "model", json!("thing")),
    ] {
        let reason = format!("\"{attr}\" does not apply to a field of type {kind}");
        refused(field(kind, json!({ attr: value })), &reason);
    }
}

#[test]
fn json_fields_cannot_be_unique_or_indexed() {
    for attr in ["unique", "indexed"] {
        refused(
            field("json", json!({ attr: true })),
            "a json field cannot be unique or indexed",
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = schema(json!([
        { "name": "Bad" },
        { "name": "thing", "fields": [
            { "name": "id", "type": "string" },
            { "name": "ok", "type": "string" },
            { "name": "n", "type": "integer", "min": 9, "max": 1 },
        ]},
        { "name": "other", "fields": [{ "name": "r", "type": "reference", "model": "nowhere" }] },
    ]))
    .expect_err("invalid");
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.model_index, &*e.location))
        .collect();
    let expected = [
        (0, "model \"Bad\""),
        (1, "model \"thing\", field \"id\""),
        (1, "model \"thing\", field \"n\""),
        (2, "model \"other\", field \"r\""),
    ];
    assert_eq!(got, expected);
}

#[test]
fn too_many_fields() {
    let fields = |n: usize| -> Json {
        (0..n)
            .map(|i| json!({ "name": format!("f{i}"), "type": "boolean" }))
            .collect()
    };
    let errors = thing(fields(201));
    assert_eq!(
        errors,
        Err(vec![err(
            0,
            "model \"thing\"",
            "declares more than 200 fields"
        )])
    );
    assert!(thing(fields(200)).is_ok());
}

#[test]
fn declarations_reject_unknown_keys_and_types() {
    let parse = |v: Json| serde_json::from_value::<ModelDecl>(v);
    assert!(parse(json!({ "name": "m", "colour": "red" })).is_err());
    assert!(parse(json!({ "name": "m", "fields": [field("money", json!({}))] })).is_err());
    let uniq = field("string", json!({ "uniq": true }));
    assert!(parse(json!({ "name": "m", "fields": [uniq] })).is_err());
    let d = parse(json!({ "name": "m", "fields": [field("string", json!({ "max_length": 9 }))] }));
    let d = d.expect("valid");
    assert!(d.guest_read, "guest_read defaults to true");
    let round_trip = parse(serde_json::to_value(&d).expect("serialize")).expect("parse");
    assert_eq!(round_trip, d);
}

#[test]
fn admin_only_fields_are_seen_and_patched_by_admins_only() {
    use crate::input::validate_patch;
    use crate::policy::FieldAccess;
    use crate::record::Value;
    let schema = thing(json!([
        { "name": "secret", "type": "string", "admin_only": true },
        { "name": "shown", "type": "string" }
    ]))
    .expect("valid");
    let model = schema.model("thing").expect("thing");
    let (_, secret) = model.field("secret").expect("secret");
    let (_, shown) = model.field("shown").expect("shown");
    assert!(secret.admin_only() && !shown.admin_only());
    assert!(secret.visible_to(FieldAccess::All));
    assert!(!secret.visible_to(FieldAccess::Public));
    assert!(shown.visible_to(FieldAccess::All));
    assert!(shown.visible_to(FieldAccess::Public));

    // An admin's patch sets both; anyone else's PUT-style patch leaves the hidden one alone.
    let body = json!({ "secret": "s", "shown": "x" });
    let admin = validate_patch(model, &body, FieldAccess::All).expect("valid for an admin");
    let text = |s: &str| Value::Text(s.to_owned());
    let (s, x) = (text("s"), text("x"));
    assert_eq!(admin.changes().collect::<Vec<_>>(), [(0, &s), (1, &x)]);
    let kept = admin.clone().keep_hidden(model, FieldAccess::Public);
    assert_eq!(kept.changes().collect::<Vec<_>>(), [(1, &x)]);
    let all = admin.keep_hidden(model, FieldAccess::All);
    assert_eq!(all.changes().collect::<Vec<_>>(), [(0, &s), (1, &x)]);
    let user = validate_patch(model, &json!({ "shown": "x" }), FieldAccess::Public)
        .expect("valid for a user");
    assert_eq!(user.changes().collect::<Vec<_>>(), [(1, &x)]);
}

#[test]
fn declarations_serialise_without_their_defaults() {
    // What `_plinth_models` records: flags only when set, the read scope only when not `all`.
    let decls: Vec<ModelDecl> = serde_json::from_value(json!([
        { "name": "plain", "fields": [{ "name": "f", "type": "string" }] },
        { "name": "own", "user_read": "own", "fields": [
            { "name": "f", "type": "string", "required": true, "unique": true,
              "indexed": true, "admin_only": true },
            { "name": "g", "type": "text", "pii": true }
        ]}
    ]))
    .expect("declarations");
    let plain = serde_json::to_value(&decls[0]).expect("serialises");
    assert!(plain.get("user_read").is_none(), "{plain}");
    let f = &plain["fields"][0];
    for flag in ["required", "unique", "indexed", "admin_only", "pii"] {
        assert!(f.get(flag).is_none(), "{flag} written when false: {f}");
    }
    let own = serde_json::to_value(&decls[1]).expect("serialises");
    assert_eq!(own["user_read"], json!("own"));
    let f = &own["fields"][0];
    for flag in ["required", "unique", "indexed", "admin_only"] {
        assert_eq!(f[flag], json!(true), "{flag}: {f}");
    }
    assert_eq!(own["fields"][1]["pii"], json!(true));
}

#[test]
fn declaration_bounds_are_inclusive() {
    let float = field("float", json!({ "min": 1.5, "max": 1.5 }));
    assert!(thing(json!([float])).is_ok(), "min equal to max");
    let longest = "v".repeat(255);
    assert!(thing(json!([field("enum", json!({ "values": [longest] }))])).is_ok());
    let over = "v".repeat(256);
    assert!(thing(json!([field("enum", json!({ "values": [over] }))])).is_err());
}

#[test]
fn fields_differing_only_in_pattern_are_not_equal() {
    let compiled = |pattern: &str| {
        let s = thing(json!([field("string", json!({ "pattern": pattern }))])).expect("valid");
        s.model("thing")
            .expect("thing")
            .field("f")
            .expect("f")
            .1
            .clone()
    };
    assert_eq!(compiled("^a"), compiled("^a"), "same pattern");
    assert_ne!(compiled("^a"), compiled("^b"), "changed pattern");
    let unconstrained = thing(json!([field("string", json!({}))])).expect("valid");
    let (_, plain) = unconstrained
        .model("thing")
        .expect("thing")
        .field("f")
        .expect("f");
    assert_ne!(&compiled("^a"), plain, "added pattern");
}

#[test]
fn non_finite_float_bounds_are_refused() {
    // JSON cannot spell them; TOML can (`min = inf`, `max = nan`).
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    for (min, max) in [
        (Some(inf), None),
        (None, Some(nan)),
        (Some(0.0), Some(-inf)),
        (Some(-inf), Some(1.0)),
    ] {
        let mut decls: Vec<ModelDecl> = serde_json::from_value(
            json!([{ "name": "thing", "fields": [field("float", json!({}))] }]),
        )
        .expect("declarations");
        decls[0].fields[0].min = min.map(Bound::Float);
        decls[0].fields[0].max = max.map(Bound::Float);
        let errors = Schema::from_decls(&decls).expect_err("non-finite bound accepted");
        let reason = "min and max must be finite numbers";
        assert_eq!(
            errors,
            [err(0, "model \"thing\", field \"f\"", reason)],
            "min {min:?}, max {max:?}"
        );
    }
}

#[test]
fn unique_is_true_false_or_owner_and_nothing_else() {
    for (written, expected) in [
        (json!(true), Unique::Global),
        (json!(false), Unique::No),
        (json!("owner"), Unique::PerOwner),
    ] {
        let s = thing(json!([field("string", json!({ "unique": written }))])).expect("valid");
        let f = &s.model("thing").expect("thing").fields()[0];
        assert_eq!(f.unique(), expected, "{written}");
        assert_eq!(f.indexed(), expected != Unique::No, "{written}");
        // Written back as read, so recorded declarations compare equal.
        let back = serde_json::to_value(s.models()[0].decl()).expect("serialise");
        let want = if expected == Unique::No {
            Json::Null
        } else {
            written
        };
        assert_eq!(
            back["fields"][0]
                .get("unique")
                .cloned()
                .unwrap_or(Json::Null),
            want
        );
    }
    for bad in [
        json!("yes"),
        json!("Owner"),
        json!(1),
        json!(null),
        json!(["owner"]),
    ] {
        let decl =
            json!([{ "name": "thing", "fields": [field("string", json!({ "unique": bad }))] }]);
        let err = serde_json::from_value::<Vec<ModelDecl>>(decl).expect_err("refused");
        assert!(
            err.to_string()
                .contains("expected true, false or \"owner\""),
            "{bad}: {err}"
        );
    }
    refused(
        field("json", json!({ "unique": "owner" })),
        "a json field cannot be unique or indexed",
    );
}

#[test]
fn pii_applies_to_text_fields_and_is_never_a_sort_key() {
    let pii = |kind: &str, extra: serde_json::Value| {
        let mut f = field(kind, extra);
        f["pii"] = json!(true);
        thing(json!([f]))
    };
    assert!(pii("string", json!({})).is_ok());
    assert!(pii("text", json!({ "unique": true })).is_ok());
    assert!(pii("email", json!({ "unique": true })).is_ok());
    assert!(pii("url", json!({})).is_ok());
    for kind in [
        "integer", "float", "boolean", "json", "datetime", "date", "decimal",
    ] {
        let errs = pii(kind, json!({})).expect_err(kind);
        assert!(
            errs[0]
                .reason
                .contains("pii applies to string, text, email and url"),
            "{kind}: {errs:?}"
        );
    }
    let errs = pii("string", json!({ "indexed": true })).expect_err("indexed pii");
    assert!(errs[0].reason.contains("cannot be indexed"), "{errs:?}");
}

//! Declarations of `date`, `decimal`, `array`, `email` and `url` fields and of
//! `unique_among`: what each accepts, and every misplaced or out-of-range key refused with
//! its reason.

use super::*;
use serde_json::{Value as Json, json};

fn thing(fields: Json) -> Result<Schema, Vec<DeclError>> {
    let decls: Vec<ModelDecl> =
        serde_json::from_value(json!([{ "name": "thing", "fields": fields }]))
            .expect("well-formed");
    Schema::from_decls(&decls)
}

fn f(kind: &str, attrs: Json) -> Json {
    let mut f = json!({ "name": "f", "type": kind });
    f.as_object_mut()
        .expect("object")
        .extend(attrs.as_object().expect("object").clone());
    f
}

fn ty(kind: &str, attrs: Json) -> FieldType {
    let s = thing(json!([f(kind, attrs)])).expect("valid");
    s.model("thing").expect("thing").fields()[0].ty().clone()
}

#[track_caller]
fn refused(kind: &str, attrs: Json, reason: &str) {
    let errors = thing(json!([f(kind, attrs.clone())])).expect_err("accepted");
    assert!(
        errors[0].reason.contains(reason),
        "{kind} {attrs}: {:?}",
        errors[0].reason
    );
}

#[test]
fn each_new_type_compiles_with_its_defaults() {
    assert_eq!(
        ty("decimal", json!({})),
        FieldType::Decimal {
            scale: 2,
            min: None,
            max: None
        }
    );
    assert_eq!(
        ty("array", json!({ "items": "integer" })),
        FieldType::Array {
            items: ItemKind::Integer,
            max_items: DEFAULT_MAX_ITEMS,
            max_length: DEFAULT_STRING_MAX
        }
    );
    assert!(matches!(
        ty("email", json!({})),
        FieldType::Text {
            max_length: 254,
            format: Some(crate::format::TextFormat::Email),
            ..
        }
    ));
    assert!(matches!(
        ty("url", json!({ "pattern": "^https://" })),
        FieldType::Text {
            max_length: 2048,
            format: Some(crate::format::TextFormat::Url),
            pattern: Some(_),
            ..
        }
    ));
    let FieldType::Decimal {
        scale: 3,
        min: Some(lo),
        max: Some(hi),
    } = ty("decimal", json!({ "scale": 3, "min": "-1.5", "max": 2.25 }))
    else {
        panic!("decimal bounds")
    };
    assert_eq!(
        (lo.to_string(), hi.to_string()),
        ("-1.500".to_owned(), "2.250".to_owned())
    );
    let FieldType::Date {
        min: Some(lo),
        max: None,
    } = ty("date", json!({ "min": "2000-02-29" }))
    else {
        panic!("date bounds")
    };
    assert_eq!(lo.to_string(), "2000-02-29");
}

#[test]
fn value_kinds_follow_the_declaration() {
    let s = thing(json!([
        f("decimal", json!({ "scale": 4 })),
        { "name": "g", "type": "array", "items": "string" },
        { "name": "h", "type": "date", "indexed": true },
        { "name": "i", "type": "email" },
    ]))
    .expect("valid");
    let m = s.model("thing").expect("thing");
    let kinds: Vec<ValueKind> = m.fields().iter().map(FieldDef::value_kind).collect();
    assert_eq!(
        kinds,
        [
            ValueKind::Decimal(4),
            ValueKind::Array(ItemKind::String),
            ValueKind::Date,
            ValueKind::Text
        ]
    );
    for (field, decl) in m.fields().iter().zip(&m.decl().fields) {
        assert_eq!(field.value_kind(), decl.value_kind());
    }
    assert!(m.fields()[2].sortable());
    assert!(!m.fields()[1].sortable());
}

#[test]
fn misplaced_and_out_of_range_keys_are_refused() {
    refused(
        "decimal",
        json!({ "scale": 10 }),
        "scale must be between 0 and 9",
    );
    refused(
        "decimal",
        json!({ "min": "1.005" }),
        "min has at most 2 decimal places",
    );
    refused("decimal", json!({ "min": "abc" }), "min must be a decimal");
    refused(
        "decimal",
        json!({ "min": "5", "max": "4.99" }),
        "min is greater than max",
    );
    refused(
        "decimal",
        json!({ "pii": true }),
        "pii applies to string, text, email and url",
    );
    refused(
        "date",
        json!({ "min": 2000 }),
        "min of a date field must be a \"YYYY-MM-DD\" string",
    );
    refused(
        "date",
        json!({ "max": "2026-02-30" }),
        "max 2026-02-30 is not a date",
    );
    refused(
        "date",
        json!({ "min": "2026-01-02", "max": "2026-01-01" }),
        "min is greater than max",
    );
    refused("array", json!({}), "an array field needs `items`");
    refused(
        "array",
        json!({ "items": "string", "max_items": 0 }),
        "max_items must be between 1 and 1000",
    );
    refused(
        "array",
        json!({ "items": "string", "max_items": 1001 }),
        "max_items must be between 1 and 1000",
    );
    refused(
        "array",
        json!({ "items": "integer", "max_length": 3 }),
        "max_length applies to an array of strings only",
    );
    refused(
        "array",
        json!({ "items": "string", "unique": true }),
        "an array field cannot be unique or indexed",
    );
    refused(
        "array",
        json!({ "items": "string", "indexed": true }),
        "cannot be unique or indexed",
    );
    refused(
        "array",
        json!({ "items": "string", "pii": true }),
        "pii applies to",
    );
    refused(
        "string",
        json!({ "scale": 2 }),
        "\"scale\" does not apply to a field of type string",
    );
    refused(
        "integer",
        json!({ "items": "string" }),
        "\"items\" does not apply to a field of type integer",
    );
    refused(
        "text",
        json!({ "max_items": 3 }),
        "\"max_items\" does not apply",
    );
    refused(
        "integer",
        json!({ "min": "1" }),
        "min of an integer field must be an integer",
    );
    refused(
        "float",
        json!({ "max": "1" }),
        "min and max must be finite numbers",
    );
    refused(
        "email",
        json!({ "min": 1 }),
        "\"min\" does not apply to a field of type email",
    );
    refused(
        "email",
        json!({ "default": "nope" }),
        "default must be an email address",
    );
    refused(
        "url",
        json!({ "default": "ftp://x" }),
        "default must be an absolute http or https URL",
    );
    refused(
        "string",
        json!({ "unique_among": "live" }),
        "unique_among applies to a unique field only",
    );
}

#[test]
fn unique_among_round_trips_and_defaults_to_all() {
    let s = thing(json!([f(
        "email",
        json!({ "unique": "owner", "unique_among": "live" })
    )]))
    .expect("valid");
    let m = s.model("thing").expect("thing");
    assert_eq!(m.fields()[0].unique_among(), UniqueAmong::Live);
    let written = serde_json::to_value(m.decl()).expect("serialise");
    assert_eq!(written["fields"][0]["unique_among"], "live");
    let plain = thing(json!([f("string", json!({ "unique": true }))])).expect("valid");
    let written = serde_json::to_value(plain.models()[0].decl()).expect("serialise");
    assert!(
        written["fields"][0].get("unique_among").is_none(),
        "{written}"
    );
    let bad: Result<Vec<ModelDecl>, _> =
        serde_json::from_value(json!([{ "name": "thing", "fields": [
            { "name": "f", "type": "string", "unique": true, "unique_among": "some" }
        ]}]));
    assert!(bad.is_err());
}

use super::*;
use crate::error::ErrorCode;
use crate::schema::{ModelDecl, Schema};
use serde_json::json;
use std::sync::Arc;

const ID: &str = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";

/// How many fields [`model`] declares.
const FIELD_COUNT: usize = 13;

fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "code", "type": "string", "pattern": "^[A-Z]{3}$" },
        { "name": "title", "type": "string", "min_length": 2, "max_length": 5 },
        { "name": "body", "type": "text" },
        { "name": "qty", "type": "integer", "required": true, "min": 0, "max": 10 },
        { "name": "rank", "type": "integer", "min": 1 },
        { "name": "big", "type": "integer" },
        { "name": "score", "type": "float", "min": 0, "max": 1 },
        { "name": "ratio", "type": "float", "max": 2.5 },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime" },
        { "name": "tier", "type": "enum", "values": ["free", "pro"] },
        { "name": "meta", "type": "json" },
        { "name": "parent", "type": "reference", "model": "item" },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

/// The position of a declared field of [`model`].
fn pos(key: &str) -> usize {
    model().field(key).expect(key).0
}

fn draft(body: Json) -> Result<Draft, Error> {
    validate_draft(&model(), &body, crate::policy::FieldAccess::All)
}

fn patch(body: Json) -> Result<Patch, Error> {
    validate_patch(&model(), &body, crate::policy::FieldAccess::All)
}

/// The `(field, reason)` pairs of an input error.
fn details(e: Error) -> Vec<(String, String)> {
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    match e {
        Error::Invalid { details, .. } => {
            details.into_iter().map(|d| (d.field, d.reason)).collect()
        }
        other => panic!("not an input error: {other:?}"),
    }
}

fn pair(field: &str, reason: &str) -> (String, String) {
    (field.to_owned(), reason.to_owned())
}

/// A minimal valid body with `key` set to `value`.
fn with(key: &str, value: Json) -> Json {
    let mut body = json!({ "name": "n", "qty": 1 });
    body[key] = value;
    body
}

/// Asserts a create body with `key: value` is refused, for `reason` and nothing else.
#[track_caller]
fn refused(key: &str, value: Json, reason: &str) {
    let e = draft(with(key, value.clone())).expect_err(&format!("{key}: {value} accepted"));
    assert_eq!(details(e), [pair(key, reason)], "{key}: {value}");
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("timestamp")
}

/// What `2026-01-02T03:04:05.1234567Z` is stored as: sub-microsecond digits dropped.
const TRUNCATED: &str = "2026-01-02T03:04:05.123456Z";

#[test]
fn minimal_and_full_drafts() {
    let mut fields = vec![Value::Null; FIELD_COUNT];
    fields[pos("qty")] = Value::Integer(1);
    let (name, status) = ("n".to_owned(), Status::Active);
    assert_eq!(
        draft(json!({ "name": "n", "qty": 1 })),
        Ok(Draft {
            name,
            status,
            fields
        })
    );

    let d = draft(json!({
        "name": "full", "status": "inactive", "code": "ABC", "title": "hé", "body": "long text",
        "qty": 10, "rank": 1, "big": i64::MIN, "score": 1, "ratio": -7.25, "flag": false,
        "due": "2026-01-02T04:04:05+01:00", "tier": "pro", "meta": { "a": [1, null] }, "parent": ID,
    }))
    .expect("valid");
    let expected = vec![
        text("ABC"),
        text("hé"),
        text("long text"),
        Value::Integer(10),
        Value::Integer(1),
        Value::Integer(i64::MIN),
        Value::Float(1.0),
        Value::Float(-7.25),
        Value::Boolean(false),
        Value::Datetime(ts("2026-01-02T03:04:05Z")),
        text("pro"),
        Value::Json(json!({ "a": [1, null] })),
        Value::Reference(RecordId::parse(ID).expect("id")),
    ];
    assert_eq!(
        (d.name.as_str(), d.status, d.fields),
        ("full", Status::Inactive, expected)
    );
}

#[test]
fn name_is_required_and_counted_in_characters() {
    let missing = details(draft(json!({ "qty": 1 })).expect_err("no name"));
    assert_eq!(missing, [pair("name", "is required")]);
    let length = "must be 1 to 255 characters long";
    for (value, reason) in [
        (Json::Null, "is required"),
        (json!(""), length),
        (json!("a".repeat(256)), length),
        (json!("𝄞".repeat(256)), length),
        (json!(12), "must be a string"),
        (json!(["a"]), "must be a string"),
    ] {
        refused("name", value, reason);
    }
    for ok in [
        "a".repeat(255),
        "𝄞".repeat(255),
        "é".repeat(255),
        "a\0b".into(),
        " ".into(),
    ] {
        let d = draft(with("name", json!(ok))).expect("valid name");
        assert_eq!(d.name, ok, "stored unchanged");
    }
}

#[test]
fn status_is_active_or_inactive() {
    assert_eq!(
        draft(with("status", json!("active")))
            .expect("valid")
            .status,
        Status::Active
    );
    refused(
        "status",
        json!("deleted"),
        "cannot be set to deleted; use DELETE",
    );
    for bad in [json!("Active"), json!("gone"), json!(1), Json::Null] {
        refused("status", bad, "must be active or inactive");
    }
}

#[test]
fn server_set_and_unknown_fields_are_refused() {
    let body = json!({
        "name": "n", "qty": 1, "id": ID, "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "owner_id": ID, "version": 3,
    });
    let server = ["created_at", "id", "owner_id", "updated_at", "version"];
    let expected: Vec<_> = server.map(|f| pair(f, "is set by the server")).into();
    for result in [draft(body.clone()).map(|_| ()), patch(body).map(|_| ())] {
        let mut got = details(result.expect_err("server fields accepted"));
        got.sort(); // object key order is not part of the contract
        assert_eq!(got, expected);
    }
    refused("colour", json!("red"), "unknown field");
    let long = "k".repeat(100);
    let d = details(patch(json!({ long.clone(): 1 })).expect_err("unknown"));
    assert_eq!(
        d,
        [pair(&long[..64], "unknown field")],
        "echoed key is truncated"
    );
}

#[test]
fn wrong_values_are_refused_with_a_reason() {
    let int = "must be an integer (64-bit)";
    let rfc = "must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z";
    let uuid = "must be a UUID such as 0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
    let tier = "must be one of free, pro";
    for (key, value, reason) in [
        ("code", json!(5), "must be a string"),
        ("code", json!("abc"), "does not match the required pattern"),
        ("code", json!("ABCD"), "does not match the required pattern"),
        ("title", json!("a"), "must be 2 to 5 characters long"),
        ("title", json!("abcdef"), "must be 2 to 5 characters long"),
        ("body", json!(true), "must be a string"),
        ("big", json!("3"), int),
        ("big", json!(1.5), int),
        ("big", json!(1.0), int),
        ("big", json!(true), int),
        ("big", json!(u64::MAX), int),
        ("big", json!([1]), int),
        ("qty", Json::Null, "is required"),
        ("qty", json!(-1), "must be between 0 and 10"),
        ("qty", json!(11), "must be between 0 and 10"),
        ("rank", json!(0), "must be at least 1"),
        ("score", json!(1.01), "must be between 0 and 1"),
        ("score", json!("0.5"), "must be a number"),
        ("ratio", json!(2.6), "must be at most 2.5"),
        ("flag", json!("true"), "must be true or false"),
        ("flag", json!(1), "must be true or false"),
        (
            "due",
            json!(1_700_000_000),
            "must be an RFC 3339 date-time string",
        ),
        ("due", json!("2026-01-01"), rfc),
        ("due", json!("2026-01-01T00:00:00"), rfc),
        ("due", json!(""), rfc),
        ("tier", json!("gold"), tier),
        ("tier", json!("Pro"), tier),
        ("tier", json!(1), tier),
        ("tier", json!(["pro"]), tier),
        ("parent", json!("not-a-uuid"), uuid),
        ("parent", json!(ID.replace('-', "")), uuid),
        (
            "parent",
            json!(7),
            "must be the id of a record of model item",
        ),
    ] {
        refused(key, value, reason);
    }
    let missing = details(draft(json!({ "name": "n" })).expect_err("no qty"));
    assert_eq!(missing, [pair("qty", "is required")]);
}

#[test]
fn valid_values_are_stored_typed() {
    for (key, value, expected) in [
        ("code", json!("XYZ"), text("XYZ")),
        ("title", json!("𝄞𝄞𝄞𝄞𝄞"), text("𝄞𝄞𝄞𝄞𝄞")),
        ("body", json!(""), text("")),
        ("qty", json!(0), Value::Integer(0)),
        ("rank", json!(99), Value::Integer(99)),
        ("big", json!(i64::MAX), Value::Integer(i64::MAX)),
        ("score", json!(0), Value::Float(0.0)),
        ("flag", json!(true), Value::Boolean(true)),
        (
            "due",
            json!("2026-01-02T03:04:05.1234567Z"),
            Value::Datetime(ts(TRUNCATED)),
        ),
        ("tier", json!("free"), text("free")),
        ("meta", json!([1, 2]), Value::Json(json!([1, 2]))),
        ("meta", json!("s"), Value::Json(json!("s"))),
        ("meta", json!(false), Value::Json(json!(false))),
        ("meta", Json::Null, Value::Null), // "no value", never a stored JSON null
        (
            "parent",
            json!(ID),
            Value::Reference(RecordId::parse(ID).expect("id")),
        ),
    ] {
        let d = draft(with(key, value)).unwrap_or_else(|e| panic!("{key} refused: {e:?}"));
        assert_eq!(d.fields[pos(key)], expected, "{key}");
    }
}

#[test]
fn every_invalid_field_is_listed_at_once() {
    let body = json!({
        "colour": 1, "name": "", "status": "deleted", "code": "x", "qty": "many",
        "flag": "no", "tier": "gold", "parent": "p",
    });
    let e = draft(body).expect_err("invalid");
    let Error::Invalid { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        message,
        "invalid fields: colour, name, status, code, qty, flag, tier, parent"
    );
    let fields: Vec<String> = details(e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "colour", "name", "status", "code", "qty", "flag", "tier", "parent"
        ]
    );

    let e = patch(json!({ "name": 1, "qty": null, "score": 5, "due": "x" })).expect_err("invalid");
    let fields: Vec<String> = details(e).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["name", "qty", "score", "due"]);
}

#[test]
fn body_must_be_an_object() {
    let bodies = [
        json!([]),
        json!([{ "name": "n" }]),
        json!("name"),
        Json::Null,
        json!(3),
    ];
    for body in bodies {
        for e in [
            draft(body.clone()).map(|_| ()),
            patch(body.clone()).map(|_| ()),
        ] {
            let e = e.expect_err("accepted");
            let Error::Invalid { message, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(message, "invalid body: must be a JSON object");
            assert_eq!(
                details(e),
                [pair("body", "must be a JSON object")],
                "{body}"
            );
        }
    }
}

#[test]
fn patch_changes_only_present_keys() {
    let p = patch(json!({})).expect("empty patch");
    assert_eq!(
        p,
        Patch {
            name: None,
            status: None,
            fields: vec![None; FIELD_COUNT]
        }
    );
    assert!(p.is_empty());

    let body =
        json!({ "name": "new", "status": "inactive", "qty": 4, "score": null, "meta": null });
    let p = patch(body).expect("valid");
    let mut fields = vec![None; FIELD_COUNT];
    fields[pos("qty")] = Some(Value::Integer(4));
    fields[pos("score")] = Some(Value::Null);
    fields[pos("meta")] = Some(Value::Null);
    let name = Some("new".to_owned());
    assert_eq!(
        p,
        Patch {
            name,
            status: Some(Status::Inactive),
            fields
        }
    );
    assert!(!p.is_empty());
    assert!(
        !patch(json!({ "title": null })).expect("valid").is_empty(),
        "clearing is a change"
    );
    let p = patch(json!({ "name": "𝄞".repeat(255) })).expect("255 chars");
    assert_eq!(p.name.map(|n| n.chars().count()), Some(255));
}

#[test]
fn patch_refuses_what_cannot_be_set() {
    for (key, value, reason) in [
        ("qty", Json::Null, "is required and cannot be null"),
        ("name", Json::Null, "must be a string"),
        ("name", json!(""), "must be 1 to 255 characters long"),
        (
            "name",
            json!("a".repeat(256)),
            "must be 1 to 255 characters long",
        ),
        (
            "status",
            json!("deleted"),
            "cannot be set to deleted; use DELETE",
        ),
        ("status", Json::Null, "must be active or inactive"),
        ("qty", json!(11), "must be between 0 and 10"),
        ("tier", json!("gold"), "must be one of free, pro"),
        ("version", json!(2), "is set by the server"),
        ("colour", json!("red"), "unknown field"),
    ] {
        let mut body = json!({});
        body[key] = value;
        let got = details(patch(body).expect_err(&format!("{key} accepted")));
        assert_eq!(got, [pair(key, reason)], "{key}");
    }
}

#[test]
fn a_draft_is_a_patch_that_sets_everything() {
    let d = draft(json!({ "name": "n", "qty": 2, "flag": true })).expect("valid");
    let p = Patch::from(d.clone());
    assert_eq!(p.name.as_deref(), Some("n"));
    assert_eq!(p.status, Some(Status::Active));
    assert_eq!(p.fields, d.fields.into_iter().map(Some).collect::<Vec<_>>());
}

#[test]
fn a_value_at_a_max_only_bound_is_accepted() {
    let d = draft(with("ratio", json!(2.5))).expect("ratio equal to its max");
    assert_eq!(d.fields[pos("ratio")], Value::Float(2.5));
    let p = patch(json!({ "ratio": 2.5 })).expect("ratio equal to its max");
    assert_eq!(p.fields[pos("ratio")], Some(Value::Float(2.5)));
    let e = patch(json!({ "ratio": 2.500_001 })).expect_err("over the max");
    assert_eq!(details(e), [pair("ratio", "must be at most 2.5")]);
}

#[test]
fn a_hidden_field_in_a_patch_is_only_unknown() {
    // Nothing about an admin_only field reaches a non-admin: not its type, not its bounds.
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "secret", "type": "integer", "min": 10, "admin_only": true },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    let model = schema.model("item").expect("item");
    let public = crate::policy::FieldAccess::Public;
    for value in [json!("not a number"), json!(5), json!(10), Json::Null] {
        let body = json!({ "secret": value });
        let e = validate_patch(model, &body, public).expect_err("hidden field accepted");
        assert_eq!(details(e), [pair("secret", "unknown field")], "{value}");
    }
}

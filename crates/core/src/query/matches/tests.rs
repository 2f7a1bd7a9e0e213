use crate::policy::FieldAccess;
use crate::query::ListQuery;
use crate::record::{Record, RecordId, Status, Value};
use crate::schema::{ModelDecl, ModelDef, Schema};
use crate::time::Timestamp;
use serde_json::json;
use std::sync::Arc;

fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "title", "type": "string" },
        { "name": "qty", "type": "integer" },
        { "name": "score", "type": "float" },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime" },
        { "name": "parent", "type": "reference", "model": "item" },
        { "name": "tier", "type": "enum", "values": ["free", "pro"] },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

const PARENT: &str = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";

/// A record with every declared field set (`title`, `qty`, `score`, `flag`, `due`,
/// `parent`, `tier`), or null where `fields` says so.
fn record(fields: Vec<Value>) -> Record {
    let at = Timestamp::parse("2026-01-02T03:04:05Z").expect("time");
    Record {
        id: RecordId::new_v7(),
        name: "Straße Café".to_owned(),
        status: Status::Active,
        created_at: at,
        updated_at: at,
        owner_id: None,
        version: 3,
        fields,
    }
}

fn full() -> Record {
    record(vec![
        Value::Text("Hello World".to_owned()),
        Value::Integer(10),
        Value::Float(2.5),
        Value::Boolean(true),
        Value::Datetime(Timestamp::parse("2026-05-01T00:00:00Z").expect("time")),
        Value::Reference(RecordId::parse(PARENT).expect("id")),
        Value::Text("pro".to_owned()),
    ])
}

fn empty() -> Record {
    record(vec![Value::Null; 7])
}

/// Whether every filter of the query `key=value` passes `r`.
fn passes(r: &Record, key: &str, value: &str) -> bool {
    let pairs = vec![(key.to_owned(), value.to_owned())];
    let q = ListQuery::parse(&model(), &pairs, FieldAccess::All)
        .unwrap_or_else(|e| panic!("{key}={value}: {e:?}"));
    q.filters.iter().all(|f| f.matches(r))
}

#[test]
fn eq_compares_whole_values() {
    let r = full();
    assert!(passes(&r, "title", "Hello World"));
    assert!(!passes(&r, "title", "hello world"), "eq is case-sensitive");
    assert!(passes(&r, "qty", "10"));
    assert!(!passes(&r, "qty", "11"));
    assert!(passes(&r, "score[eq]", "2.5"));
    assert!(passes(&r, "flag", "true"));
    assert!(!passes(&r, "flag", "false"));
    assert!(passes(&r, "due", "2026-05-01T00:00:00Z"));
    assert!(
        passes(&r, "due", "2026-05-01T02:00:00+02:00"),
        "the same instant"
    );
    assert!(passes(&r, "parent", PARENT));
    assert!(passes(&r, "tier", "pro"));
    assert!(passes(&r, "status", "active"));
    assert!(passes(&r, "version", "3"));
    assert!(passes(&r, "id", &r.id.to_string()));
    assert!(
        !passes(&empty(), "title", "Hello World"),
        "null equals nothing"
    );
}

#[test]
fn ne_holds_for_a_missing_value() {
    let r = full();
    assert!(!passes(&r, "title[ne]", "Hello World"));
    assert!(passes(&r, "title[ne]", "Hello"));
    assert!(passes(&empty(), "title[ne]", "Hello"), "IS DISTINCT FROM");
    assert!(passes(&empty(), "qty[ne]", "1"));
    assert!(passes(&empty(), "owner_id[ne]", PARENT));
    assert!(!passes(&r, "flag[ne]", "true"));
}

#[test]
fn ordering_operators() {
    let r = full();
    for (key, value, expected) in [
        ("qty[lt]", "11", true),
        ("qty[lt]", "10", false),
        ("qty[lte]", "10", true),
        ("qty[gt]", "9", true),
        ("qty[gt]", "10", false),
        ("qty[gte]", "10", true),
        ("qty[gt]", "-5", true),
        ("score[lt]", "2.6", true),
        ("score[gt]", "2", true),
        ("score[gte]", "2.5", true),
        ("score[lt]", "2.5", false),
        ("due[gt]", "2026-04-30T23:59:59.999999Z", true),
        ("due[lt]", "2026-05-01T00:00:00.000001Z", true),
        ("due[lt]", "2026-05-01T00:00:00Z", false),
        ("created_at[lte]", "2026-01-02T03:04:05Z", true),
        // Text by bytes: uppercase before lowercase, "Hello World" < "Hello world".
        ("title[lt]", "Hello world", true),
        ("title[gt]", "Hello", true),
        ("title[gt]", "a", false),
        ("name[gt]", "Straße", true),
        ("name[lt]", "Straße Cafe", false),
    ] {
        assert_eq!(passes(&r, key, value), expected, "{key}={value}");
    }
    for key in ["qty[lt]", "qty[gte]", "score[gt]", "due[lte]", "title[lt]"] {
        let value = if key.starts_with("due") {
            "2026-01-01T00:00:00Z"
        } else {
            "5"
        };
        assert!(!passes(&empty(), key, value), "null is not ordered: {key}");
    }
}

#[test]
fn like_is_a_case_insensitive_wildcard_match() {
    let r = full();
    for (pattern, expected) in [
        ("hello world", true),
        ("HELLO*", true),
        ("*world", true),
        ("*lo w*", true),
        ("*", true),
        ("h*o*d", true),
        ("hello", false),
        ("*x*", false),
        ("world*", false),
        ("h_llo world", false),
        ("hello%", false),
        ("**hello**world**", true),
    ] {
        assert_eq!(passes(&r, "title[like]", pattern), expected, "{pattern}");
    }
    // Unicode case folding, as `plinth_fold` and ILIKE do.
    assert!(passes(&r, "name[like]", "STRASSE*") == "straße".contains("strasse"));
    assert!(passes(&r, "name[like]", "*CAFÉ"));
    assert!(
        !passes(&empty(), "title[like]", "*"),
        "null matches no pattern"
    );
    let literal = record(vec![
        Value::Text("50%_off".to_owned()),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ]);
    assert!(passes(&literal, "title[like]", "50%_off"));
    assert!(passes(&literal, "title[like]", "*%_*"));
    assert!(!passes(&literal, "title[like]", "50%-off"));
}

#[test]
fn in_takes_any_listed_value() {
    let r = full();
    assert!(passes(&r, "qty[in]", "1,10,100"));
    assert!(!passes(&r, "qty[in]", "1,2"));
    assert!(passes(&r, "tier[in]", "free,pro"));
    assert!(passes(&r, "title[in]", "x,Hello World"));
    assert!(passes(&r, "flag[in]", "true"));
    assert!(passes(&r, "status[in]", "active,deleted"));
    assert!(!passes(&r, "status[in]", "inactive,deleted"));
    assert!(!passes(&empty(), "qty[in]", "1,10"), "null is in no list");
}

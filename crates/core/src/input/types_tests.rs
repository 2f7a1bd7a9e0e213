//! Write bodies with `date`, `decimal`, `array`, `email` and `url` values: each accepted
//! shape, and each refusal with its reason in `details`.

use super::*;
use crate::schema::{ModelDecl, Schema};
use serde_json::json;
use std::sync::Arc;

fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "book", "fields": [
        { "name": "price", "type": "decimal", "scale": 2, "min": "0", "max": "1000" },
        { "name": "published", "type": "date", "min": "1450-01-01" },
        { "name": "tags", "type": "array", "items": "string", "max_items": 3, "max_length": 5 },
        { "name": "sizes", "type": "array", "items": "integer" },
        { "name": "contact", "type": "email" },
        { "name": "site", "type": "url", "max_length": 30 },
        { "name": "whole", "type": "decimal", "scale": 0 },
    ]}))
    .expect("declaration");
    Arc::clone(
        Schema::from_decls(&[decl])
            .expect("valid")
            .model("book")
            .expect("book"),
    )
}

/// The value a one-key body gives, or the reason it is refused.
fn value(key: &str, v: Json) -> Result<Value, String> {
    let m = model();
    let body = json!({ "name": "b", key: v });
    match validate_draft(&m, &body, crate::policy::FieldAccess::All) {
        Ok(d) => Ok(d.fields[m.field(key).expect(key).0].clone()),
        Err(Error::Invalid { details, .. }) => {
            assert_eq!(details.len(), 1, "{details:?}");
            assert_eq!(details[0].field, key);
            Err(details[0].reason.clone())
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[track_caller]
fn refused(key: &str, v: Json, reason: &str) {
    match value(key, v.clone()) {
        Err(r) => assert!(r.contains(reason), "{key} {v}: {r:?}"),
        Ok(x) => panic!("{key} {v} accepted as {x:?}"),
    }
}

#[test]
fn decimals_are_exact_strings() {
    assert_eq!(
        value("price", json!("12.5")).map(|v| v.to_json()),
        Ok(json!("12.50"))
    );
    assert_eq!(
        value("price", json!("0")).map(|v| v.to_json()),
        Ok(json!("0.00"))
    );
    assert_eq!(
        value("whole", json!("-42")).map(|v| v.to_json()),
        Ok(json!("-42"))
    );
    refused("price", json!("12.345"), "has at most 2 decimal places");
    refused("whole", json!("1.5"), "must be a whole number");
    refused(
        "price",
        json!(12.5),
        "must be a decimal as a string, such as \"12.50\"",
    );
    refused("price", json!("1e3"), "must be a decimal number");
    refused(
        "price",
        json!("1000.01"),
        "must be between 0.00 and 1000.00",
    );
    refused("price", json!("-0.01"), "must be between 0.00 and 1000.00");
    refused("whole", json!("1000000000000000000"), "at most 18 digits");
}

#[test]
fn dates_are_calendar_days() {
    assert_eq!(
        value("published", json!("2024-02-29")).map(|v| v.to_json()),
        Ok(json!("2024-02-29"))
    );
    refused("published", json!("2023-02-29"), "no day 29");
    refused(
        "published",
        json!("2026-01-01T00:00:00Z"),
        "must be a date such as",
    );
    refused("published", json!(20260101), "must be a date string");
    refused(
        "published",
        json!("1449-12-31"),
        "must be at least 1450-01-01",
    );
}

#[test]
fn arrays_hold_items_of_their_kind() {
    assert_eq!(
        value("tags", json!(["a", "bcdef"])),
        Ok(Value::Array(vec![
            Value::Text("a".into()),
            Value::Text("bcdef".into())
        ]))
    );
    assert_eq!(value("tags", json!([])), Ok(Value::Array(vec![])));
    assert_eq!(
        value("sizes", json!([1, -2])),
        Ok(Value::Array(vec![Value::Integer(1), Value::Integer(-2)]))
    );
    refused("tags", json!(["a", "b", "c", "d"]), "has at most 3 items");
    refused(
        "tags",
        json!(["abcdef"]),
        "item 0 must be at most 5 characters long",
    );
    refused("tags", json!(["a", 1]), "item 1 must be a string");
    refused("tags", json!("a"), "must be an array of strings");
    refused("sizes", json!([1.5]), "item 0 must be an integer");
    refused(
        "sizes",
        json!([18446744073709551615u64]),
        "item 0 must be an integer",
    );
    refused("sizes", json!({}), "must be an array of integers");
    let many: Vec<i64> = (0..101).collect();
    refused("sizes", json!(many), "has at most 100 items");
}

#[test]
fn emails_and_urls_are_checked_text() {
    assert_eq!(
        value("contact", json!("ada@example.com")),
        Ok(Value::Text("ada@example.com".into()))
    );
    assert_eq!(
        value("site", json!("https://example.com")),
        Ok(Value::Text("https://example.com".into()))
    );
    refused("contact", json!("ada"), "must be an email address");
    refused(
        "contact",
        json!(" ada@example.com"),
        "must be an email address",
    );
    refused(
        "site",
        json!("javascript:alert(1)"),
        "must be an absolute http or https URL",
    );
    refused(
        "site",
        json!("https://example.com/a-very-long-path"),
        "must be 0 to 30 characters long",
    );
}

//! Filters and sorts on `date`, `decimal`, `array`, `email` and `url` fields: the operators
//! each takes (arrays only `has` / `has_any`), typed filter values, and the in-memory
//! decision (`Filter::matches`) of each.

use super::*;
use crate::error::Error;
use crate::schema::{ModelDecl, Schema};
use serde_json::json;
use std::sync::Arc;

fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "book", "fields": [
        { "name": "price", "type": "decimal", "indexed": true },
        { "name": "published", "type": "date", "indexed": true },
        { "name": "tags", "type": "array", "items": "string" },
        { "name": "sizes", "type": "array", "items": "integer" },
        { "name": "contact", "type": "email", "indexed": true },
        { "name": "site", "type": "url" },
    ]}))
    .expect("declaration");
    Arc::clone(
        Schema::from_decls(&[decl])
            .expect("valid")
            .model("book")
            .expect("book"),
    )
}

fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse(&model(), &pairs, FieldAccess::All).map_err(|e| match e {
        Error::Invalid { details, .. } => {
            details.into_iter().map(|d| (d.field, d.reason)).collect()
        }
        other => panic!("{other:?}"),
    })
}

#[track_caller]
fn refused(key: &str, value: &str, reason: &str) {
    let errs = parse(&[(key, value)]).expect_err("accepted");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, key);
    assert!(errs[0].1.contains(reason), "{key}={value}: {:?}", errs[0].1);
}

fn record(price: &str, published: &str, tags: &[&str], sizes: &[i64]) -> Record {
    let at = Timestamp::parse("2026-01-02T03:04:05Z").expect("time");
    Record {
        id: RecordId::new_v7(),
        name: "b".to_owned(),
        status: Status::Active,
        created_at: at,
        updated_at: at,
        owner_id: None,
        version: 1,
        fields: vec![
            Value::Decimal(Decimal::parse(price, 2).expect("decimal")),
            Value::Date(Date::parse(published).expect("date")),
            Value::Array(tags.iter().map(|t| Value::Text((*t).to_owned())).collect()),
            Value::Array(sizes.iter().copied().map(Value::Integer).collect()),
            Value::Null,
            Value::Null,
        ],
    }
}

fn passes(pairs: &[(&str, &str)], r: &Record) -> bool {
    let q = parse(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e:?}"));
    q.filters.iter().all(|f| f.matches(r))
}

#[test]
fn typed_values_and_operators() {
    let q = parse(&[
        ("price[lt]", "10.5"),
        ("published[gte]", "2026-01-01"),
        ("tags[has_any]", "a,b"),
    ])
    .expect("valid");
    assert_eq!(
        q.filters[0].values,
        [Value::Decimal(Decimal::parse("10.50", 2).expect("d"))]
    );
    assert_eq!(q.filters[2].op, Op::HasAny);
    assert_eq!(q.filters[2].values.len(), 2);
    assert!(parse(&[("sort", "-price")]).is_ok());
    assert!(parse(&[("sort", "published")]).is_ok());
    assert!(parse(&[("sort", "contact")]).is_ok());
    assert!(parse(&[("contact[like]", "*@example.com")]).is_ok());
    assert!(parse(&[("site[like]", "https://*")]).is_ok());
    refused("price", "10.555", "has at most 2 decimal places");
    refused("price[gt]", "ten", "must be a decimal");
    refused("published", "2026-02-30", "no day 30");
    refused(
        "published[like]",
        "2026*",
        "like applies to text fields only",
    );
    refused("sizes[has]", "x", "must be an integer");
    refused(
        "tags",
        "a",
        "tags is an array: only has and has_any apply to it",
    );
    refused("tags[in]", "a", "only has and has_any");
    refused("tags[like]", "a*", "only has and has_any");
    refused(
        "price[has]",
        "1",
        "has and has_any apply to array fields only",
    );
    let many = vec!["x"; 101].join(",");
    refused("tags[has_any]", &many, "has_any takes at most 100 values");
    refused(
        "tags[contains]",
        "a",
        "use eq, ne, lt, lte, gt, gte, like, in, has or has_any",
    );
    let errs = parse(&[("sort", "tags")]).expect_err("an array sort");
    assert_eq!(errs[0].0, "sort");
}

#[test]
fn in_memory_decisions_agree_with_the_values() {
    let r = record("9.50", "2026-09-30", &["rust", "web"], &[1, 2]);
    assert!(passes(&[("price[lt]", "10")], &r));
    assert!(!passes(&[("price[gt]", "9.5")], &r));
    assert!(passes(&[("price", "9.5"), ("price[in]", "1,9.50")], &r));
    assert!(passes(&[("published[lt]", "2026-10-01")], &r));
    assert!(!passes(&[("published[gt]", "2026-09-30")], &r));
    assert!(passes(&[("tags[has]", "rust")], &r));
    assert!(!passes(&[("tags[has]", "Rust")], &r));
    assert!(passes(&[("tags[has_any]", "go,web")], &r));
    assert!(!passes(&[("tags[has_any]", "go,c")], &r));
    assert!(passes(&[("sizes[has]", "2")], &r));
    assert!(!passes(&[("sizes[has_any]", "3,4")], &r));
    let mut none = r.clone();
    none.fields = vec![Value::Null; 6];
    assert!(!passes(&[("tags[has]", "rust")], &none));
    assert!(!passes(&[("price[lt]", "10")], &none));
    assert!(passes(&[("price[ne]", "10")], &none));
}

#[test]
fn cursors_resume_on_dates_and_decimals() {
    for sort in ["price", "-published"] {
        let q = parse(&[("sort", sort)]).expect("valid");
        let r = record("-12.05", "0001-01-01", &[], &[]);
        let c = q.next_cursor(&r);
        let resumed = parse(&[("sort", sort), ("cursor", &c)]).expect("resumes");
        let after = resumed.after.expect("a position");
        assert_eq!(after.id, r.id);
        assert_eq!(after.value, q.sort.column.value_of(&r));
    }
}

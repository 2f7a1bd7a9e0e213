//! The change feed decides list filters in memory (`Filter::matches`); a list decides them
//! in SQL. Here the same filters run both ways over the same stored records, on the engine
//! of the run, and must select the same records: every operator, over text (case, Unicode,
//! SQL's own wildcards), integers, floats, booleans, timestamps, ids, enums, dates,
//! decimals (by value, not as text), arrays (`has`, `has_any`) and nulls; then `filter=`
//! expressions, whose `!` over a missing value is where SQL's three-valued logic and the
//! matcher's two could part.

use crate::helpers::{TestApp, decls, id_of};
use plinth_core::{FieldAccess, ListQuery, ListScope};
use serde_json::json;
use std::collections::BTreeSet;

#[tokio::test]
async fn in_memory_filters_select_what_the_store_lists() {
    let app = TestApp::spawn_with(decls(json!([{"name": "item", "fields": [
        {"name": "title", "type": "string"},
        {"name": "qty", "type": "integer"},
        {"name": "score", "type": "float"},
        {"name": "flag", "type": "boolean"},
        {"name": "due", "type": "datetime"},
        {"name": "parent", "type": "reference", "model": "item"},
        {"name": "tier", "type": "enum", "values": ["free", "pro"]},
        {"name": "secret", "type": "string", "pii": true},
        {"name": "price", "type": "decimal", "scale": 2},
        {"name": "day", "type": "date"},
        {"name": "tags", "type": "array", "items": "string"},
        {"name": "sizes", "type": "array", "items": "integer"}
    ]}])))
    .await;
    let root = app.create_ok("item", &json!({"name": "root"})).await;
    let parent = id_of(&root);
    let rows = [
        json!({"name": "Alpha", "title": "Hello World", "qty": 10, "score": 2.5, "flag": true,
               "due": "2026-05-01T00:00:00Z", "parent": parent, "tier": "pro", "secret": "s1",
               "price": "9.50", "day": "2026-09-30", "tags": ["rust", "web"], "sizes": [1, 2]}),
        json!({"name": "beta", "title": "hello world", "qty": -3, "score": -0.5, "flag": false,
               "due": "2026-05-01T00:00:00.000001Z", "tier": "free", "secret": "S1",
               "price": "10", "day": "2026-10-01", "tags": ["Rust"], "sizes": []}),
        json!({"name": "Straße", "title": "STRASSE café", "qty": 0, "score": 10.0,
               "due": "2025-12-31T23:59:59Z", "price": "-0.01", "day": "1999-12-31",
               "tags": [], "sizes": [-7]}),
        json!({"name": "Ünïcode", "title": "50%_off", "qty": 1000000, "score": 1e-9,
               "price": "100.00", "tags": ["a,b", "50%_off"]}),
        json!({"name": "zeta", "title": "Zebra", "score": 2.5, "flag": true}),
        json!({"name": "empty"}),
    ];
    for row in &rows {
        app.create_ok("item", row).await;
    }
    let model = std::sync::Arc::clone(app.state.schema().model("item").expect("item"));
    let store = app.state.store();
    let everything = ListQuery::parse(&model, &[("limit".into(), "200".into())], FieldAccess::All)
        .expect("a query");
    let records = store
        .list(&model, &everything, ListScope::All)
        .await
        .expect("list everything")
        .records;
    assert_eq!(records.len(), rows.len() + 1);

    let cases: &[(&str, &str)] = &[
        ("title", "Hello World"),
        ("title[ne]", "Hello World"),
        ("title[lt]", "hello"),
        ("title[gte]", "Zebra"),
        ("title[gt]", "STRASSE"),
        ("title[like]", "hello*"),
        ("title[like]", "*WORLD"),
        ("title[like]", "*o*o*"),
        ("title[like]", "strasse*"),
        ("title[like]", "*CAFÉ"),
        ("title[like]", "50%_off"),
        ("title[like]", "50*off"),
        ("title[like]", "5_%"),
        ("title[like]", "*"),
        ("title[in]", "Zebra,hello world"),
        ("name[like]", "straSSE"),
        ("name[like]", "ü*"),
        ("name[lt]", "a"),
        ("name[gt]", "Straße"),
        ("qty", "10"),
        ("qty[ne]", "10"),
        ("qty[lt]", "0"),
        ("qty[lte]", "0"),
        ("qty[gt]", "-3"),
        ("qty[gte]", "1000000"),
        ("qty[in]", "0,10,7"),
        ("score", "2.5"),
        ("score[lt]", "0"),
        ("score[gt]", "0.000000001"),
        ("score[gte]", "1e-9"),
        ("score[lte]", "2.5"),
        ("score[ne]", "2.5"),
        ("flag", "true"),
        ("flag", "false"),
        ("flag[ne]", "true"),
        ("flag[in]", "false"),
        ("due", "2026-05-01T00:00:00Z"),
        ("due[gt]", "2026-05-01T00:00:00Z"),
        ("due[lt]", "2026-05-01T02:00:00+02:00"),
        ("due[gte]", "2025-12-31T23:59:59Z"),
        ("due[ne]", "2026-05-01T00:00:00Z"),
        ("parent", &parent),
        ("parent[ne]", &parent),
        ("tier", "pro"),
        ("tier[ne]", "pro"),
        ("tier[in]", "free,pro"),
        ("secret", "s1"),
        ("secret[ne]", "s1"),
        ("secret[in]", "S1,s2"),
        ("price", "9.5"),
        ("price[ne]", "10"),
        ("price[lt]", "10"),
        ("price[lte]", "10.00"),
        ("price[gt]", "9.99"),
        ("price[gte]", "-0.01"),
        ("price[in]", "100,-0.01"),
        ("day", "2026-09-30"),
        ("day[ne]", "2026-09-30"),
        ("day[lt]", "2026-10-01"),
        ("day[gte]", "2000-01-01"),
        ("day[in]", "1999-12-31,2026-10-01"),
        ("tags[has]", "rust"),
        ("tags[has]", "a,b"),
        ("tags[has]", "50%_off"),
        ("tags[has_any]", "Rust,web"),
        ("tags[has_any]", "nothing"),
        ("sizes[has]", "2"),
        ("sizes[has_any]", "-7,1"),
        ("status", "active"),
        ("version[gt]", "0"),
        ("owner_id[ne]", &app.admin_id),
    ];
    let all_ids: BTreeSet<String> = records.iter().map(|r| r.id.to_string()).collect();
    for (key, value) in cases {
        let pairs = vec![
            ((*key).to_owned(), (*value).to_owned()),
            ("limit".to_owned(), "200".to_owned()),
        ];
        let query = ListQuery::parse(&model, &pairs, FieldAccess::All)
            .unwrap_or_else(|e| panic!("{key}={value}: {e:?}"));
        let listed: BTreeSet<String> = store
            .list(&model, &query, ListScope::All)
            .await
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"))
            .records
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        let matched: BTreeSet<String> = records
            .iter()
            .filter(|r| query.matches(r))
            .map(|r| r.id.to_string())
            .collect();
        assert_eq!(listed, matched, "{key}={value}");
        assert!(listed.is_subset(&all_ids));
    }
    let parent_is = format!("parent = \"{parent}\" || !parent != \"{parent}\"");
    let expressions: &[&str] = &[
        "(qty > 0 || score < 0) && title ~ \"world\"",
        "qty < 5 || qty >= 5",
        "!(qty < 5 || qty >= 5)",
        "!qty < 5",
        "!!qty < 5",
        "!(!qty < 5 && flag = true)",
        "!(qty > 0 && title ~ \"o\")",
        "!(score = 2.5) || flag != true",
        "qty = null || score = null",
        "!(due != null) && name !~ \"E\"",
        "title ~ \"café\" || title ~ \"50%_\" || title ~ \"*\"",
        "title !~ \"hello\"",
        "!(title < \"a\" || title >= \"h\")",
        "name ~ \"straSSE\" || name ~ \"Ü\"",
        "!(tier = \"pro\") && !(flag = false)",
        "secret = \"s1\" || secret = null",
        "!secret = \"s1\"",
        "!(secret != \"S1\")",
        "!(due > \"2026-05-01T00:00:00Z\") || score > 3",
        "!(owner_id = null) && version >= 1 && status = \"active\"",
        &parent_is,
        "price < 10 || !price >= 0",
        "!(price = \"10\") && day != null",
        "!day < \"2000-01-01\" || price > \"-1\"",
        "tags ?= \"rust\" && !tags ?= \"web\"",
        "!tags ?= \"Rust\" && !(tags ?= \"a,b\")",
        "sizes ?= 2 || !sizes ?= -7",
        "tags = null || !(tags != null)",
    ];
    for text in expressions {
        let pairs = vec![
            ("filter".to_owned(), (*text).to_owned()),
            ("limit".to_owned(), "200".to_owned()),
        ];
        let query = ListQuery::parse(&model, &pairs, FieldAccess::All)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let listed: BTreeSet<String> = store
            .list(&model, &query, ListScope::All)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .records
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        let matched: BTreeSet<String> = records
            .iter()
            .filter(|r| query.matches(r))
            .map(|r| r.id.to_string())
            .collect();
        assert_eq!(listed, matched, "{text}");
    }
}

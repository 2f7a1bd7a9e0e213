use super::*;
use crate::error::Error;
use crate::schema::{ModelDecl, Schema};
use crate::{ListQuery, RecordId, Status, Timestamp};
use serde_json::json;
use std::sync::Arc;

pub(super) fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "title", "type": "string" },
        { "name": "tier", "type": "enum", "values": ["free", "pro"] },
        { "name": "qty", "type": "integer" },
        { "name": "score", "type": "float" },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime" },
        { "name": "meta", "type": "json" },
        { "name": "parent", "type": "reference", "model": "item" },
        { "name": "ssn", "type": "string", "pii": true },
        { "name": "note", "type": "text", "admin_only": true },
        { "name": "born", "type": "date" },
        { "name": "price", "type": "decimal", "scale": 2 },
        { "name": "tags", "type": "array", "items": "string" },
        { "name": "sizes", "type": "array", "items": "integer" },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

fn ok(text: &str) -> Expr {
    parse(&model(), text, FieldAccess::All, &QueryLimits::default())
        .unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

/// The `column N: reason` text `text` is refused with.
fn refused(text: &str) -> String {
    refused_within(text, FieldAccess::All, &QueryLimits::default())
}

fn refused_within(text: &str, access: FieldAccess, limits: &QueryLimits) -> String {
    match parse(&model(), text, access, limits) {
        Ok(e) => panic!("{text:?} accepted as {e}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_issue_example_parses_with_and_over_or() {
    let e = ok(r#"(status = "active" || qty < 10) && title ~ "rust""#);
    assert_eq!(
        e.to_string(),
        r#"(status = "active" || qty < 10) && title ~ "rust""#
    );
    let Expr::And(left, right) = &e else {
        panic!("not an and: {e:?}")
    };
    assert!(matches!(**left, Expr::Or(..)));
    let Expr::Cmp(c) = &**right else {
        panic!("not a comparison: {right:?}")
    };
    assert_eq!(
        (c.column.name(), c.op, &c.values[..]),
        ("title", Op::Contains, &[Value::Text("rust".into())][..])
    );
}

#[test]
fn not_binds_tighter_than_and_tighter_than_or() {
    assert_eq!(
        ok("qty = 1 || qty = 2 && !qty = 3").to_string(),
        "qty = 1 || (qty = 2 && !qty = 3)"
    );
    assert_eq!(
        ok("!(qty = 1 || qty = 2) && flag = true").to_string(),
        "!(qty = 1 || qty = 2) && flag = true"
    );
    // Left to right within one level.
    assert_eq!(
        ok("qty = 1 || qty = 2 || qty = 3").to_string(),
        "(qty = 1 || qty = 2) || qty = 3"
    );
    assert_eq!(ok("!!flag = true").to_string(), "!!flag = true");
    assert_eq!(ok("((qty=1))").to_string(), "qty = 1");
}

#[test]
fn every_operator_and_literal_is_read() {
    let e = ok(
        r#"title != 'it\'s' && qty <= -3 && score >= 1e-9 && score > 2.5 && qty < 7
        && flag = false && due = "2026-05-01T02:00:00+02:00" && parent != null && title !~ "a\"b\\c""#,
    );
    let text = e.to_string();
    assert!(text.contains(r#"title != "it's""#), "{text}");
    assert!(text.contains("qty <= -3"), "{text}");
    assert!(text.contains("score >= 0.000000001"), "{text}");
    assert!(
        text.contains(r#"due = "2026-05-01T00:00:00.000000Z""#),
        "{text}"
    );
    assert!(text.contains("parent != null"), "{text}");
    assert!(text.contains(r#"!title ~ "a\"b\\c""#), "{text}");
    assert_eq!(e.comparisons(), 9);
    let id = RecordId::new_v7();
    assert_eq!(
        ok(&format!("id = \"{id}\"")).to_string(),
        format!("id = \"{id}\"")
    );
    assert_eq!(ok("tier = \"pro\"").to_string(), r#"tier = "pro""#);
    // Numbers, booleans and dates may be quoted, as `field=value` takes them.
    assert_eq!(ok("qty = \"5\"").to_string(), "qty = 5");
    assert_eq!(ok("flag != \"true\"").to_string(), "flag != true");
}

#[test]
fn errors_point_at_their_column() {
    assert_eq!(
        refused("qty < "),
        "column 7: expected a value after `<`, found the end"
    );
    assert_eq!(
        refused("(status = \"active\" || qty < ) && title ~ \"rust\""),
        "column 29: expected a value after `<`, found `)`"
    );
    assert_eq!(refused("nope = 1"), "column 1: unknown field `nope`");
    assert_eq!(
        refused("qty = 1 && é"),
        "column 12: unexpected character 'é'"
    );
    // The first error in the text is the one reported.
    assert_eq!(refused("nope = 1 && é"), "column 1: unknown field `nope`");
    assert_eq!(
        refused("qty = x; 1"),
        "column 7: expected a value after `=`, found `x`"
    );
    assert_eq!(refused("qty = 1.5"), "column 7: `qty` must be an integer");
    assert_eq!(
        refused("title = \"open"),
        "column 9: the string is never closed"
    );
    assert_eq!(refused("(qty = 1"), "column 1: `(` is never closed");
    assert_eq!(refused("qty = 1)"), "column 8: `)` without a matching `(`");
    assert_eq!(
        refused("qty = 1 qty = 2"),
        "column 9: expected `&&`, `||` or the end, found `qty`"
    );
    assert_eq!(
        refused("qty 1"),
        "column 5: expected a comparison (=, !=, <, <=, >, >=, ~, !~, ?=) after `qty`, found `1`"
    );
    assert_eq!(refused("qty = 1 & qty = 2"), "column 9: expected `&&`");
    assert_eq!(
        refused(""),
        "column 1: expected a field name, found the end"
    );
    assert_eq!(
        refused("qty = 1 ||"),
        "column 11: expected a field name, found the end"
    );
    assert_eq!(
        refused(r#"title = "a\n""#),
        "column 11: only \\\", \\' and \\\\ are escapes in a string"
    );
    assert_eq!(
        refused("status = active"),
        "column 10: expected a value after `=`, found `active`"
    );
    // Columns count characters, not bytes.
    assert_eq!(
        refused("title = \"é\" && x = 1"),
        "column 16: unknown field `x`"
    );
}

#[test]
fn operators_are_checked_against_the_field_type() {
    assert_eq!(
        refused("qty ~ \"1\""),
        "column 7: `~` applies to text fields only"
    );
    assert_eq!(
        refused("title !~ 5"),
        "column 10: `!~` takes a string, in quotes"
    );
    assert_eq!(
        refused("title = 5"),
        "column 9: `title` takes a string, in quotes"
    );
    assert_eq!(
        refused("flag < true"),
        "column 8: `<` does not apply to `flag`"
    );
    assert_eq!(
        refused("parent >= null"),
        "column 11: null compares only with = and !="
    );
    assert_eq!(
        refused("flag = 1"),
        "column 8: `flag` must be true or false"
    );
    assert_eq!(
        refused("tier = \"gold\""),
        "column 8: `tier` must be one of free, pro"
    );
    assert_eq!(
        refused("meta = 1"),
        "column 8: `meta` is json, which cannot be filtered"
    );
    assert_eq!(
        refused("ssn ~ \"1\""),
        "column 7: `ssn` is pii (stored encrypted): only = and != apply to it"
    );
    assert_eq!(
        refused("due > \"yesterday\"").split(':').next(),
        Some("column 7")
    );
    assert!(matches!(ok("ssn = \"123\""), Expr::Cmp(ref c) if c.column.pii()));
    assert!(matches!(ok("ssn != null"), Expr::Cmp(ref c) if c.values == [Value::Null]));
    // `status` values are the statuses.
    assert_eq!(
        refused("status = \"gone\""),
        format!(
            "column 10: `status` must be one of {}",
            Status::ALL.map(Status::as_str).join(", ")
        )
    );
}

#[test]
fn dates_decimals_and_arrays() {
    assert_eq!(
        ok("price < 10 && price >= \"2.5\" && born > \"2020-02-29\"").to_string(),
        "(price < 10.00 && price >= 2.50) && born > \"2020-02-29\""
    );
    assert_eq!(
        refused("price < 1.234"),
        "column 9: `price` has at most 2 decimal places"
    );
    assert_eq!(
        ok("tags ?= \"rust\" || sizes ?= 42 || tags = null").to_string(),
        "(tags ?= \"rust\" || sizes ?= 42) || tags = null"
    );
    assert_eq!(
        refused("tags ?= 5"),
        "column 9: `tags` takes a string, in quotes"
    );
    assert_eq!(
        refused("tags = \"rust\""),
        "column 8: `tags` is an array: only ?= (has) and = null, != null apply to it"
    );
    assert_eq!(
        refused("title ?= \"x\""),
        "column 10: `?=` applies to array fields only"
    );
    assert_eq!(
        refused("sizes ?= \"x\"").split(':').next(),
        Some("column 10")
    );
    assert_eq!(
        refused("born ~ \"2020\""),
        "column 8: `~` applies to text fields only"
    );
}

#[test]
fn fields_the_caller_may_not_see_are_unknown() {
    assert_eq!(ok("note ~ \"x\"").comparisons(), 1);
    assert_eq!(
        refused_within("note ~ \"x\"", FieldAccess::Public, &QueryLimits::default()),
        "column 1: unknown field `note`"
    );
}

#[test]
fn length_depth_comparisons_and_patterns_are_bounded() {
    let limits = QueryLimits {
        filter_max_chars: 20,
        pattern_max_chars: 3,
        value_max_chars: 4,
    };
    assert_eq!(
        refused_within(&"x".repeat(21), FieldAccess::All, &limits),
        "column 21: an expression is at most 20 characters"
    );
    assert_eq!(
        refused_within("title ~ \"abcd\"", FieldAccess::All, &limits),
        "column 9: the text of `~` is at most 3 characters"
    );
    assert_eq!(
        refused_within("title = \"abcde\"", FieldAccess::All, &limits),
        "column 9: a value is at most 4 characters"
    );
    assert_eq!(
        refused("title ~ \"a\0b\""),
        "column 9: the text of `~` must not contain NUL"
    );
    let deep = format!("{}qty = 1{}", "(".repeat(16), ")".repeat(16));
    assert_eq!(ok(&deep).comparisons(), 1);
    let deeper = format!("{}qty = 1{}", "(".repeat(17), ")".repeat(17));
    assert_eq!(refused(&deeper), "column 17: nested more than 16 deep");
    assert_eq!(
        refused(&"!".repeat(17)),
        "column 17: nested more than 16 deep"
    );
    // Far deeper than the stack would bear if the parser recursed unbounded.
    let huge = "(".repeat(2000);
    assert!(refused(&huge).starts_with("column 17:"));
    let many = vec!["qty = 1"; 64].join(" || ");
    assert_eq!(ok(&many).comparisons(), 64);
    let too_many = vec!["qty = 1"; 65].join(" || ");
    assert_eq!(
        refused(&too_many),
        format!("column {}: at most 64 comparisons", 64 * 11 + 1)
    );
}

#[test]
fn the_list_query_takes_filter_once_and_counts_it_with_the_filters() {
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let details = |v: &[(&str, &str)]| match ListQuery::parse(&model(), &pairs(v), FieldAccess::All)
    {
        Err(Error::Invalid { details, .. }) => details
            .into_iter()
            .map(|d| (d.field, d.reason))
            .collect::<Vec<_>>(),
        other => panic!("{v:?}: {other:?}"),
    };
    let q = ListQuery::parse(
        &model(),
        &pairs(&[
            ("filter", "status = \"deleted\" || qty > 1"),
            ("qty[lt]", "9"),
        ]),
        FieldAccess::All,
    )
    .expect("a query");
    assert!(q.expr.is_some() && q.status_filtered && !q.has_pattern());
    let q = ListQuery::parse(
        &model(),
        &pairs(&[("filter", "title ~ \"x\"")]),
        FieldAccess::All,
    )
    .expect("a query");
    assert!(!q.status_filtered && q.has_pattern());
    assert_eq!(
        details(&[("filter", "qty = 1"), ("filter", "qty = 2")]),
        [("filter".to_owned(), "given more than once".to_owned())]
    );
    assert_eq!(
        details(&[("filter", "qty = ")]),
        [(
            "filter".to_owned(),
            "column 7: expected a value after `=`, found the end".to_owned()
        )]
    );
    let expr = vec!["qty = 1"; 60].join(" || ");
    let mut many = vec![("filter", expr.as_str())];
    many.extend([("qty[ne]", "1"); 5]);
    assert_eq!(
        details(&many),
        [(
            "query".to_owned(),
            "at most 64 comparisons (filters and `filter` together)".to_owned()
        )]
    );
    many.pop();
    assert!(ListQuery::parse(&model(), &pairs(&many), FieldAccess::All).is_ok());
}

#[test]
fn the_tree_decides_records_with_two_valued_logic() {
    let m = model();
    let mut r = Record {
        id: RecordId::new_v7(),
        name: "n".into(),
        status: Status::Active,
        created_at: Timestamp::from_micros(0).expect("epoch"),
        updated_at: Timestamp::from_micros(0).expect("epoch"),
        owner_id: None,
        version: 1,
        fields: vec![Value::Null; m.fields().len()],
    };
    // A missing qty satisfies neither `< 5` nor `>= 5`; `!` turns each false into true.
    for (text, expected) in [
        ("qty < 5", false),
        ("!qty < 5", true),
        ("qty >= 5 || qty < 5", false),
        ("!(qty >= 5 || qty < 5)", true),
        ("qty = null", true),
        ("qty != null", false),
        ("qty != 5", true),
        ("title ~ \"\"", false),
        ("title !~ \"x\"", true),
        ("name ~ \"N\" && !name = \"x\"", true),
    ] {
        assert_eq!(ok(text).matches(&r), expected, "{text}");
    }
    r.fields[0] = Value::Text("Hello Wörld".into());
    r.fields[2] = Value::Integer(3);
    for (text, expected) in [
        ("qty < 5", true),
        ("!qty < 5", false),
        ("qty = null", false),
        ("title ~ \"WÖR\"", true),
        ("title ~ \"*\"", false),
        ("title !~ \"lo w\"", false),
        ("(qty = 4 || title ~ \"hell\") && !flag = true", true),
    ] {
        assert_eq!(ok(text).matches(&r), expected, "{text}");
    }
}

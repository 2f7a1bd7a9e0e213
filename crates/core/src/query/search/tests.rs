use super::*;
use crate::error::{Error, ErrorCode};
use crate::policy::FieldAccess;
use crate::record::{RecordId, Status, Value};
use crate::schema::{ModelDecl, Schema};
use crate::time::Timestamp;
use serde_json::json;
use std::sync::Arc;

fn model(searchable: bool) -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "book", "fields": [
        { "name": "title", "type": "string", "searchable": searchable },
        { "name": "body", "type": "text", "searchable": searchable },
        { "name": "price", "type": "integer", "indexed": true },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("book").expect("book"))
}

fn parse(model: &ModelDef, pairs: &[(&str, &str)]) -> Result<ListQuery, Error> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse(model, &pairs, FieldAccess::Public)
}

fn refusal(model: &ModelDef, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    match parse(model, pairs) {
        Err(e @ Error::Invalid { .. }) => {
            assert_eq!(e.code(), ErrorCode::InvalidInput);
            let Error::Invalid { details, .. } = e else {
                unreachable!()
            };
            details.into_iter().map(|d| (d.field, d.reason)).collect()
        }
        other => panic!("{pairs:?} not refused: {other:?}"),
    }
}

fn words(q: &str) -> Vec<String> {
    Search::parse(&model(true), q)
        .unwrap_or_else(|e| panic!("{q:?} refused: {e}"))
        .words()
        .to_vec()
}

#[test]
fn words_are_runs_of_letters_and_digits_and_nothing_else_is_syntax() {
    assert_eq!(words("  Rust  programming "), ["rust", "programming"]);
    assert_eq!(
        words(r#"title:"rust" OR NEAR(a b) -x* ^y"#),
        ["title", "rust", "or", "near", "a", "b", "x", "y"]
    );
    assert_eq!(words("a\0b\u{1}c"), ["a", "b", "c"]);
    assert_eq!(words("Ünïcödé 日本語 42"), ["ünïcödé", "日本語", "42"]);
    assert_eq!(words("it's"), ["it", "s"]);
}

#[test]
fn q_is_bounded_and_needs_a_word() {
    let m = model(true);
    let reason = |q: &str| refusal(&m, &[("q", q)]);
    let one = |r: &str| vec![("q".to_owned(), r.to_owned())];
    assert_eq!(
        reason(""),
        one("must hold at least one word (letters or digits)")
    );
    assert_eq!(
        reason("   "),
        one("must hold at least one word (letters or digits)")
    );
    assert_eq!(
        reason("\"*\" -- ()"),
        one("must hold at least one word (letters or digits)")
    );
    let long = "a".repeat(MAX_Q_CHARS + 1);
    assert_eq!(reason(&long), one("must be at most 256 characters"));
    // Trimmed before counting.
    let padded = format!("  {}  ", "a".repeat(MAX_Q_CHARS));
    assert!(parse(&m, &[("q", &padded)]).is_ok());
    let many = vec!["w"; MAX_Q_WORDS + 1].join(" ");
    assert_eq!(reason(&many), one("must be at most 16 words"));
    let enough = vec!["w"; MAX_Q_WORDS].join(" ");
    assert!(parse(&m, &[("q", &enough)]).is_ok());
    assert_eq!(
        refusal(&m, &[("q", "a"), ("q", "b")]),
        vec![("q".to_owned(), "given more than once".to_owned())]
    );
}

#[test]
fn a_model_without_searchable_fields_refuses_q() {
    let m = model(false);
    assert_eq!(
        refusal(&m, &[("q", "rust")]),
        vec![(
            "q".to_owned(),
            "model book has no searchable fields to search".to_owned()
        )]
    );
}

#[test]
fn relevance_sorts_a_search_only() {
    let m = model(true);
    let reason = "relevance sorts the results of a search: give q too".to_owned();
    assert_eq!(
        refusal(&m, &[("sort", "-relevance")]),
        vec![("sort".to_owned(), reason.clone())]
    );
    assert_eq!(
        refusal(&m, &[("sort", "relevance")]),
        vec![("sort".to_owned(), reason)]
    );
    let q = parse(&m, &[("q", "rust"), ("sort", "-relevance")]).expect("accepted");
    assert!(q.sort.column.is_relevance() && q.sort.descending);
    assert!(q.has_pattern(), "a search is a costly list");
    // Without a relevance sort a search keeps the sort asked for, or the default.
    let q = parse(&m, &[("q", "rust")]).expect("accepted");
    assert_eq!(q.sort.key(), "-created_at");
    let q = parse(&m, &[("q", "rust"), ("sort", "price")]).expect("accepted");
    assert_eq!(q.sort.key(), "price");
    assert_eq!(q.search.expect("search").words(), ["rust"]);
}

fn record() -> Record {
    Record {
        id: RecordId::parse("0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d").expect("id"),
        name: "n".to_owned(),
        status: Status::Active,
        created_at: Timestamp::from_micros(1).expect("time"),
        updated_at: Timestamp::from_micros(1).expect("time"),
        owner_id: None,
        version: 1,
        fields: vec![Value::Null, Value::Null, Value::Null],
    }
}

#[test]
fn a_relevance_cursor_carries_the_rank_bit_for_bit() {
    let m = model(true);
    let first = parse(&m, &[("q", "rust"), ("sort", "-relevance")]).expect("accepted");
    let rank = 0.1 + 0.2;
    let cursor = first.cursor_after(&record(), Some(rank));
    let next = parse(
        &m,
        &[("q", "rust"), ("sort", "-relevance"), ("cursor", &cursor)],
    )
    .expect("the cursor resumes its query");
    let after = next.after.expect("a position");
    assert_eq!(after.value, Value::Float(rank));
    assert_eq!(after.id, record().id);
    // Another search is another query.
    let other = refusal(
        &m,
        &[("q", "go"), ("sort", "-relevance"), ("cursor", &cursor)],
    );
    assert_eq!(other[0].0, "cursor");
    // A relevance cursor without a rank is not a cursor of this query.
    let bad = first.cursor_after(&record(), None);
    let refused = refusal(
        &m,
        &[("q", "rust"), ("sort", "-relevance"), ("cursor", &bad)],
    );
    assert_eq!(refused[0].0, "cursor");
}

/// The reason `searchable` on `field` is refused for.
fn declaration_refused(field: serde_json::Value) -> String {
    let decl: ModelDecl =
        serde_json::from_value(json!({ "name": "thing", "fields": [field] })).expect("decl");
    let errors = Schema::from_decls(&[decl]).expect_err("declaration accepted");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].reason.clone()
}

#[test]
fn searchable_is_for_text_every_reader_may_see() {
    let ok: ModelDecl = serde_json::from_value(json!({ "name": "thing", "fields": [
        { "name": "a", "type": "string", "searchable": true },
        { "name": "b", "type": "text", "searchable": true },
        { "name": "c", "type": "string" },
        { "name": "d", "type": "email", "searchable": true },
        { "name": "e", "type": "url", "searchable": true },
    ]}))
    .expect("decl");
    let schema = Schema::from_decls(&[ok]).expect("valid");
    let names: Vec<&str> = schema
        .model("thing")
        .expect("thing")
        .searchable_fields()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["a", "b", "d", "e"]);
    for kind in ["integer", "float", "boolean", "datetime", "json", "date"] {
        assert_eq!(
            declaration_refused(json!({ "name": "f", "type": kind, "searchable": true })),
            format!(
                "searchable applies to string, text, email and url fields, not to a field of \
                 type {kind}"
            )
        );
    }
    assert_eq!(
        declaration_refused(
            json!({ "name": "f", "type": "enum", "values": ["x"], "searchable": true })
        ),
        "searchable applies to string, text, email and url fields, not to a field of type enum"
    );
    assert_eq!(
        declaration_refused(
            json!({ "name": "f", "type": "string", "pii": true, "searchable": true })
        ),
        "a pii field cannot be searchable: its values are stored sealed, and an index of their \
         words would hold them in the clear"
    );
    assert_eq!(
        declaration_refused(
            json!({ "name": "f", "type": "text", "admin_only": true, "searchable": true })
        ),
        "an admin_only field cannot be searchable: others could find records by words they may \
         not see"
    );
}

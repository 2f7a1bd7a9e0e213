use super::*;
use crate::schema::ModelDecl;
use serde_json::json;

/// `publisher` ← `author` (an `admin_only` reference `mentor`) ← `book`.
fn schema() -> Schema {
    let decls: Vec<ModelDecl> = serde_json::from_value(json!([
        {"name": "publisher"},
        {"name": "author", "fields": [
            {"name": "publisher", "type": "reference", "model": "publisher"},
            {"name": "mentor", "type": "reference", "model": "author", "admin_only": true},
        ]},
        {"name": "book", "fields": [
            {"name": "title", "type": "string"},
            {"name": "author", "type": "reference", "model": "author"},
        ]},
    ]))
    .expect("declarations");
    Schema::from_decls(&decls).expect("a valid schema")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn shape(list: &[(&str, &str)], access: FieldAccess) -> Result<Shape, Error> {
    let s = schema();
    let book = s.model("book").expect("book");
    Shape::parse(&s, book, &pairs(list), access)
}

fn refused(list: &[(&str, &str)], access: FieldAccess) -> Vec<(String, String)> {
    match shape(list, access) {
        Err(Error::Invalid { details, .. }) => {
            details.into_iter().map(|d| (d.field, d.reason)).collect()
        }
        other => panic!("{list:?} not refused: {other:?}"),
    }
}

#[test]
fn paths_sharing_a_prefix_make_one_tree() {
    let s = shape(
        &[("expand", "author,author.publisher,author")],
        FieldAccess::Public,
    )
    .expect("valid");
    assert_eq!(s.expand.len(), 1);
    let author = &s.expand[0];
    assert_eq!((author.field.as_str(), author.index), ("author", 1));
    assert_eq!(author.target.name().as_str(), "author");
    assert_eq!(author.then.len(), 1);
    assert_eq!(author.then[0].target.name().as_str(), "publisher");
    assert!(author.then[0].then.is_empty());
    assert!(s.fields.is_none() && s.keeps("anything"));
}

#[test]
fn hidden_references_are_unknown_and_depth_is_bounded() {
    let hidden = refused(&[("expand", "author.mentor")], FieldAccess::Public);
    assert_eq!(
        hidden,
        [(
            "expand".to_owned(),
            "`author.mentor`: `mentor` is not a reference field of `author`".to_owned()
        )]
    );
    assert!(shape(&[("expand", "author.mentor")], FieldAccess::All).is_ok());
    let deep = refused(&[("expand", "author.mentor.publisher")], FieldAccess::All);
    assert_eq!(deep[0].1, "`author.mentor.publisher`: at most 2 levels");
    let not_ref = refused(&[("expand", "title")], FieldAccess::All);
    assert_eq!(
        not_ref[0].1,
        "`title`: `title` is not a reference field of `book`"
    );
}

#[test]
fn fields_name_visible_fields_once_and_hold_the_expanded_ones() {
    let s = shape(
        &[("fields", "id,author,id"), ("expand", "author")],
        FieldAccess::Public,
    )
    .expect("valid");
    assert_eq!(
        s.fields.as_deref(),
        Some(&["id".to_owned(), "author".to_owned()][..])
    );
    assert!(s.keeps("id") && !s.keeps("title"));
    let missing = refused(&[("fields", "id"), ("expand", "author")], FieldAccess::All);
    assert_eq!(
        missing,
        [(
            "expand".to_owned(),
            "`author` is expanded but not among `fields`".to_owned()
        )]
    );
}

#[test]
fn count_fields_and_expand_leave_the_cursor_fingerprint_alone() {
    let s = schema();
    let book = s.model("book").expect("book");
    let q = |list: &[(&str, &str)]| {
        ListQuery::parse(book, &pairs(list), FieldAccess::All).expect("valid")
    };
    let plain = q(&[("title", "x")]);
    let shaped = q(&[
        ("title", "x"),
        ("count", "true"),
        ("fields", "id"),
        ("expand", "author"),
    ]);
    assert_eq!(plain.fingerprint, shaped.fingerprint);
    assert!(shaped.count && !plain.count);
    assert_eq!(shaped.filters, plain.filters, "not filters");
}

#[test]
fn both_parses_report_every_bad_parameter_at_once() {
    let s = schema();
    let book = s.model("book").expect("book");
    let list = pairs(&[("nope", "1"), ("fields", "gone"), ("count", "2")]);
    let err = both(
        ListQuery::parse(book, &list, FieldAccess::All),
        Shape::parse(&s, book, &list, FieldAccess::All),
    )
    .expect_err("refused");
    let Error::Invalid { message, details } = err else {
        panic!("not an input error");
    };
    let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["nope", "count", "fields"]);
    assert_eq!(message, "invalid query parameters: nope, count, fields");
}

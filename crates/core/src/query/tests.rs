use super::*;
use crate::error::ErrorCode;
use crate::schema::{ModelDecl, Schema};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::sync::Arc;

const ID: &str = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
const BAD_CURSOR: &str = "is not a cursor returned by this endpoint";
const OTHER_QUERY: &str = "belongs to a different query (filters or sort changed)";
const BAD_SORT: &str =
    "must be created_at, updated_at, name or an indexed field, optionally prefixed with '-'";

fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "tier", "type": "enum", "values": ["free", "pro"], "indexed": true },
        { "name": "qty", "type": "integer", "indexed": true },
        { "name": "score", "type": "float" },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime", "indexed": true, "required": true },
        { "name": "email", "type": "string", "unique": true },
        { "name": "note", "type": "text" },
        { "name": "meta", "type": "json" },
        { "name": "parent", "type": "reference", "model": "item" },
        { "name": "ssn", "type": "string", "pii": true, "unique": true },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, Error> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse(&model(), &pairs, crate::policy::FieldAccess::All)
}

fn ok(pairs: &[(&str, &str)]) -> ListQuery {
    parse(pairs).unwrap_or_else(|e| panic!("{pairs:?} refused: {e:?}"))
}

/// The `(field, reason)` pairs the query is refused with.
fn errs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let e = parse(pairs).expect_err(&format!("{pairs:?} accepted"));
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

/// Asserts the query is refused with exactly one detail: `field` for `reason`.
#[track_caller]
fn refused(pairs: &[(&str, &str)], field: &str, reason: &str) {
    assert_eq!(errs(pairs), [pair(field, reason)], "{pairs:?}");
}

/// The single filter of a one-pair query, as `(column, op, values)`.
fn filter(key: &str, value: &str) -> (String, Op, Vec<Value>) {
    let q = ok(&[(key, value)]);
    assert_eq!(q.filters.len(), 1);
    let f = &q.filters[0];
    (f.column.name().to_owned(), f.op, f.values.clone())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("timestamp")
}

fn record(fields: Vec<Value>) -> Record {
    Record {
        id: RecordId::new_v7(),
        name: "last one".to_owned(),
        status: Status::Active,
        created_at: ts("2026-03-04T05:06:07.123456Z"),
        updated_at: ts("2026-03-05T00:00:00Z"),
        owner_id: None,
        version: 3,
        fields,
    }
}

#[test]
fn defaults() {
    let q = ok(&[]);
    assert_eq!(
        (q.limit, q.sort.key(), q.sort.descending),
        (20, "-created_at".to_owned(), true)
    );
    assert!(q.filters.is_empty());
    assert!(!q.status_filtered);
    assert_eq!(q.after, None);
}

#[test]
fn limit_is_1_to_200() {
    assert_eq!(ok(&[("limit", "1")]).limit, 1);
    assert_eq!(ok(&[("limit", "200")]).limit, 200);
    let bad = "0|-1|201|4294967296|99999999999999999999|abc||1.5| 5|0x10";
    let reason = "must be an integer from 1 to 200";
    for value in bad.split('|') {
        refused(&[("limit", value)], "limit", reason);
    }
}

#[test]
fn limit_sort_and_cursor_may_appear_once() {
    let twice = "given more than once";
    refused(&[("limit", "5"), ("limit", "6")], "limit", twice);
    refused(&[("limit", "5"), ("limit", "5")], "limit", twice);
    refused(&[("sort", "name"), ("sort", "-name")], "sort", twice);
    // The first cursor is still decoded, and this one is garbage.
    let got = errs(&[("cursor", "x"), ("cursor", "y")]);
    assert_eq!(got, [pair("cursor", twice), pair("cursor", BAD_CURSOR)]);
    // Filters may repeat: a range is two filters on one field.
    assert_eq!(ok(&[("qty[gt]", "1"), ("qty[lt]", "9")]).filters.len(), 2);
}

#[test]
fn allowed_sort_keys() {
    for (param, key) in [
        ("created_at", "created_at"),
        ("-created_at", "-created_at"),
        ("name", "name"),
        ("+name", "name"),
        ("-name", "-name"),
        ("updated_at", "updated_at"),
        ("tier", "tier"),
        ("-qty", "-qty"),
        ("due", "due"),
        ("email", "email"), // unique implies indexed
    ] {
        let q = ok(&[("sort", param)]);
        assert_eq!(
            (q.sort.key(), q.sort.descending),
            (key.to_owned(), key.starts_with('-'))
        );
    }
}

#[test]
fn refused_sort_keys() {
    let bad = "note|score|flag|meta|parent|id|status|version|owner_id|colour||-|--name|+-name|NAME";
    let sql = ["name; drop table x", "name desc", "name,qty"];
    for value in bad.split('|').chain(sql) {
        refused(&[("sort", value)], "sort", BAD_SORT);
    }
}

#[test]
fn every_operator() {
    let five = vec![Value::Integer(5)];
    assert_eq!(filter("qty", "5"), ("qty".to_owned(), Op::Eq, five.clone()));
    let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte];
    for (op, expected) in "eq ne lt lte gt gte".split(' ').zip(ops) {
        let got = filter(&format!("qty[{op}]"), "5");
        assert_eq!(got, ("qty".to_owned(), expected, five.clone()));
    }
    let like = filter("name[like]", "*foo*");
    assert_eq!(like, ("name".to_owned(), Op::Like, vec![text("*foo*")]));
    let within = filter("tier[in]", "free,pro");
    assert_eq!(
        within,
        ("tier".to_owned(), Op::In, vec![text("free"), text("pro")])
    );
    let one = filter("qty[in]", "1");
    assert_eq!(one, ("qty".to_owned(), Op::In, vec![Value::Integer(1)]));
    assert_eq!(filter("qty[in]", &["7"; 100].join(",")).2.len(), 100);
}

#[test]
fn values_are_typed_by_column() {
    let id = Value::Reference(RecordId::parse(ID).expect("id"));
    let new_year = Value::Datetime(ts("2026-01-01T00:00:00Z"));
    for (key, value, expected) in [
        ("qty", "-42", Value::Integer(-42)),
        ("score[gt]", "0.5", Value::Float(0.5)),
        ("flag", "true", Value::Boolean(true)),
        ("flag", "false", Value::Boolean(false)),
        ("due[gte]", "2026-01-01T01:00:00+01:00", new_year.clone()),
        ("created_at[lt]", "2026-01-01T00:00:00Z", new_year.clone()),
        ("updated_at", "2026-01-01T00:00:00Z", new_year),
        ("parent", ID, id.clone()),
        ("id", ID, id.clone()),
        ("owner_id", ID, id),
        ("version[gte]", "2", Value::Integer(2)),
        ("tier", "pro", text("pro")),
        ("email", "a@b.c", text("a@b.c")),
        ("name", "x' OR 1=1 --", text("x' OR 1=1 --")),
        ("note[like]", "", text("")),
    ] {
        assert_eq!(filter(key, value).2, [expected], "{key}={value}");
    }
}

#[test]
fn bad_values_name_the_parameter() {
    let uuid = "must be a UUID such as 0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
    let rfc = "must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z";
    let like = "like applies to text fields only";
    let order = "ordering comparisons do not apply to this field";
    let in101 = ["1"; 101].join(",");
    for (key, value, reason) in [
        ("qty", "abc", "must be an integer"),
        ("qty[gt]", "1.5", "must be an integer"),
        ("qty", "99999999999999999999", "must be an integer"),
        ("qty[in]", "1,x,3", "must be an integer"),
        ("qty[in]", &*in101, "in takes at most 100 values"),
        ("score", "NaN", "must be a number"),
        ("score", "inf", "must be a number"),
        ("flag", "yes", "must be true or false"),
        ("flag", "TRUE", "must be true or false"),
        ("due", "yesterday", rfc),
        ("parent", "nope", uuid),
        ("id[in]", "' OR 1=1 --", uuid),
        ("tier", "gold", "must be one of free, pro"),
        ("tier[in]", "free,gold", "must be one of free, pro"),
        ("status", "gone", "must be one of active, inactive, deleted"),
        ("meta", "{}", "json fields cannot be filtered"),
        ("qty[like]", "1", like),
        ("due[like]", "2026*", like),
        ("meta[like]", "*", like),
        ("flag[lt]", "true", order),
        ("id[gte]", ID, order),
    ] {
        refused(&[(key, value)], key, reason);
    }
}

#[test]
fn unknown_fields_and_operators_are_refused() {
    let unknown_op = "unknown operator; use eq, ne, lt, lte, gt, gte, like, in, has or has_any";
    for key in "qty[between] qty[eq qty[] qty[EQ] qty[eq][eq] qty]eq[ colour[regex]".split(' ') {
        refused(&[(key, "1")], key, unknown_op);
    }
    for key in "colour|colour[eq]|name; drop table x||Name|rowid|limit[eq]|[eq]".split('|') {
        refused(&[(key, "1")], key, "unknown field");
    }
    let long = "x".repeat(300);
    refused(&[(&long, "1")], &long[..64], "unknown field");
}

#[test]
fn too_many_filters() {
    let many = vec![("qty[ne]", "1"); 65];
    refused(
        &many,
        "query",
        "at most 64 comparisons (filters and `filter` together)",
    );
    assert_eq!(ok(&many[..64]).filters.len(), 64);
}

#[test]
fn every_bad_parameter_is_reported() {
    let pairs = [
        ("limit", "0"),
        ("sort", "meta"),
        ("colour", "1"),
        ("qty", "x"),
        ("cursor", "!"),
    ];
    let e = parse(&pairs).expect_err("invalid");
    let Error::Invalid { message, details } = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        message,
        "invalid query parameters: limit, sort, colour, qty, cursor"
    );
    let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["limit", "sort", "colour", "qty", "cursor"]);
}

#[test]
fn status_filtered_flag() {
    assert!(!ok(&[("qty", "1"), ("name[like]", "a*")]).status_filtered);
    assert!(ok(&[("status", "deleted")]).status_filtered);
    assert!(ok(&[("status[in]", "active,deleted")]).status_filtered);
    assert!(ok(&[("status[ne]", "inactive")]).status_filtered);
    assert_eq!(filter("status", "inactive").2, [text("inactive")]);
}

#[test]
fn cursor_round_trips() {
    let mut fields = vec![Value::Null; 9];
    fields[1] = Value::Integer(7);
    fields[4] = Value::Datetime(ts("2027-01-01T00:00:00Z"));
    fields[5] = text("a@b.c");
    let last = record(fields.clone());
    let updated = Value::Datetime(last.updated_at);
    let two_filters = [
        ("sort", "-updated_at"),
        ("qty[gt]", "3"),
        ("status", "active"),
    ];
    let cases: [(&[(&str, &str)], Value); 6] = [
        (&[], Value::Datetime(last.created_at)),
        (&[("sort", "name"), ("tier", "pro")], text("last one")),
        (&two_filters, updated),
        (&[("sort", "qty")], Value::Integer(7)),
        (&[("sort", "-due")], fields[4].clone()),
        (&[("sort", "email"), ("limit", "5")], text("a@b.c")),
    ];
    for (pairs, value) in cases {
        let q = ok(pairs);
        let cursor = q.next_cursor(&last);
        let mut next: Vec<(&str, &str)> = pairs.to_vec();
        next.reverse(); // filter order does not matter
        next.push(("cursor", &cursor));
        let resumed = ok(&next);
        assert_eq!(
            resumed.after,
            Some(CursorPos { value, id: last.id }),
            "{pairs:?}"
        );
        assert_eq!((resumed.fingerprint, resumed.sort), (q.fingerprint, q.sort));
    }
    // A nullable sort column whose last value is NULL.
    let last = record(vec![Value::Null; 9]);
    let cursor = ok(&[("sort", "-qty")]).next_cursor(&last);
    let resumed = ok(&[("sort", "-qty"), ("cursor", &cursor), ("limit", "50")]);
    assert_eq!(
        resumed.after,
        Some(CursorPos {
            value: Value::Null,
            id: last.id
        })
    );
    assert_eq!(resumed.limit, 50, "the page size may change between pages");
}

#[test]
fn cursor_is_bound_to_its_query() {
    let last = record(vec![Value::Null; 9]);
    let cursor = ok(&[("sort", "name"), ("tier", "pro")]).next_cursor(&last);
    for other in [
        vec![("sort", "name"), ("tier", "free")],
        vec![("sort", "-name"), ("tier", "pro")],
        vec![("sort", "updated_at"), ("tier", "pro")],
        vec![("sort", "name")],
        vec![("sort", "name"), ("tier", "pro"), ("qty", "1")],
        vec![("sort", "name"), ("tier[eq]", "pro")],
    ] {
        let mut pairs = other.clone();
        pairs.push(("cursor", &cursor));
        refused(&pairs, "cursor", OTHER_QUERY);
    }
}

#[test]
fn garbage_cursors_are_refused() {
    let fp = format!("{:016x}", ok(&[]).fingerprint);
    let b64 = |v: &str| URL_SAFE_NO_PAD.encode(v);
    let wire = |v: serde_json::Value| b64(&v.to_string());
    let fields = json!({ "s": "-created_at", "f": fp, "v": 0, "i": ID });
    let epoch = Value::Datetime(ts("1970-01-01T00:00:00Z"));
    let pos = CursorPos {
        value: epoch,
        id: RecordId::parse(ID).expect("id"),
    };
    let hand_made = ok(&[("cursor", &wire(fields.clone()))]).after;
    assert_eq!(
        hand_made,
        Some(pos),
        "a cursor is only a position: a well-formed one is fine"
    );
    let with = |key: &str, value: serde_json::Value| {
        let mut w = fields.clone();
        w[key] = value;
        wire(w)
    };
    let bad = [
        String::new(),
        "not a cursor!!".to_owned(),
        "' OR 1=1 --".to_owned(),
        "1; DROP TABLE item".to_owned(),
        b64("hello"),
        b64("[1,2]"),
        b64("null"),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
        format!("{}==", wire(fields.clone())),
        "A".repeat(2049),
        with("x", json!(1)),
        with("v", json!("yesterday")),
        with("v", json!(1.5)),
        with("v", json!(null)),
        with("v", json!(i64::MAX)),
        with("i", json!("nope")),
        with("i", json!(42)),
        with("f", json!(7)),
        with("s", json!(["-created_at"])),
    ];
    for c in bad {
        refused(&[("cursor", &c)], "cursor", BAD_CURSOR);
    }
    for c in [
        with("s", json!("created_at")),
        with("f", json!("0000000000000000")),
    ] {
        refused(&[("cursor", &c)], "cursor", OTHER_QUERY);
    }
    // Length is checked first: a well-formed but overlong cursor is refused.
    let fp = format!("{:016x}", ok(&[("sort", "name")]).fingerprint);
    let by_name = |len: usize| wire(json!({ "s": "name", "f": fp, "v": "x".repeat(len), "i": ID }));
    let (fits, long) = (by_name(1400), by_name(1600));
    assert!(fits.len() <= 2048 && long.len() > 2048);
    assert!(ok(&[("sort", "name"), ("cursor", &fits)]).after.is_some());
    refused(&[("sort", "name"), ("cursor", &long)], "cursor", BAD_CURSOR);
    // The bound itself: 2048 characters is accepted, the next size up is not.
    let at = |n: usize| {
        (1000..1600)
            .map(by_name)
            .find(|c| c.len() >= n)
            .expect("a cursor of about that length")
    };
    let (edge, over) = (at(2048), at(2049));
    assert_eq!(edge.len(), 2048);
    assert!(over.len() > 2048);
    assert!(ok(&[("sort", "name"), ("cursor", &edge)]).after.is_some());
    refused(&[("sort", "name"), ("cursor", &over)], "cursor", BAD_CURSOR);
}

#[test]
fn fingerprints_are_stable_across_versions() {
    // Cursors carry the fingerprint, so a cursor issued before an upgrade must still resume
    // its query after it: these values are FNV-1a as documented, and must never change.
    // The expected values were computed independently of this code.
    let cases: [(&[(&str, &str)], u64); 4] = [
        (&[], 0xb26c_a25c_367c_6365),
        (&[("sort", "name"), ("tier", "pro")], 0xea50_eec3_83a7_a8b8),
        (
            &[("qty[gt]", "1"), ("tier", "pro"), ("limit", "5")],
            0x940f_058f_e003_0224,
        ),
        // Filter order and paging parameters do not matter.
        (&[("tier", "pro"), ("qty[gt]", "1")], 0x940f_058f_e003_0224),
    ];
    for (pairs, expected) in cases {
        assert_eq!(ok(pairs).fingerprint, expected, "{pairs:?}");
    }
    // The separator keeps "ab" + "c" apart from "a" + "bc".
    assert_ne!(
        ok(&[("name", "ab"), ("note", "c")]).fingerprint,
        ok(&[("name", "a"), ("note", "bc")]).fingerprint
    );
}

fn parse_within(pairs: &[(&str, &str)], limits: &QueryLimits) -> Result<ListQuery, Error> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse_within(&model(), &pairs, crate::policy::FieldAccess::All, limits)
}

#[test]
fn filter_values_and_patterns_are_bounded_in_characters() {
    let limits = QueryLimits {
        value_max_chars: 4,
        pattern_max_chars: 3,
        ..QueryLimits::default()
    };
    let refused_within = |pairs: &[(&str, &str)], field: &str, reason: &str| {
        let e = parse_within(pairs, &limits).expect_err("accepted");
        let Error::Invalid { details, .. } = e else {
            panic!("not an input error: {e:?}")
        };
        let got: Vec<_> = details.into_iter().map(|d| (d.field, d.reason)).collect();
        assert_eq!(got, [pair(field, reason)], "{pairs:?}");
    };
    // Characters, not bytes: four astral-plane characters are within four.
    for pairs in [
        [("note", "𝄞𝄞𝄞𝄞")],
        [("note[in]", "abcd,𝄞𝄞𝄞𝄞")],
        [("note[like]", "*é*")],
        [("qty[gte]", "1000")],
    ] {
        parse_within(&pairs, &limits).unwrap_or_else(|e| panic!("{pairs:?}: {e:?}"));
    }
    let value = "a filter value is at most 4 characters";
    refused_within(&[("note", "abcde")], "note", value);
    refused_within(&[("note[ne]", "abcde")], "note[ne]", value);
    refused_within(&[("qty[gt]", "10000")], "qty[gt]", value);
    refused_within(
        &[("note[in]", "a,abcde")],
        "note[in]",
        "each value is at most 4 characters",
    );
    let pattern = "a like pattern is at most 3 characters";
    refused_within(&[("note[like]", "*ab*")], "note[like]", pattern);
    // The defaults refuse the 60,000-character pattern SQLite itself would call "too
    // complex" (an internal error) and a long value alike.
    let long = "*a".repeat(30_000);
    refused(
        &[("note[like]", &long)],
        "note[like]",
        "a like pattern is at most 128 characters",
    );
    refused(
        &[("note", &"a".repeat(2049))],
        "note",
        "a filter value is at most 2048 characters",
    );
    assert_eq!(ok(&[("note", &"a".repeat(2048))]).filters.len(), 1);
}

#[test]
fn nul_in_a_like_pattern_is_refused() {
    let reason = "a like pattern must not contain NUL (\\u0000)";
    for value in ["*\0*", "\0", "a\0b"] {
        refused(&[("note[like]", value)], "note[like]", reason);
    }
    // Other values are compared whole, NUL included.
    assert_eq!(filter("note", "a\0b").2, [text("a\0b")]);
}

#[test]
fn a_like_filter_makes_a_pattern_query() {
    assert!(ok(&[("note[like]", "*a*")]).has_pattern());
    assert!(!ok(&[("note", "a"), ("qty[gt]", "1")]).has_pattern());
}

#[test]
fn pii_fields_take_equality_only() {
    for (key, value) in [
        ("ssn", "1"),
        ("ssn[eq]", "1"),
        ("ssn[ne]", "1"),
        ("ssn[in]", "1,2"),
    ] {
        let q = ok(&[(key, value)]);
        assert!(q.filters[0].column.pii(), "{key}");
    }
    for op in ["lt", "lte", "gt", "gte", "like"] {
        let key = format!("ssn[{op}]");
        refused(
            &[(&key, "1")],
            &key,
            "ssn is pii (stored encrypted): only eq, ne and in apply to it",
        );
    }
    for sort in ["ssn", "-ssn"] {
        refused(
            &[("sort", sort)],
            "sort",
            "ssn is pii (stored encrypted) and cannot be a sort key",
        );
    }
    assert!(!ok(&[("email", "a")]).filters[0].column.pii());
}

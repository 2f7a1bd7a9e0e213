//! Property tests: what no input may do (panic), and what must hold for every valid input
//! (cursors round-trip, declarations survive being written out and read back).
//!
//! Case counts are modest so the suite stays fast; failures print the shrunk input.

use crate::cursor::{Cursor, CursorPos};
use crate::policy::FieldAccess;
use crate::query::{Column, Op, Sort};
use crate::record::{RecordId, Value};
use crate::schema::{ModelDecl, ModelDef, Schema, ValueKind};
use crate::time::Timestamp;
use crate::{Error, ListQuery};
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

const CASES: u32 = 256;

/// A model with a field of every type; the indexed ones can be sort keys.
fn model() -> Arc<ModelDef> {
    let decl: ModelDecl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "tier", "type": "enum", "values": ["free", "pro"], "indexed": true },
        { "name": "qty", "type": "integer", "indexed": true },
        { "name": "score", "type": "float", "indexed": true },
        { "name": "flag", "type": "boolean", "indexed": true },
        { "name": "due", "type": "datetime", "indexed": true, "required": true },
        { "name": "email", "type": "string", "unique": true },
        { "name": "note", "type": "text", "admin_only": true },
        { "name": "meta", "type": "json" },
        { "name": "parent", "type": "reference", "model": "item", "indexed": true },
        { "name": "born", "type": "date", "indexed": true },
        { "name": "price", "type": "decimal", "scale": 2, "indexed": true },
        { "name": "tags", "type": "array", "items": "string" },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

/// Every column name of [`model`], base fields included.
const NAMES: [&str; 19] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "owner_id",
    "version",
    "tier",
    "qty",
    "score",
    "flag",
    "due",
    "email",
    "note",
    "meta",
    "parent",
    "born",
    "price",
    "tags",
];

const OPS: [&str; 10] = [
    "eq", "ne", "lt", "lte", "gt", "gte", "like", "in", "has", "has_any",
];

/// A query-string key: a known column with or without a known operator, or noise.
fn key() -> impl Strategy<Value = String> {
    let name = prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned);
    prop_oneof![
        name.clone(),
        (name.clone(), prop::sample::select(OPS.to_vec())).prop_map(|(n, op)| format!("{n}[{op}]")),
        (name, any::<String>()).prop_map(|(n, op)| format!("{n}[{op}]")),
        Just("limit".to_owned()),
        Just("sort".to_owned()),
        Just("cursor".to_owned()),
        any::<String>(),
    ]
}

/// A query-string value: shaped like a value of some column, or noise.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        prop::sample::select(vec!["true", "false", "free", "pro", "active", "deleted"])
            .prop_map(str::to_owned),
        any::<u128>().prop_map(|u| Uuid::from_u128(u).to_string()),
        timestamp().prop_map(|t| t.to_string()),
        timestamp().prop_map(|t| t.to_string()[..10].to_owned()),
        (any::<i64>(), 0_u32..4).prop_map(|(i, d)| format!(
            "{}.{}",
            i / 1000,
            "5".repeat(d as usize)
        )),
        prop::sample::select(NAMES.to_vec()).prop_map(|n| format!("-{n}")),
        "[a-z0-9*%_,\\\\-]{0,40}",
        any::<String>(),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (-62_135_596_800_000_000_i64..=253_402_300_799_999_999)
        .prop_map(|m| Timestamp::from_micros(m).expect("in range"))
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((key(), value()), 0..8)
}

/// A sortable column and a value of its kind for a cursor position (NULL where the column
/// may hold it).
fn position() -> impl Strategy<Value = (Sort, CursorPos)> {
    let sortable = [
        "name",
        "created_at",
        "updated_at",
        "tier",
        "qty",
        "score",
        "flag",
        "due",
        "parent",
        "born",
        "price",
    ];
    (
        prop::sample::select(sortable.to_vec()),
        any::<bool>(),
        any::<u128>(),
        any::<bool>(),
        any::<i64>(),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        any::<String>(),
        timestamp(),
    )
        .prop_map(|(name, descending, id, null, i, f, s, t)| {
            let column = Column::resolve(&model(), name, FieldAccess::All).expect("column");
            let value = if null && column.nullable() {
                Value::Null
            } else {
                match column.kind() {
                    ValueKind::Text => Value::Text(s),
                    ValueKind::Integer => Value::Integer(i),
                    ValueKind::Float => Value::Float(f),
                    ValueKind::Boolean => Value::Boolean(null),
                    ValueKind::Datetime => Value::Datetime(t),
                    ValueKind::Uuid => {
                        Value::Reference(RecordId::from_uuid(Uuid::from_u128(i as u128)))
                    }
                    ValueKind::Date => {
                        Value::Date(crate::date::Date::parse(&t.to_string()[..10]).expect("a date"))
                    }
                    ValueKind::Decimal(scale) => Value::Decimal(
                        crate::decimal::Decimal::from_units(i / 100, scale).expect("in range"),
                    ),
                    ValueKind::Json | ValueKind::Array(_) => Value::Null,
                }
            };
            let pos = CursorPos {
                value,
                id: RecordId::from_uuid(Uuid::from_u128(id)),
            };
            (Sort { column, descending }, pos)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any query string is a query or a 400 listing what is wrong: never a panic, never an
    /// accepted filter outside the model's columns and operators.
    #[test]
    fn any_query_string_parses_or_is_refused(pairs in pairs(), admin in any::<bool>()) {
        let model = model();
        let access = if admin { FieldAccess::All } else { FieldAccess::Public };
        match ListQuery::parse(&model, &pairs, access) {
            Ok(q) => {
                prop_assert!((1..=crate::query::MAX_LIMIT).contains(&q.limit));
                for f in &q.filters {
                    prop_assert!(NAMES.contains(&f.column.name()), "{f:?}");
                    prop_assert!(admin || f.column.name() != "note", "admin_only filter");
                    prop_assert!(!f.values.is_empty());
                    if f.op != Op::In {
                        prop_assert_eq!(f.values.len(), 1);
                    }
                    prop_assert!(f.values.iter().all(|v| !matches!(v, Value::Json(_))));
                }
            }
            Err(Error::Invalid { details, .. }) => prop_assert!(!details.is_empty()),
            Err(other) => prop_assert!(false, "not a validation error: {other:?}"),
        }
    }

    /// Every position encodes to a cursor that decodes to the same position, for the same
    /// sort and query only.
    #[test]
    fn cursors_round_trip((sort, pos) in position(), fingerprint in any::<u64>()) {
        let cursor = Cursor::encode(&sort, fingerprint, &pos);
        prop_assert_eq!(Cursor::decode(&cursor, &sort, fingerprint), Ok(pos));
        prop_assert!(Cursor::decode(&cursor, &sort, fingerprint ^ 1).is_err());
        let flipped = Sort { descending: !sort.descending, ..sort.clone() };
        prop_assert!(Cursor::decode(&cursor, &flipped, fingerprint).is_err());
    }

    /// Any text offered as a cursor decodes or is refused, inside a query too.
    #[test]
    fn any_text_as_a_cursor_is_refused_or_decoded(
        text in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,300}"],
        (sort, _) in position(),
    ) {
        let _ = Cursor::decode(&text, &sort, 0);
        let pairs = [("cursor".to_owned(), text)];
        prop_assert!(ListQuery::parse(&model(), &pairs, FieldAccess::All).is_err());
    }

    /// Base64 of arbitrary JSON-ish bytes (past the first decoding layer) is refused, never
    /// a panic.
    #[test]
    fn any_decoded_cursor_body_is_refused_or_decoded(
        body in prop_oneof![
            any::<Vec<u8>>(),
            (any::<String>(), any::<String>(), any::<i64>(), any::<String>()).prop_map(|(s, f, v, i)| {
                json!({ "s": s, "f": f, "v": v, "i": i }).to_string().into_bytes()
            }),
        ],
        (sort, _) in position(),
    ) {
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body);
        let _ = Cursor::decode(&text, &sort, 0);
    }
}

/// A declaration as TOML text: models with fields of random kinds and attributes, names
/// valid or not, and constraints that may contradict each other.
fn declarations() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        "[a-z][a-z0-9_]{0,10}",
        prop::sample::select(vec!["id", "name", "status", "item", "_x", "A", ""])
            .prop_map(str::to_owned),
        any::<String>(),
    ];
    let kind = prop::sample::select(vec![
        "string",
        "text",
        "integer",
        "float",
        "boolean",
        "datetime",
        "enum",
        "json",
        "reference",
        "nope",
    ]);
    let attr = prop_oneof![
        Just("required = true".to_owned()),
        Just("unique = true".to_owned()),
        Just("indexed = true".to_owned()),
        Just("admin_only = true".to_owned()),
        any::<i64>().prop_map(|n| format!("min_length = {n}")),
        any::<i64>().prop_map(|n| format!("max_length = {n}")),
        any::<i64>().prop_map(|n| format!("min = {n}")),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("max = {f:?}")),
        prop_oneof!["[a-z^$.*+?()|\\[\\]{}0-9\\\\]{0,12}", any::<String>()]
            .prop_map(|p| format!("pattern = {}", toml_string(&p))),
        prop::collection::vec("[a-z]{0,4}", 0..4).prop_map(|v| format!(
            "values = [{}]",
            v.iter()
                .map(|s| toml_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        prop::sample::select(vec!["item", "other", "x"]).prop_map(|m| format!("model = \"{m}\"")),
        Just("bogus = 1".to_owned()),
    ];
    let field =
        (name.clone(), kind, prop::collection::vec(attr, 0..4)).prop_map(|(n, k, attrs)| {
            let mut t = format!("name = {}\ntype = \"{k}\"\n", toml_string(&n));
            for a in attrs {
                t.push_str(&a);
                t.push('\n');
            }
            t
        });
    let policy = prop::sample::select(vec![
        "",
        "guest_read = false\n",
        "user_read = \"own\"\n",
        "user_read = \"bogus\"\n",
        "hide_forbidden = false\n",
    ]);
    let model = (name, policy, prop::collection::vec(field, 0..5)).prop_map(|(n, p, fields)| {
        let mut t = format!("[[models]]\nname = {}\n{p}", toml_string(&n));
        for f in fields {
            t.push_str("[[models.fields]]\n");
            t.push_str(&f);
        }
        t
    });
    prop::collection::vec(model, 0..4).prop_map(|m| m.concat())
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct File {
    #[serde(default)]
    models: Vec<ModelDecl>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Declarations are validated or refused with reasons, never a panic; an accepted one,
    /// written back out as TOML (the config file) or JSON (how the database records it) and
    /// read again, is the same declaration and validates to the same schema.
    #[test]
    fn declarations_validate_and_survive_a_round_trip(text in declarations()) {
        let Ok(file) = toml::from_str::<File>(&text) else { return Ok(()) };
        match Schema::from_decls(&file.models) {
            Err(errors) => prop_assert!(!errors.is_empty()),
            Ok(schema) => {
                let toml_text = toml::to_string(&file).expect("serialise as TOML");
                let again: File = toml::from_str(&toml_text).expect("read the TOML back");
                prop_assert_eq!(&again.models, &file.models, "{}", toml_text);
                let stored = serde_json::to_string(&file.models).expect("serialise as JSON");
                let again: Vec<ModelDecl> = serde_json::from_str(&stored).expect("read the JSON back");
                prop_assert_eq!(&again, &file.models);
                prop_assert_eq!(Schema::from_decls(&again).expect("still valid"), schema);
            }
        }
    }

    /// Arbitrary text as a config file's models: a parse error or a validation result.
    #[test]
    fn any_text_as_declarations_is_refused_or_validated(text in any::<String>()) {
        if let Ok(file) = toml::from_str::<File>(&text) {
            let _ = Schema::from_decls(&file.models);
        }
    }
}

/// The case the round-trip property found: without correctly rounded float parsing this
/// value came back one ulp off, so a page boundary on a float sort repeated a row.
#[test]
fn a_float_cursor_keeps_every_bit() {
    let column = Column::resolve(&model(), "score", FieldAccess::All).expect("score");
    let sort = Sort {
        column,
        descending: false,
    };
    let pos = CursorPos {
        value: Value::Float(-1.372_339_805_911_461_7e-244),
        id: RecordId::from_uuid(Uuid::nil()),
    };
    let cursor = Cursor::encode(&sort, 7, &pos);
    assert_eq!(Cursor::decode(&cursor, &sort, 7), Ok(pos));
}

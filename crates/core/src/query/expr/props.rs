//! Property tests of the expression parser: no input panics it, every error points inside
//! the input (or just past its end), and a tree written out and parsed again is the same
//! tree.

use super::tests::model;
use super::*;
use crate::date::Date;
use crate::decimal::Decimal;
use crate::record::RecordId;
use crate::time::Timestamp;
use proptest::prelude::*;
use uuid::Uuid;

/// Pieces of the grammar and of what it must refuse, to be strung together at random.
const PIECES: [&str; 36] = [
    "(", ")", "!", "&&", "||", "&", "|", "=", "!=", "<", "<=", ">", ">=", "~", "!~", " ", "qty",
    "title", "ssn", "flag", "note", "meta", "nope", "\"x\"", "'y'", "\"", "\\", "1", "-2.5e-3",
    "null", "true", "é", "?=", "tags", "price", "born",
];

fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(PIECES.to_vec()), 0..40)
            .prop_map(|p| p.concat()),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (-62_135_596_800_000_000_i64..=253_402_300_799_999_999)
        .prop_map(|m| Timestamp::from_micros(m).expect("in range"))
}

const ORDERED: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte];

/// A comparison the parser accepts: a field, an operator its type takes, a value of it.
fn comparison() -> impl Strategy<Value = Expr> {
    let ordered = || prop::sample::select(ORDERED.to_vec());
    let equal = || prop::sample::select(vec![Op::Eq, Op::Ne]);
    let text = || "(?s).{0,12}";
    let leaf = prop_oneof![
        (Just("title"), ordered(), text().prop_map(Value::Text)),
        (
            Just("name"),
            Just(Op::Contains),
            "(?s)[^\0]{0,12}".prop_map(Value::Text)
        ),
        (
            Just("qty"),
            ordered(),
            any::<i64>().prop_map(Value::Integer)
        ),
        (
            Just("score"),
            ordered(),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float)
        ),
        (
            Just("flag"),
            equal(),
            any::<bool>().prop_map(Value::Boolean)
        ),
        (
            Just("due"),
            ordered(),
            timestamp().prop_map(Value::Datetime)
        ),
        (
            Just("parent"),
            equal(),
            any::<u128>().prop_map(|u| Value::Reference(RecordId::from_uuid(Uuid::from_u128(u))))
        ),
        (Just("ssn"), equal(), text().prop_map(Value::Text)),
        (
            Just("tier"),
            equal(),
            prop::sample::select(vec!["free", "pro"]).prop_map(|s| Value::Text(s.into()))
        ),
        (
            Just("price"),
            ordered(),
            (-1_000_000_000_i64..1_000_000_000)
                .prop_map(|u| Value::Decimal(Decimal::from_units(u, 2).expect("in range")))
        ),
        (
            Just("born"),
            ordered(),
            (1_i32..=9999, 1_u8..=12, 1_u8..=28).prop_map(|(y, m, d)| Value::Date(
                Date::parse(&format!("{y:04}-{m:02}-{d:02}")).expect("a date")
            ))
        ),
        (Just("tags"), Just(Op::Has), text().prop_map(Value::Text)),
        (
            Just("sizes"),
            Just(Op::Has),
            any::<i64>().prop_map(Value::Integer)
        ),
        (Just("tags"), equal(), Just(Value::Null)),
        (Just("qty"), equal(), Just(Value::Null)),
        (Just("ssn"), equal(), Just(Value::Null)),
    ];
    leaf.prop_map(|(name, op, value)| {
        let column = Column::resolve(&model(), name, FieldAccess::All).expect("column");
        Expr::Cmp(Filter {
            column,
            op,
            values: vec![value],
        })
    })
}

fn tree() -> impl Strategy<Value = Expr> {
    comparison().prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text is a tree or an error whose column lies within the text or just past it.
    #[test]
    fn any_text_parses_or_is_refused_at_a_column(text in noise(), admin in any::<bool>()) {
        let access = if admin { FieldAccess::All } else { FieldAccess::Public };
        match parse(&model(), &text, access, &QueryLimits::default()) {
            Ok(e) => prop_assert!(e.comparisons() >= 1),
            Err(e) => {
                prop_assert!((1..=text.chars().count() + 1).contains(&e.column), "{e}");
                prop_assert!(!e.reason.is_empty());
            }
        }
    }

    /// A tree written out parses back to itself.
    #[test]
    fn printed_trees_parse_back_to_themselves(e in tree()) {
        let text = e.to_string();
        let again = parse(&model(), &text, FieldAccess::All, &QueryLimits::default());
        prop_assert_eq!(again.as_ref(), Ok(&e), "{}", text);
    }
}

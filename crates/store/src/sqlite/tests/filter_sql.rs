//! Property: every list query the parser accepts becomes parameterised SQL. The statement
//! text depends only on the query's shape (columns, operators, how many values), never on
//! the values, which travel only as parameters; and the statement runs on a real SQLite
//! table with its placeholders and parameters lined up. `filter=` expressions included.

use super::super::{ddl, exec::open_conn};
use crate::StoreError;
use crate::sql::list::list;
use crate::sql::{Dialect, Exec, Query, ready};
use plinth_core::cursor::CursorPos;
use plinth_core::query::{Expr, Filter};
use plinth_core::schema::ValueKind;
use plinth_core::{
    Date, Decimal, FieldAccess, ListQuery, ListScope, ModelDef, RecordId, Schema, Timestamp, Value,
};
use proptest::prelude::*;
use rusqlite::{Connection, Row};
use serde_json::json;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Text that would change the statement if it were spliced into it.
const INJECTIONS: [&str; 5] = [
    "' OR 1=1 --",
    "\"; DROP TABLE \"item\"; --",
    "x') UNION SELECT * FROM _plinth_users --",
    "?1 $1 %_\\",
    "') IS NOT NULL OR ('a'='a",
];

fn model() -> Arc<ModelDef> {
    let decl = serde_json::from_value(json!({ "name": "item", "fields": [
        { "name": "tier", "type": "enum", "values": ["free", "pro"], "indexed": true },
        { "name": "qty", "type": "integer", "indexed": true },
        { "name": "score", "type": "float", "indexed": true },
        { "name": "flag", "type": "boolean" },
        { "name": "due", "type": "datetime", "indexed": true },
        { "name": "email", "type": "string", "unique": true, "indexed": true },
        { "name": "note", "type": "text" },
        { "name": "parent", "type": "reference", "model": "item" },
        { "name": "born", "type": "date", "indexed": true },
        { "name": "price", "type": "decimal", "indexed": true },
        { "name": "tags", "type": "array", "items": "string" },
        { "name": "sizes", "type": "array", "items": "integer" },
    ]}))
    .expect("declaration");
    let schema = Schema::from_decls(&[decl]).expect("valid schema");
    Arc::clone(schema.model("item").expect("item"))
}

/// A value's text for a column of this name: well-formed for its type, or not.
fn value_for(name: &'static str) -> BoxedStrategy<String> {
    let typed = typed_for(name);
    prop_oneof![
        4 => typed.clone(),
        1 => prop::collection::vec(typed, 1..4).prop_map(|v| v.join(",")),
        1 => any::<String>(),
    ]
    .boxed()
}

/// A well-formed value's text for a column of this name.
fn typed_for(name: &'static str) -> BoxedStrategy<String> {
    let text = prop_oneof![
        prop::sample::select(INJECTIONS.to_vec()).prop_map(str::to_owned),
        (prop::sample::select(INJECTIONS.to_vec()), any::<String>())
            .prop_map(|(i, s)| format!("{s}{i}")),
    ];
    match name {
        "name" | "email" | "note" | "tags" => text.boxed(),
        "born" => (1_i32..=9999, 1_u8..=12, 1_u8..=28)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
            .boxed(),
        "price" => (any::<i32>(), 0_u8..100)
            .prop_map(|(i, c)| format!("{i}.{c:02}"))
            .boxed(),
        "tier" => prop::sample::select(vec!["free", "pro"])
            .prop_map(str::to_owned)
            .boxed(),
        "status" => prop::sample::select(vec!["active", "inactive", "deleted"])
            .prop_map(str::to_owned)
            .boxed(),
        "qty" | "version" | "sizes" => any::<i64>().prop_map(|i| i.to_string()).boxed(),
        "score" => any::<f64>().prop_map(|f| f.to_string()).boxed(),
        "flag" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "due" | "created_at" | "updated_at" => (-62_135_596_800_i64..253_402_300_799)
            .prop_map(|s| {
                Timestamp::from_micros(s * 1_000_000)
                    .expect("in range")
                    .to_string()
            })
            .boxed(),
        _ => any::<u128>()
            .prop_map(|u| Uuid::from_u128(u).to_string())
            .boxed(),
    }
}

fn filter() -> impl Strategy<Value = (String, String)> {
    let names = vec![
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
        "parent",
        "born",
        "price",
        "tags",
        "sizes",
    ];
    let ops = vec![
        "",
        "[eq]",
        "[ne]",
        "[lt]",
        "[lte]",
        "[gt]",
        "[gte]",
        "[like]",
        "[in]",
        "[has]",
        "[has_any]",
    ];
    (prop::sample::select(names), prop::sample::select(ops))
        .prop_flat_map(|(name, op)| (Just(format!("{name}{op}")), value_for(name)))
}

/// A `filter=` expression of up to four comparisons, each an operator the field's type
/// takes and a value of that type (as a string literal, or `null`), some negated, joined
/// with `&&` and `||`.
fn expression() -> impl Strategy<Value = String> {
    let fields = vec![
        ("name", &["=", "!=", "<", ">=", "~", "!~"][..]),
        ("note", &["=", "!=", "<=", ">", "~", "!~"][..]),
        ("email", &["=", "!=", "~"][..]),
        ("tier", &["=", "!=", "~"][..]),
        ("status", &["=", "!="][..]),
        ("qty", &["=", "!=", "<", "<=", ">", ">="][..]),
        ("version", &["<", ">="][..]),
        ("score", &["=", "<", ">"][..]),
        ("due", &["!=", "<", ">="][..]),
        ("created_at", &["<=", ">"][..]),
        ("flag", &["=", "!="][..]),
        ("id", &["=", "!="][..]),
        ("owner_id", &["=", "!="][..]),
        ("parent", &["=", "!="][..]),
        ("born", &["=", "<", ">="][..]),
        ("price", &["!=", "<=", ">"][..]),
        ("tags", &["?="][..]),
        ("sizes", &["?="][..]),
    ];
    let cmp = prop::sample::select(fields).prop_flat_map(|(name, ops)| {
        let ops = prop::sample::select(ops.to_vec());
        (any::<bool>(), ops, typed_for(name), any::<u8>()).prop_map(move |(not, op, v, n)| {
            let v = if n < 40 && matches!(op, "=" | "!=") {
                "null".to_owned()
            } else {
                format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            };
            format!("{}{name} {op} {v}", if not { "!" } else { "" })
        })
    });
    (
        prop::collection::vec((cmp, prop::sample::select(vec!["&&", "||"])), 1..5),
        any::<bool>(),
    )
        .prop_map(|(parts, not)| {
            let joined: Vec<String> = parts.iter().map(|(c, j)| format!("{c} {j}")).collect();
            let text = joined.join(" ");
            let text = text.trim_end_matches(['&', '|', ' ']);
            if not {
                format!("!({text})")
            } else {
                text.to_owned()
            }
        })
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let sort = prop::sample::select(vec![
        "name",
        "-name",
        "created_at",
        "-updated_at",
        "qty",
        "-qty",
        "score",
        "due",
        "-due",
        "tier",
        "email",
        "born",
        "-price",
    ])
    .prop_map(|s| ("sort".to_owned(), s.to_owned()));
    (
        prop::collection::vec(filter(), 0..5),
        prop::option::of(sort),
        prop::option::of(expression()),
    )
        .prop_map(|(mut pairs, sort, expr)| {
            pairs.extend(sort);
            pairs.extend(expr.map(|e| ("filter".to_owned(), e)));
            pairs
        })
}

/// Stands in for every value of `v`'s kind, so two queries of one shape get equal values.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Text(_) => Value::Text("v".to_owned()),
        Value::Integer(_) => Value::Integer(0),
        Value::Float(_) => Value::Float(0.0),
        Value::Boolean(_) => Value::Boolean(false),
        Value::Datetime(_) => Value::Datetime(Timestamp::from_micros(0).expect("epoch")),
        Value::Json(_) => Value::Json(json!(null)),
        Value::Reference(_) => Value::Reference(RecordId::from_uuid(Uuid::nil())),
        Value::Date(_) => Value::Date(Date::parse("2000-01-01").expect("a date")),
        Value::Decimal(d) => Value::Decimal(Decimal::from_units(0, d.scale()).expect("zero")),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
    }
}

fn canonical_query(q: &ListQuery) -> ListQuery {
    let mut c = q.clone();
    for f in &mut c.filters {
        f.values = f.values.iter().map(canonical).collect();
    }
    fn walk(e: &mut Expr) {
        match e {
            Expr::Cmp(f) => f.values = f.values.iter().map(canonical).collect(),
            Expr::Not(e) => walk(e),
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a);
                walk(b);
            }
        }
    }
    if let Some(e) = &mut c.expr {
        walk(e);
    }
    if let Some(after) = &mut c.after {
        after.value = canonical(&after.value);
        after.id = RecordId::from_uuid(Uuid::nil());
    }
    c
}

/// Runs the real connection's statements, keeping each statement's text and how many
/// parameters it had.
struct Recorded<'c> {
    conn: &'c Connection,
    seen: RefCell<Vec<(String, usize)>>,
}

/// Builds PostgreSQL statements without running them: the text is what is checked.
struct PgText {
    seen: RefCell<Vec<(String, usize)>>,
}

fn keep(seen: &RefCell<Vec<(String, usize)>>, q: &Query<'_>) {
    seen.borrow_mut().push((q.sql.clone(), q.params.len()));
}

impl Exec for Recorded<'_> {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Row<'r> = Row<'r>;
    type Prepared = ();

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        keep(&self.seen, q);
        self.conn.rows(q, f).await
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        keep(&self.seen, q);
        self.conn.row(q, f).await
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        keep(&self.seen, q);
        Exec::execute(self.conn, q).await
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.batch(sql).await
    }

    async fn prepare(&self, _q: &Query<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn execute_prepared(&self, _p: &(), q: &Query<'_>) -> Result<u64, StoreError> {
        Exec::execute(self, q).await
    }

    async fn row_prepared<T>(
        &self,
        _p: &(),
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Exec::row(self, q, f).await
    }
}

impl Exec for PgText {
    const DIALECT: Dialect = Dialect::Postgres;
    type Row<'r> = Row<'r>;
    type Prepared = ();

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        _f: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        keep(&self.seen, q);
        Ok(Vec::new())
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        _f: impl FnOnce(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        keep(&self.seen, q);
        Ok(None)
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        keep(&self.seen, q);
        Ok(0)
    }

    async fn batch(&self, _sql: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn prepare(&self, _q: &Query<'_>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn execute_prepared(&self, _p: &(), q: &Query<'_>) -> Result<u64, StoreError> {
        Exec::execute(self, q).await
    }

    async fn row_prepared<T>(
        &self,
        _p: &(),
        q: &Query<'_>,
        f: impl FnOnce(&Self::Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        Exec::row(self, q, f).await
    }
}

/// The statements (and parameter counts) `query` lists with, on SQLite, run for real (on an
/// empty table, so a page's second statement, where it has one, runs too).
fn sqlite_sql(conn: &Connection, model: &ModelDef, query: &ListQuery) -> Vec<(String, usize)> {
    let rec = Recorded {
        conn,
        seen: RefCell::default(),
    };
    let scope = ListScope::OwnedBy(Uuid::nil());
    ready(list(&rec, &crate::Keys::missing(), model, query, scope)).expect("the statement runs");
    let seen = rec.seen.into_inner();
    assert!(matches!(seen.len(), 1 | 2), "one or two statements a page");
    seen
}

fn postgres_sql(model: &ModelDef, query: &ListQuery) -> Vec<(String, usize)> {
    let pg = PgText {
        seen: RefCell::default(),
    };
    ready(list(
        &pg,
        &crate::Keys::missing(),
        model,
        query,
        ListScope::All,
    ))
    .expect("built");
    let seen = pg.seen.into_inner();
    assert!(matches!(seen.len(), 1 | 2), "one or two statements a page");
    seen
}

/// Placeholders `?1…?n` / `$1…$n` all appear, and none beyond `n`.
fn placeholders_line_up(sql: &str, n: usize, mark: char) -> bool {
    (1..=n).all(|i| sql.contains(&format!("{mark}{i}")))
        && !sql.contains(&format!("{mark}{}", n + 1))
}

fn database() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn =
        open_conn(&dir.path().join("props.db"), Duration::from_secs(5), false).expect("open");
    ddl::init_internal(&conn, &crate::Keys::missing()).expect("internal tables");
    let schema = Schema::from_decls(&[model().decl().clone()]).expect("schema");
    ddl::migrate(&mut conn, &schema, false).expect("migrate");
    (dir, conn)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_accepted_filter_becomes_parameterised_sql(
        pairs in pairs(),
        after in prop::option::of((any::<u128>(), any::<i64>(), any::<bool>())),
    ) {
        thread_local! {
            static DB: (tempfile::TempDir, Connection) = database();
        }
        let model = model();
        let Ok(mut query) = ListQuery::parse(&model, &pairs, FieldAccess::All) else {
            return Ok(());
        };
        // A keyset position of the sort column's kind (or NULL), as a decoded cursor gives.
        if let Some((id, n, null)) = after {
            let value = if null && query.sort.column.nullable() {
                Value::Null
            } else {
                of_kind(query.sort.column.kind(), id, n)
            };
            query.after = Some(CursorPos { value, id: RecordId::from_uuid(Uuid::from_u128(id)) });
        }
        let shape = canonical_query(&query);
        DB.with(|(_, conn)| -> Result<(), TestCaseError> {
            let lite = sqlite_sql(conn, &model, &query);
            let texts = |seen: &[(String, usize)]| seen.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
            prop_assert_eq!(texts(&lite), texts(&sqlite_sql(conn, &model, &shape)));
            for (sql, n) in &lite {
                prop_assert!(placeholders_line_up(sql, *n, '?'), "{sql} with {n} parameters");
            }
            let pgs = postgres_sql(&model, &query);
            prop_assert_eq!(texts(&pgs), texts(&postgres_sql(&model, &shape)));
            for (pg, pn) in &pgs {
                prop_assert!(placeholders_line_up(pg, *pn, '$'), "{pg} with {pn} parameters");
            }
            let sql = texts(&lite).join("; ");
            let pg = texts(&pgs).join("; ");
            let mut texts: Vec<&Filter> = query.filters.iter().collect();
            if let Some(e) = &query.expr {
                leaves(e, &mut texts);
            }
            for f in texts {
                for v in &f.values {
                    if let Value::Text(t) = v
                        && INJECTIONS.iter().any(|i| t.contains(i))
                    {
                        prop_assert!(!sql.contains(t.as_str()), "{t:?} in {sql}");
                        prop_assert!(!pg.contains(t.as_str()), "{t:?} in {pg}");
                    }
                }
            }
            Ok(())
        })?;
    }
}

fn leaves<'e>(e: &'e Expr, out: &mut Vec<&'e Filter>) {
    match e {
        Expr::Cmp(f) => out.push(f),
        Expr::Not(e) => leaves(e, out),
        Expr::And(a, b) | Expr::Or(a, b) => {
            leaves(a, out);
            leaves(b, out);
        }
    }
}

/// A value of storage class `kind` made from two random numbers.
fn of_kind(kind: ValueKind, id: u128, n: i64) -> Value {
    match kind {
        ValueKind::Text => Value::Text(format!("{}{n}", INJECTIONS[n.unsigned_abs() as usize % 5])),
        ValueKind::Integer => Value::Integer(n),
        #[allow(clippy::cast_precision_loss)]
        ValueKind::Float => Value::Float(n as f64),
        ValueKind::Boolean => Value::Boolean(n % 2 == 0),
        ValueKind::Datetime => {
            Value::Datetime(Timestamp::from_micros(n.rem_euclid(1 << 50)).expect("in range"))
        }
        ValueKind::Uuid => Value::Reference(RecordId::from_uuid(Uuid::from_u128(id))),
        ValueKind::Json | ValueKind::Array(_) => Value::Null,
        ValueKind::Date => Value::Date(
            Date::parse(&format!("{:04}-01-01", n.rem_euclid(9999) + 1)).expect("a date"),
        ),
        ValueKind::Decimal(scale) => {
            Value::Decimal(Decimal::from_units(n % 1_000_000, scale).expect("in range"))
        }
    }
}

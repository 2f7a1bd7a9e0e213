//! Shared set-up of the PostgreSQL-only store tests: stores over a fresh database (from
//! `plinth-testkit`), schemas, and queries that look at what the migrations made.

use plinth_core::{Draft, ModelDecl, Principal, Schema, Status, Value};
use plinth_store::{PgOptions, PgStore, Store, StoreError, WriteCtx};
use plinth_testkit::PgDatabase;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Barrier;

/// How many instances start together.
pub(crate) const INSTANCES: usize = 10;

/// The server to test on, or `None` after a visible note that `test` is skipped (a failure
/// instead where skipping is not allowed).
pub(crate) fn server(test: &str) -> Option<String> {
    plinth_testkit::postgres_server(test)
}

/// A fresh, uniquely named database (a `plinth_testkit::PgDatabase`), dropped on `Drop`
/// (also when the test fails).
#[derive(Debug)]
pub(crate) struct Database {
    pub(crate) name: String,
    db: PgDatabase,
}

impl Database {
    pub(crate) async fn create(server: &str) -> Self {
        let db = PgDatabase::create(server).await;
        Self {
            name: db.name().to_owned(),
            db,
        }
    }

    pub(crate) fn url(&self) -> String {
        self.db.url()
    }

    /// A plain connection to the database, to look at what the stores did.
    pub(crate) async fn inspect(&self) -> tokio_postgres::Client {
        self.db.connect().await
    }

    /// `n` independent stores on the database, as `n` Plinth processes would open it.
    pub(crate) async fn stores(&self, n: usize) -> Vec<Arc<PgStore>> {
        let mut out = Vec::new();
        for _ in 0..n {
            let mut options = PgOptions::new(self.url());
            options.pool_size = 2;
            options.keys = crate::contract::test_keys();
            out.push(Arc::new(
                PgStore::open(options)
                    .await
                    .expect("open a PostgreSQL store"),
            ));
        }
        out
    }
}

pub(crate) fn schema(v: serde_json::Value) -> (Vec<ModelDecl>, Schema) {
    let decls: Vec<ModelDecl> = serde_json::from_value(v).expect("valid model declarations");
    let schema = Schema::from_decls(&decls).expect("a valid schema");
    (decls, schema)
}

/// Version 1: a `book` with a required title, a unique ISBN and an indexed page count.
pub(crate) fn v1() -> (Vec<ModelDecl>, Schema) {
    schema(json!([{
        "name": "book",
        "fields": [
            {"name": "title", "type": "string", "required": true},
            {"name": "isbn", "type": "string", "unique": true},
            {"name": "pages", "type": "integer", "indexed": true}
        ]
    }]))
}

/// Version 2: v1 plus a nullable, indexed `subtitle` and a second model, `note`.
pub(crate) fn v2() -> (Vec<ModelDecl>, Schema) {
    schema(json!([
        {
            "name": "book",
            "fields": [
                {"name": "title", "type": "string", "required": true},
                {"name": "isbn", "type": "string", "unique": true},
                {"name": "pages", "type": "integer", "indexed": true},
                {"name": "subtitle", "type": "string", "indexed": true}
            ]
        },
        {"name": "note"}
    ]))
}

pub(crate) fn ctx() -> WriteCtx {
    WriteCtx::new(Principal::local_admin(), "test")
}

/// Every store calls `migrate(schema)` at the same moment; returns their answers in order.
pub(crate) async fn migrate_together(
    stores: &[Arc<PgStore>],
    schema: &Schema,
) -> Vec<Result<Vec<String>, StoreError>> {
    let barrier = Arc::new(Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let (store, schema, barrier) =
                (Arc::clone(store), schema.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.migrate(&schema, false).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("the migration task finishes"));
    }
    out
}

/// Checks that exactly one of the answers applied `expected` and every other one found
/// nothing to do.
pub(crate) fn assert_applied_once(
    results: Vec<Result<Vec<String>, StoreError>>,
    expected: &[&str],
) {
    let steps: Vec<Vec<String>> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("instance {i}: migrate failed: {e:?}")))
        .collect();
    let applied: Vec<&Vec<String>> = steps.iter().filter(|s| !s.is_empty()).collect();
    assert_eq!(applied.len(), 1, "instances that applied steps: {steps:?}");
    assert_eq!(
        applied[0],
        &expected.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    );
}

/// The recorded declarations, in order.
pub(crate) async fn recorded(db: &tokio_postgres::Client) -> Vec<(String, serde_json::Value)> {
    db.query(
        "SELECT name, decl FROM _plinth_models ORDER BY position",
        &[],
    )
    .await
    .expect("read _plinth_models")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

pub(crate) fn expected_rows(decls: &[ModelDecl]) -> Vec<(String, serde_json::Value)> {
    decls
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                serde_json::to_value(d).expect("a declaration serialises"),
            )
        })
        .collect()
}

pub(crate) async fn count(db: &tokio_postgres::Client, sql: &str, params: &[&str]) -> i64 {
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    db.query_one(sql, &params)
        .await
        .expect("count query")
        .get(0)
}

pub(crate) async fn tables_named(db: &tokio_postgres::Client, table: &str) -> i64 {
    count(
        db,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1",
        &[table],
    )
    .await
}

pub(crate) async fn columns_named(db: &tokio_postgres::Client, table: &str, column: &str) -> i64 {
    count(
        db,
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2",
        &[table, column],
    )
    .await
}

pub(crate) async fn index_def(db: &tokio_postgres::Client, index: &str) -> Option<String> {
    db.query_opt(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1",
        &[&index],
    )
    .await
    .expect("read pg_indexes")
    .map(|r| r.get(0))
}

pub(crate) fn book(title: &str, isbn: &str, pages: i64) -> Draft {
    Draft {
        name: title.to_owned(),
        status: Status::Active,
        fields: vec![
            Value::Text(title.to_owned()),
            Value::Text(isbn.to_owned()),
            Value::Integer(pages),
        ],
    }
}

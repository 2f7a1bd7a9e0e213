//! PostgreSQL's planner statistics are refreshed by the store after a bulk write: a table
//! filled faster than autovacuum looks (or where it is off, as on the test servers) is
//! analyzed in the background once a thousand records have been written to it, and so are
//! the audit trail and the change log beside it, so a filtered list and the change feed's
//! poll are planned from the tables as they are.
//!
//! PostgreSQL only: the test prints why it is skipped when `PLINTH_TEST_POSTGRES` is unset.

use crate::pg::{Database, ctx, server};
use plinth_core::{Draft, Schema, Status};
use plinth_store::{BatchOp, Store};
use std::time::{Duration, Instant};

/// The records' table, and the audit trail and change log that grow with it (the change
/// feed's poll is planned on the log).
const TABLES: [&str; 3] = ["resource", "_plinth_audit", "_plinth_changes"];

/// What the catalog says `table` holds: -1 until it is first analyzed.
async fn reltuples(db: &tokio_postgres::Client, table: &str) -> f32 {
    db.query_one(
        "SELECT reltuples FROM pg_class WHERE relname = $1",
        &[&table],
    )
    .await
    .expect("read pg_class")
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_filled_in_bulk_is_analyzed_in_the_background() {
    let Some(server) = server("a_table_filled_in_bulk_is_analyzed_in_the_background") else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(1).await;
    let store = &stores[0];
    let schema = Schema::from_decls(&[]).expect("the default schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = schema.model("resource").expect("resource").clone();
    let db = database.inspect().await;
    for table in TABLES {
        assert!(
            reltuples(&db, table).await < 0.0,
            "{table} was never analyzed"
        );
    }

    let ops = (0..1_200)
        .map(|i| {
            BatchOp::Create(Draft {
                name: format!("r{i}"),
                status: if i % 2 == 0 {
                    Status::Active
                } else {
                    Status::Inactive
                },
                fields: Vec::new(),
            })
        })
        .collect();
    store
        .batch(&ctx(), &model, ops, None)
        .await
        .expect("the batch");

    let since = Instant::now();
    for table in TABLES {
        loop {
            let rows = reltuples(&db, table).await;
            if rows >= 1_200.0 {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "{table} was not analyzed after 1,200 records (reltuples {rows})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let active: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'resource' AND attname = 'status'",
            &[],
        )
        .await
        .expect("read pg_stats")
        .get(0);
    assert_eq!(active, 1, "the status column has statistics");
}

//! PostgreSQL's planner statistics are refreshed by the store after a bulk write: a table
//! filled faster than autovacuum looks (or where it is off, as on the test servers) is
//! analyzed in the background once a thousand records have been written to it, then each
//! time it doubles, and so are the audit trail and the change log beside it, so a filtered
//! list and the change feed's poll are planned from the tables as they are.
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

    store
        .batch(&ctx(), &model, creates(0..1_200), None)
        .await
        .expect("the batch");
    settled(&db, 1_200.0).await;

    // The next analysis waits until the table has doubled: 1,100 more records run none…
    store
        .batch(&ctx(), &model, creates(1_200..2_300), None)
        .await
        .expect("the second batch");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for table in TABLES {
        let rows = reltuples(&db, table).await;
        assert!(
            (1_200.0..2_300.0).contains(&rows),
            "{table} was analyzed again before it doubled (reltuples {rows})"
        );
    }
    // … and 100 more (2,400 in all, twice the 1,200 analyzed) one.
    store
        .batch(&ctx(), &model, creates(2_300..2_400), None)
        .await
        .expect("the third batch");
    settled(&db, 2_400.0).await;

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

/// Creates of records numbered `range`, alternately active and inactive.
fn creates(range: std::ops::Range<u32>) -> Vec<BatchOp> {
    range
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
        .collect()
}

/// Waits until every table of [`TABLES`] was analyzed holding at least `rows` rows.
async fn settled(db: &tokio_postgres::Client, rows: f32) {
    let since = Instant::now();
    for table in TABLES {
        loop {
            let now = reltuples(db, table).await;
            if now >= rows {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "{table} was not analyzed at {rows} records (reltuples {now})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

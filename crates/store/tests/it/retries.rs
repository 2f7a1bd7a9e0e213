//! PostgreSQL retries a write that lost a race, a bounded number of times: a create whose
//! every attempt fails with a serialization failure gives up with `Contention` after exactly
//! four attempts, quickly.
//!
//! PostgreSQL only: the test prints why it is skipped when `PLINTH_TEST_POSTGRES` is unset.

use crate::pg::{Database, ctx, server};
use plinth_core::{Draft, Schema, Status};
use plinth_store::{Store, StoreError};
use std::time::{Duration, Instant};

/// How many times the store tries a write transaction; part of the store's contract.
const ATTEMPTS: i64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_always_loses_a_race_gives_up_after_exactly_four_attempts() {
    let Some(server) =
        server("a_write_that_always_loses_a_race_gives_up_after_exactly_four_attempts")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(1).await;
    let store = &stores[0];
    let schema = Schema::from_decls(&[]).expect("the default schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = schema.model("resource").expect("resource").clone();

    // Every insert into `resource` counts itself on a sequence (which no rollback undoes)
    // and then fails as a lost serialization race would.
    let db = database.inspect().await;
    db.batch_execute(
        "CREATE SEQUENCE attempts;
         CREATE FUNCTION lose_the_race() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM nextval('attempts');
             RAISE EXCEPTION 'planted serialization failure' USING ERRCODE = '40001';
         END $$;
         CREATE TRIGGER lose_the_race BEFORE INSERT ON resource
             FOR EACH ROW EXECUTE FUNCTION lose_the_race();",
    )
    .await
    .expect("install the failing trigger");

    let draft = Draft {
        name: "never stored".to_owned(),
        status: Status::Active,
        fields: Vec::new(),
    };
    let since = Instant::now();
    let result = store.create(&ctx(), &model, draft, None).await;
    let took = since.elapsed();
    match result {
        Err(StoreError::Contention(why)) => {
            assert!(why.contains("planted serialization failure"), "{why}");
        }
        other => panic!("a write that always loses must give up with Contention: {other:?}"),
    }
    let attempts: i64 = db
        .query_one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts",
            &[],
        )
        .await
        .expect("read the sequence")
        .get(0);
    assert_eq!(attempts, ATTEMPTS, "attempts made before giving up");
    // The back-off between attempts is a few milliseconds each: giving up is quick.
    assert!(
        took < Duration::from_secs(5),
        "giving up took {took:?}: the retries are not bounded in time"
    );
    let stored: i64 = db
        .query_one("SELECT count(*) FROM resource", &[])
        .await
        .expect("count the records")
        .get(0);
    assert_eq!(stored, 0, "nothing was stored");
}

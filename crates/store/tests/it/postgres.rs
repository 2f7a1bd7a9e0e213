//! The PostgreSQL engine against a real server: migrations are serialised across instances
//! (ten stores migrating one database at once migrate it once), destructive changes are
//! refused unless allowed, as on SQLite, ten opening a fresh one apply each version of
//! Plinth's own tables once, writes that lose a serialization race are retried,
//! the statement timeout bounds a write stuck behind a lock, a full disk (SQLSTATE 53100)
//! is `Unavailable`, and instances sweep one database at once.
//!
//! PostgreSQL only (what every engine must do is in `contract`): without
//! `PLINTH_TEST_POSTGRES`, each test prints a `SKIPPED` line, or fails where skipping is not
//! allowed (`PLINTH_REQUIRE_POSTGRES=1`, `CI=true`).

use crate::pg::*;
use plinth_core::{Draft, ModelDecl, Patch, Schema, Status, Value};
use plinth_store::{AccountStore, IdempotencyClaim, PgOptions, PgStore, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_instances_starting_together_on_a_fresh_database_migrate_once() {
    let Some(server) = server("ten_instances_starting_together_on_a_fresh_database_migrate_once")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(INSTANCES).await;
    let (decls, schema) = v1();

    let results = migrate_together(&stores, &schema).await;
    assert_applied_once(results, &["create model book"]);

    let db = database.inspect().await;
    assert_eq!(tables_named(&db, "book").await, 1);
    for internal in ["_plinth_models", "_plinth_idempotency", "_plinth_users"] {
        assert_eq!(tables_named(&db, internal).await, 1, "{internal}");
    }
    assert_eq!(recorded(&db).await, expected_rows(&decls));
    for column in [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "owner_id",
        "version",
    ] {
        assert_eq!(columns_named(&db, "book", column).await, 1, "{column}");
    }
    let unique = index_def(&db, "book__isbn").await.expect("the isbn index");
    assert!(unique.starts_with("CREATE UNIQUE INDEX"), "{unique}");
    assert!(index_def(&db, "book__pages").await.is_some());
    assert!(index_def(&db, "book__status_created").await.is_some());
    assert!(index_def(&db, "book__owner").await.is_some());

    // Every instance now serves the model: a write through one is read through another.
    let model = schema.model("book").expect("book").clone();
    let created = stores[3]
        .create(&ctx(), &model, book("Dune", "978-0441013593", 412), None)
        .await
        .expect("create through instance 3");
    let read = stores[7]
        .get(&model, created.record.id)
        .await
        .expect("read through instance 7")
        .expect("the record exists");
    assert_eq!(read, created.record);
    // The unique index holds across instances.
    let clash = stores[5]
        .create(
            &ctx(),
            &model,
            book("Dune again", "978-0441013593", 1),
            None,
        )
        .await
        .expect_err("a second record with the same ISBN");
    assert!(
        matches!(&clash, StoreError::Conflict { field: Some(f), .. } if f == "isbn"),
        "{clash:?}"
    );

    // Starting again later finds nothing to do, on every instance.
    for (i, store) in stores.iter().enumerate() {
        let steps = store.migrate(&schema, false).await.expect("migrate again");
        assert!(steps.is_empty(), "instance {i}: {steps:?}");
    }
    assert_eq!(recorded(&db).await, expected_rows(&decls));
}

/// Opening applies the versions of Plinth's own tables under the migration lock: ten
/// instances opening a fresh database at the same moment all start, and each version is
/// applied and recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_instances_opening_a_fresh_database_apply_each_version_once() {
    let Some(server) = server("ten_instances_opening_a_fresh_database_apply_each_version_once")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let opening: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let mut options = PgOptions::new(database.url());
            options.pool_size = 2;
            tokio::spawn(PgStore::open(options))
        })
        .collect();
    let mut stores = Vec::new();
    for open in opening {
        stores.push(open.await.expect("join").expect("every instance opens"));
    }
    let db = database.inspect().await;
    let rows = db
        .query(
            "SELECT version, applied_at FROM _plinth_schema_versions ORDER BY version",
            &[],
        )
        .await
        .expect("the recorded versions");
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    for store in &stores {
        let status = store.schema_status().await.expect("status");
        let known: Vec<i64> = status
            .versions
            .iter()
            .filter(|v| v.known)
            .map(|v| i64::from(v.number))
            .collect();
        assert_eq!(versions, known);
        assert_eq!(status.database(), Some(plinth_store::versions::LATEST));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_instances_apply_an_additive_change_once() {
    let Some(server) = server("ten_instances_apply_an_additive_change_once") else {
        return;
    };
    let database = Database::create(&server).await;
    let (_, first) = v1();
    let earlier = &database.stores(1).await[0];
    earlier.migrate(&first, false).await.expect("migrate to v1");
    let model = first.model("book").expect("book").clone();
    let old = earlier
        .create(&ctx(), &model, book("Emma", "978-0141439587", 474), None)
        .await
        .expect("a record before the change")
        .record;

    let stores = database.stores(INSTANCES).await;
    let (decls, second) = v2();
    let results = migrate_together(&stores, &second).await;
    assert_applied_once(results, &["add field book.subtitle", "create model note"]);

    let db = database.inspect().await;
    assert_eq!(columns_named(&db, "book", "subtitle").await, 1);
    assert_eq!(tables_named(&db, "book").await, 1);
    assert_eq!(tables_named(&db, "note").await, 1);
    assert!(index_def(&db, "book__subtitle").await.is_some());
    assert_eq!(recorded(&db).await, expected_rows(&decls));

    // The record made before the change is intact, with no subtitle, through any instance.
    let model = second.model("book").expect("book").clone();
    let read = stores[9]
        .get(&model, old.id)
        .await
        .expect("read")
        .expect("the old record exists");
    assert_eq!(read.version, 1);
    assert_eq!(read.name, "Emma");
    assert_eq!(read.fields.len(), 4);
    assert_eq!(read.fields[..3], old.fields[..]);
    assert_eq!(read.fields[3], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destructive_change_is_refused_unless_allowed() {
    let Some(server) = server("a_destructive_change_is_refused_unless_allowed") else {
        return;
    };
    let database = Database::create(&server).await;
    let stores = database.stores(2).await;
    let (decls, full) = v2();
    stores[0]
        .migrate(&full, false)
        .await
        .expect("migrate to v2");
    let book_model = full.model("book").expect("book").clone();
    let mut draft = book("Persuasion", "978-0141439686", 249);
    draft.fields.push(Value::Text("a novel".to_owned()));
    let kept = stores[0]
        .create(&ctx(), &book_model, draft, None)
        .await
        .expect("a record with a subtitle")
        .record;
    let db = database.inspect().await;

    // Dropping a field, and dropping a model, are each refused, from either instance.
    let (_, without_field) = schema(json!([
        {
            "name": "book",
            "fields": [
                {"name": "title", "type": "string", "required": true},
                {"name": "isbn", "type": "string", "unique": true},
                {"name": "pages", "type": "integer", "indexed": true}
            ]
        },
        {"name": "note"}
    ]));
    let (_, without_model) = v2_without_note();
    for (store, target, names) in [
        (&stores[0], &without_field, "drop field book.subtitle"),
        (&stores[1], &without_model, "drop model note"),
    ] {
        let err = store
            .migrate(target, false)
            .await
            .expect_err("a destructive change without allow_destructive");
        match &err {
            StoreError::Migration(msg) => assert!(msg.contains(names), "{msg}"),
            other => panic!("expected a migration error, got {other:?}"),
        }
        let plan = store.plan(target).await.expect("plan");
        assert!(plan.steps.iter().any(|s| s.is_destructive()));
    }
    // Nothing changed: the column, the table, the recorded schema and the data are there.
    assert_eq!(columns_named(&db, "book", "subtitle").await, 1);
    assert_eq!(tables_named(&db, "note").await, 1);
    assert_eq!(recorded(&db).await, expected_rows(&decls));
    let read = stores[1]
        .get(&book_model, kept.id)
        .await
        .expect("read")
        .expect("the record exists");
    assert_eq!(read, kept);

    // Allowed, it is applied.
    let steps = stores[1]
        .migrate(&without_field, true)
        .await
        .expect("the destructive change, allowed");
    assert_eq!(steps, ["drop field book.subtitle and its values"]);
    assert_eq!(columns_named(&db, "book", "subtitle").await, 0);
    assert!(index_def(&db, "book__subtitle").await.is_none());
    assert_eq!(tables_named(&db, "note").await, 1);
}

/// v2 without the `note` model.
fn v2_without_note() -> (Vec<ModelDecl>, Schema) {
    schema(json!([{
        "name": "book",
        "fields": [
            {"name": "title", "type": "string", "required": true},
            {"name": "isbn", "type": "string", "unique": true},
            {"name": "pages", "type": "integer", "indexed": true},
            {"name": "subtitle", "type": "string", "indexed": true}
        ]
    }]))
}

/// A `resource` record made through `store` on a freshly migrated default schema.
async fn one_resource(store: &PgStore, schema: &Schema) -> plinth_core::Record {
    let model = schema.model("resource").expect("resource").clone();
    store
        .create(
            &ctx(),
            &model,
            Draft {
                name: "contested".to_owned(),
                status: Status::Active,
                fields: Vec::new(),
            },
            None,
        )
        .await
        .expect("create a record")
        .record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_that_lose_a_serialization_race_are_retried_a_bounded_number_of_times() {
    let Some(server) =
        server("writes_that_lose_a_serialization_race_are_retried_a_bounded_number_of_times")
    else {
        return;
    };
    let database = Database::create(&server).await;
    // Every transaction is SERIALIZABLE: a write that waited on a row another transaction
    // then changed fails with SQLSTATE 40001 instead of proceeding, and must be retried.
    database
        .inspect()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_isolation TO 'serializable'",
            database.name
        ))
        .await
        .expect("make transactions serializable");
    let observer = database.inspect().await;
    let isolation: String = observer
        .query_one("SHOW default_transaction_isolation", &[])
        .await
        .expect("read the isolation level")
        .get(0);
    assert_eq!(isolation, "serializable");
    // A store of its own per writer: a store's second change of one record waits for its
    // next batch, behind the first in the store rather than on the row in the database.
    let writers = 8;
    let stores = database.stores(writers).await;
    let schema = Schema::from_decls(&[]).expect("the default schema");
    stores[0].migrate(&schema, false).await.expect("migrate");
    let record = one_resource(&stores[0], &schema).await;
    let model = schema.model("resource").expect("resource").clone();

    // Another client holds the row, so every writer's first attempt waits on it…
    let other = database.inspect().await;
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM resource WHERE id = '{}' FOR UPDATE",
            record.id.as_uuid()
        ))
        .await
        .expect("lock the row");
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let (store, model) = (Arc::clone(&stores[i % stores.len()]), model.clone());
            tokio::spawn(async move {
                let patch = Patch {
                    name: Some(format!("writer {i}")),
                    ..Patch::default()
                };
                store.update(&ctx(), &model, record.id, patch, None).await
            })
        })
        .collect();
    let since = Instant::now();
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&database.name],
            )
            .await
            .expect("read pg_stat_activity")
            .get(0);
        if waiting == i64::try_from(writers).expect("small") {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "only {waiting} of {writers} writers wait on the row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …and then fails with a serialization error, because the row changed under it.
    other
        .batch_execute(&format!(
            "UPDATE resource SET name = 'other client', version = version + 1 WHERE id = '{}'; COMMIT",
            record.id.as_uuid()
        ))
        .await
        .expect("change the row and commit");

    let mut versions = Vec::new();
    let mut gave_up = 0;
    for t in tasks {
        match t.await.expect("the writer finishes") {
            Ok(r) => versions.push(r.version),
            // Retries are bounded: a writer that keeps losing gives up with a retryable
            // error (503 over HTTP), never an internal one.
            Err(StoreError::Contention(_)) => gave_up += 1,
            Err(other) => panic!("a losing writer must be retried or told to retry: {other:?}"),
        }
    }
    // Every first attempt failed; only retries can have succeeded.
    assert!(
        !versions.is_empty(),
        "no writer succeeded after its first attempt lost: nothing was retried"
    );
    assert_eq!(versions.len() + gave_up, writers);
    versions.sort_unstable();
    let expected: Vec<i64> = (3..).take(versions.len()).collect();
    assert_eq!(
        versions, expected,
        "each successful write bumped the version once"
    );
    let now = stores[1]
        .get(&model, record.id)
        .await
        .expect("read")
        .expect("the record exists");
    assert_eq!(
        now.version,
        2 + i64::try_from(versions.len()).expect("small")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_statement_timeout_ends_a_write_stuck_behind_a_lock_as_unavailable() {
    let Some(server) =
        server("the_statement_timeout_ends_a_write_stuck_behind_a_lock_as_unavailable")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let mut options = PgOptions::new(database.url());
    options.statement_timeout = Duration::from_millis(300);
    options.keys = crate::contract::test_keys();
    let store = PgStore::open(options).await.expect("open the store");
    let schema = Schema::from_decls(&[]).expect("the default schema");
    store.migrate(&schema, false).await.expect("migrate");
    let record = one_resource(&store, &schema).await;
    let model = schema.model("resource").expect("resource").clone();

    // Another client holds the row lock in an open transaction.
    let other = database.inspect().await;
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM resource WHERE id = '{}' FOR UPDATE",
            record.id.as_uuid()
        ))
        .await
        .expect("lock the row");
    let started = Instant::now();
    let patch = Patch {
        name: Some("blocked".to_owned()),
        ..Patch::default()
    };
    let err = store
        .update(&ctx(), &model, record.id, patch, None)
        .await
        .expect_err("the write cannot take the lock");
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    assert_eq!(err.code(), plinth_core::ErrorCode::Unavailable);
    assert!(
        took < Duration::from_secs(3),
        "the blocked write took {took:?}"
    );
    other.batch_execute("ROLLBACK").await.expect("unlock");

    // Nothing was half-written, and writes resume once the lock is gone.
    let now = store
        .get(&model, record.id)
        .await
        .expect("read")
        .expect("the record exists");
    assert_eq!((now.name.as_str(), now.version), ("contested", 1));
    let patch = Patch {
        name: Some("after".to_owned()),
        ..Patch::default()
    };
    let after = store
        .update(&ctx(), &model, record.id, patch, Some(1))
        .await
        .expect("the write after the lock is released");
    assert_eq!(after.version, 2);
}

/// The server's "disk full" (SQLSTATE 53100, raised here by a trigger, as the shared server's
/// disk cannot be filled) is `Unavailable` saying so, the write leaves nothing, and writes
/// go on once the cause is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_unavailable_and_leaves_nothing_behind() {
    let Some(server) = server("a_full_disk_is_unavailable_and_leaves_nothing_behind") else {
        return;
    };
    let database = Database::create(&server).await;
    let mut options = PgOptions::new(database.url());
    options.keys = crate::contract::test_keys();
    let store = PgStore::open(options).await.expect("open the store");
    let schema = Schema::from_decls(&[]).expect("the default schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = schema.model("resource").expect("resource").clone();
    let other = database.inspect().await;
    other
        .batch_execute(
            "CREATE FUNCTION no_space() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'could not extend file: No space left on device' \
             USING ERRCODE = 'disk_full'; END $$; \
             CREATE TRIGGER no_space BEFORE INSERT ON resource \
             FOR EACH ROW EXECUTE FUNCTION no_space()",
        )
        .await
        .expect("install the trigger");
    // The key is claimed by the failed write's transaction, so it is released with it.
    let claim = || {
        Some(IdempotencyClaim {
            key: "full-1".to_owned(),
            body_digest: "digest".to_owned(),
        })
    };
    let draft = || Draft {
        name: "on a full disk".to_owned(),
        status: Status::Active,
        fields: Vec::new(),
    };
    let err = store
        .create(&ctx(), &model, draft(), claim())
        .await
        .expect_err("no space");
    assert!(
        matches!(&err, StoreError::Unavailable(why) if why.starts_with("the disk is full")),
        "got {err:?}"
    );
    assert_eq!(err.code(), plinth_core::ErrorCode::Unavailable);
    let rows = other
        .query("SELECT count(*) FROM resource", &[])
        .await
        .expect("count");
    assert_eq!(rows[0].get::<_, i64>(0), 0, "nothing half-written");

    other
        .batch_execute("DROP TRIGGER no_space ON resource")
        .await
        .expect("free the space");
    let created = store
        .create(&ctx(), &model, draft(), claim())
        .await
        .expect("the write once space is back");
    assert_eq!(created.record.version, 1);
    assert!(!created.replayed, "the failed write claimed no key");
}

/// Several instances sweeping one PostgreSQL database at once: no errors, no waiting on each
/// other's rows, and every dead row deleted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sweep_one_postgres_database_at_once() {
    let Some(server) = server("instances_sweep_one_postgres_database_at_once") else {
        return;
    };
    let db = Database::create(&server).await;
    let stores = db.stores(4).await;
    let user = uuid::Uuid::now_v7();
    for i in 0..200 {
        stores[0]
            .insert_refresh(
                &ctx(),
                user,
                uuid::Uuid::now_v7(),
                &format!("dead-{i}"),
                at(-60),
                at(-120),
            )
            .await
            .expect("insert");
    }
    stores[0]
        .insert_refresh(&ctx(), user, uuid::Uuid::now_v7(), "live", at(3600), at(0))
        .await
        .expect("insert");
    let sweeps = stores.iter().map(|store| {
        let store = std::sync::Arc::clone(store);
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                let n = store
                    .sweep_refresh(at(-7200), 7)
                    .await
                    .expect("a concurrent sweep fails");
                total += n;
                if n < 7 {
                    return total;
                }
            }
        })
    });
    let mut total = 0;
    for sweep in sweeps {
        total += sweep.await.expect("the sweep task");
    }
    // Each stops at its first short batch (rows another holds are skipped), so a last
    // pass finds whatever is left.
    total += stores[0]
        .sweep_refresh(at(-7200), 1000)
        .await
        .expect("sweep");
    assert_eq!(total, 200, "each dead row deleted once");
    assert_eq!(
        stores[0]
            .rotate_refresh(&ctx(), "live", "next", at(3600), at(-7200))
            .await
            .expect("rotate"),
        plinth_store::Refresh::Rotated { user_id: user }
    );
}

fn at(offset_secs: i64) -> plinth_core::Timestamp {
    let by = Duration::from_secs(offset_secs.unsigned_abs());
    let now = std::time::SystemTime::now();
    plinth_core::Timestamp::from_system(if offset_secs >= 0 { now + by } else { now - by })
}

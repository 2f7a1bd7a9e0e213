//! The group commit's transactions on PostgreSQL. Each is begun and ended by hand, so that
//! `BEGIN` travels with the first statements and `COMMIT` with the audit entries: when an
//! entry is refused, the `COMMIT` sent behind it rolls the record back, and nothing is left
//! (no record, no entry, no change), on a fresh store's first writes (their statements not
//! yet prepared on the connection) as on later ones, for a lone create and for a burst;
//! an entry that cannot even be sent ends its batch with `ROLLBACK`. Batches wanting the
//! same unique values never stall on each other, and an instance runs one batch at a
//! time. And a batch of several creates inserts its records in few statements, each
//! record whole; a lone create costs two round trips.

use crate::pg::{Database, ctx, server};
use plinth_core::{Draft, Patch, Schema, Status};
use plinth_store::{AuditVerdict, IdempotencyClaim, PgOptions, PgStore, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio_postgres::config::Host;

/// A store on `database` with `schema` migrated; its statements cancelled after `timeout`
/// when given.
async fn store_on(database: &Database, schema: &Schema, timeout: Option<Duration>) -> Arc<PgStore> {
    let mut options = PgOptions::new(database.url());
    options.keys = crate::contract::test_keys();
    if let Some(timeout) = timeout {
        options.statement_timeout = timeout;
    }
    let store = Arc::new(PgStore::open(options).await.expect("open the store"));
    store.migrate(schema, false).await.expect("migrate");
    store
}

/// A store on `database` with the default schema, its `resource` model, and a connection
/// to look at the database with.
async fn resource_on(
    database: &Database,
) -> (
    Arc<PgStore>,
    Arc<plinth_core::ModelDef>,
    tokio_postgres::Client,
) {
    let schema = Schema::from_decls(&[]).expect("the default schema");
    let store = store_on(database, &schema, None).await;
    let model = Arc::clone(schema.model("resource").expect("resource"));
    (store, model, database.inspect().await)
}

async fn rows(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.expect("count").get(0)
}

/// The records, audit entries and logged changes of `resource`.
async fn left_behind(db: &tokio_postgres::Client) -> (i64, i64, i64) {
    (
        rows(db, "SELECT count(*) FROM resource").await,
        rows(
            db,
            "SELECT count(*) FROM _plinth_audit WHERE model = 'resource'",
        )
        .await,
        rows(
            db,
            "SELECT count(*) FROM _plinth_changes WHERE model = 'resource'",
        )
        .await,
    )
}

fn draft(name: &str) -> Draft {
    Draft {
        name: name.to_owned(),
        status: Status::Active,
        fields: Vec::new(),
    }
}

/// `n` creates at once; how many succeeded.
async fn burst(store: &Arc<PgStore>, model: &Arc<plinth_core::ModelDef>, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, model) = (Arc::clone(store), Arc::clone(model));
            tokio::spawn(async move {
                store
                    .create(&ctx(), &model, draft(&format!("r{i}")), None)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.expect("a create task").is_ok());
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_audit_entry_rolls_its_batch_back_at_the_commit_sent_behind_it() {
    let Some(server) =
        server("a_refused_audit_entry_rolls_its_batch_back_at_the_commit_sent_behind_it")
    else {
        return;
    };
    let database = Database::create(&server).await;
    let (store, model, db) = resource_on(&database).await;
    let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON _plinth_audit FOR EACH ROW \
                  WHEN (NEW.model = 'resource') EXECUTE FUNCTION refuse()";
    db.batch_execute(&format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         RAISE EXCEPTION 'no entries today'; END $$; {refuse}"
    ))
    .await
    .expect("install the trigger");

    // The first writes on every connection: nothing prepared there yet.
    store
        .create(&ctx(), &model, draft("alone"), None)
        .await
        .expect_err("a create whose entry is refused");
    assert_eq!(burst(&store, &model, 40).await, 0, "every create refused");
    assert_eq!(left_behind(&db).await, (0, 0, 0), "nothing half-written");

    // Once the statements are prepared on the connections, the same.
    db.batch_execute("DROP TRIGGER refuse ON _plinth_audit")
        .await
        .expect("drop");
    assert_eq!(
        burst(&store, &model, 40).await,
        40,
        "every create committed"
    );
    db.batch_execute(refuse)
        .await
        .expect("reinstall the trigger");
    store
        .create(&ctx(), &model, draft("alone again"), None)
        .await
        .expect_err("a create whose entry is refused");
    assert_eq!(burst(&store, &model, 40).await, 0, "every create refused");
    assert_eq!(
        left_behind(&db).await,
        (40, 40, 40),
        "only the committed ones"
    );

    // And the store writes on, its chain whole.
    db.batch_execute("DROP TRIGGER refuse ON _plinth_audit")
        .await
        .expect("drop");
    assert_eq!(burst(&store, &model, 10).await, 10);
    assert_eq!(left_behind(&db).await, (50, 50, 50));
    assert!(matches!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

/// Creates that want the same unique values, sent at once round after round, so that
/// batches follow each other with a value in each: every value is taken once and every
/// other create is refused as a conflict, none waiting out the statement timeout (2 s
/// here) on a row another batch of the instance holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_wanting_the_same_values_never_stall() {
    let Some(server) = server("creates_wanting_the_same_values_never_stall") else {
        return;
    };
    const ROUNDS: usize = 15;
    const CREATES: usize = 48;
    const VALUES: usize = 12;
    let database = Database::create(&server).await;
    let schema = crate::contract::schema(serde_json::json!([{"name": "book", "fields": [
        {"name": "sku", "type": "string", "unique": true}
    ]}]));
    let store = store_on(&database, &schema, Some(Duration::from_secs(2))).await;
    let book = crate::contract::model(&schema, "book");
    for round in 0..ROUNDS {
        let tasks: Vec<_> = (0..CREATES)
            .map(|i| {
                let (store, book) = (Arc::clone(&store), Arc::clone(&book));
                let body =
                    serde_json::json!({"name": "b", "sku": format!("R{round}-{}", i % VALUES)});
                tokio::spawn(async move {
                    let d = crate::contract::draft(&book, &body);
                    store.create(&ctx(), &book, d, None).await
                })
            })
            .collect();
        let mut made = 0;
        for t in tasks {
            match t.await.expect("a create task") {
                Ok(_) => made += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("round {round}: a create failed otherwise than a conflict: {e:?}"),
            }
        }
        assert_eq!(made, VALUES, "round {round}: each value taken once");
    }
    assert!(matches!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

/// The other sessions on `database` now (not `db`'s own) that match `condition`.
async fn sessions(db: &tokio_postgres::Client, database: &Database, condition: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
         AND pid <> pg_backend_pid() AND {condition}",
        database.name
    );
    rows(db, &sql).await
}

/// An instance runs one batch at a time: while its batch, holding the audit chain's lock,
/// waits to append its entry (the table locked from outside), the creates sent after it
/// wait in the queue rather than open a second transaction, and go in the next batch once
/// the first committed. Two batches at once made smaller batches, the second writing its
/// records, then waiting for the first's `COMMIT` to ask for the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_runs_one_batch_at_a_time() {
    let Some(server) = server("an_instance_runs_one_batch_at_a_time") else {
        return;
    };
    let database = Database::create(&server).await;
    let (store, model, db) = resource_on(&database).await;
    let outside = database.inspect().await;
    outside
        .batch_execute("BEGIN; LOCK TABLE _plinth_audit IN SHARE MODE")
        .await
        .expect("lock the audit trail");
    let first = {
        let (store, model) = (Arc::clone(&store), Arc::clone(&model));
        tokio::spawn(async move { store.create(&ctx(), &model, draft("first"), None).await })
    };
    let waiting = "wait_event = 'relation'";
    for _ in 0..500 {
        if sessions(&db, &database, waiting).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let appending = sessions(&db, &database, waiting).await;
    assert_eq!(appending, 1, "the first batch waits to append");
    let later = {
        let (store, model) = (Arc::clone(&store), Arc::clone(&model));
        tokio::spawn(async move { burst(&store, &model, 8).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The outside session's transaction, and the first batch's.
    let open = sessions(&db, &database, "xact_start IS NOT NULL").await;
    assert_eq!(open, 2, "no second batch has a transaction open");
    outside.batch_execute("ROLLBACK").await.expect("unlock");
    first.await.expect("the first create").expect("created");
    assert_eq!(later.await.expect("the later creates"), 8);
    assert_eq!(left_behind(&db).await, (9, 9, 9));
    assert!(matches!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

/// An audit entry that cannot even be sent (its value does not fit the column: the
/// driver refuses it before it leaves) ends its batch with `ROLLBACK`, not the `COMMIT`
/// that would otherwise follow it: the record is not kept without its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_cannot_be_sent_rolls_its_batch_back() {
    let Some(server) = server("an_entry_that_cannot_be_sent_rolls_its_batch_back") else {
        return;
    };
    let database = Database::create(&server).await;
    let (store, model, db) = resource_on(&database).await;
    db.batch_execute("ALTER TABLE _plinth_audit ALTER COLUMN actor_label TYPE integer USING 0")
        .await
        .expect("a column the entry's label cannot be sent to");
    store
        .create(&ctx(), &model, draft("alone"), None)
        .await
        .expect_err("a create whose entry cannot be sent");
    assert_eq!(burst(&store, &model, 20).await, 0, "every create refused");
    assert_eq!(left_behind(&db).await, (0, 0, 0), "nothing half-written");
}

/// A batch of several creates inserts its records once every job has run, a model's in
/// few statements: each inserts a power of two of them, up to 64 (one each before). The
/// records of two models in the same burst go to their own tables, whole: their values,
/// their pii fields sealed and found through their blind index, one audit entry each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_inserts_its_records_in_few_statements() {
    let Some(server) = server("a_batch_inserts_its_records_in_few_statements") else {
        return;
    };
    const CREATES: usize = 120;
    let database = Database::create(&server).await;
    let schema = crate::contract::schema(serde_json::json!([
        {"name": "person", "fields": [
            {"name": "ssn", "type": "string", "pii": true, "unique": true},
            {"name": "nick", "type": "string"}
        ]},
        {"name": "book", "fields": [{"name": "sku", "type": "string", "unique": true}]}
    ]));
    let store = store_on(&database, &schema, None).await;
    let (person, book) = (
        crate::contract::model(&schema, "person"),
        crate::contract::model(&schema, "book"),
    );
    let db = database.inspect().await;
    db.batch_execute(
        "CREATE TABLE inserted (model text, n bigint); \
         CREATE FUNCTION count_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         INSERT INTO inserted SELECT TG_TABLE_NAME, count(*) FROM new; RETURN NULL; END $$; \
         CREATE TRIGGER counted AFTER INSERT ON person REFERENCING NEW TABLE AS new \
         FOR EACH STATEMENT EXECUTE FUNCTION count_rows(); \
         CREATE TRIGGER counted AFTER INSERT ON book REFERENCING NEW TABLE AS new \
         FOR EACH STATEMENT EXECUTE FUNCTION count_rows()",
    )
    .await
    .expect("count each insert statement's rows");

    let tasks: Vec<_> = (0..CREATES)
        .map(|i| {
            let store = Arc::clone(&store);
            let (model, body) = if i % 2 == 0 {
                let body = serde_json::json!({"name": format!("p{i}"), "ssn": format!("{i:03}"), "nick": format!("n{i}")});
                (Arc::clone(&person), body)
            } else {
                (Arc::clone(&book), serde_json::json!({"name": format!("b{i}"), "sku": format!("S{i}")}))
            };
            tokio::spawn(async move {
                let d = crate::contract::draft(&model, &body);
                store.create(&ctx(), &model, d, None).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a create task").expect("a create");
    }

    let statements: Vec<(String, i64)> = db
        .query("SELECT model, n FROM inserted", &[])
        .await
        .expect("the statements")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for model in ["person", "book"] {
        let rows: i64 = statements
            .iter()
            .filter(|(m, _)| m == model)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(rows, (CREATES / 2) as i64, "every {model} inserted once");
    }
    assert!(
        statements
            .iter()
            .all(|(_, n)| n.count_ones() == 1 && *n <= 64),
        "runs of a power of two, up to 64: {statements:?}"
    );
    assert!(
        statements.iter().any(|(_, n)| *n > 1),
        "a batch's records inserted together: {statements:?}"
    );

    for i in (0..CREATES).step_by(2) {
        let ssn = format!("{i:03}");
        let q = crate::contract::query(&person, &[("ssn", ssn.as_str())]);
        let found = store
            .list(&person, &q, plinth_core::ListScope::All)
            .await
            .expect("list")
            .records;
        assert_eq!(found.len(), 1, "ssn {ssn} found through its blind index");
        let values: Vec<_> = found[0].fields.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(found[0].name, format!("p{i}"));
        assert!(
            values.iter().any(|v| v.contains(&ssn))
                && values.iter().any(|v| v.contains(&format!("n{i}"))),
            "its values read back: {values:?}"
        );
    }
    let sealed: i64 = rows(
        &db,
        "SELECT count(*) FROM person WHERE ssn LIKE '0%' OR ssn LIKE '1%'",
    )
    .await;
    assert_eq!(sealed, 0, "no pii value stored in plaintext");
    let entries = rows(
        &db,
        "SELECT count(*) FROM _plinth_audit WHERE action = 'record.create'",
    )
    .await;
    assert_eq!(entries, CREATES as i64);
    assert!(matches!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

/// A proxy to the PostgreSQL server that counts, for each connection through it, the
/// client's turns: the times it sends after the server has spoken (its first send counts
/// too). Statements sent together, without waiting for an answer, are one turn however
/// many they are: a turn is a round trip.
struct Turns {
    port: u16,
    counts: Arc<std::sync::Mutex<Vec<Arc<AtomicUsize>>>>,
}

impl Turns {
    /// Listens on a loopback port and forwards each connection to `url`'s server.
    async fn start(url: &str) -> Self {
        let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = config.get_hosts().first().cloned().expect("a host");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let counts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let turns = Self {
            port: listener.local_addr().expect("its address").port(),
            counts: Arc::clone(&counts),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let turns = Arc::new(AtomicUsize::new(0));
                counts.lock().expect("the counts").push(Arc::clone(&turns));
                match &host {
                    Host::Tcp(name) => {
                        let server = TcpStream::connect((name.as_str(), port)).await;
                        tokio::spawn(relay(client, server.expect("the server"), turns));
                    }
                    Host::Unix(dir) => {
                        let socket = dir.join(format!(".s.PGSQL.{port}"));
                        let server = UnixStream::connect(socket).await;
                        tokio::spawn(relay(client, server.expect("the server"), turns));
                    }
                }
            }
        });
        turns
    }

    /// `url` (of a database on the proxied server) through the proxy.
    fn url(&self, url: &str) -> String {
        let database = url.rsplit('/').next().expect("a database name");
        let database = database.split('?').next().unwrap_or(database);
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Every connection's turns so far, in the order they connected.
    fn now(&self) -> Vec<usize> {
        let counts = self.counts.lock().expect("the counts");
        counts.iter().map(|c| c.load(Ordering::SeqCst)).collect()
    }

    /// The turns taken since `before` (from [`Turns::now`]), on all connections.
    fn since(&self, before: &[usize]) -> usize {
        let now = self.now();
        let earlier = |i: usize| before.get(i).copied().unwrap_or(0);
        now.iter().enumerate().map(|(i, n)| n - earlier(i)).sum()
    }
}

/// Forwards `client` to `server` and back, counting the client's turns.
async fn relay(
    client: TcpStream,
    server: impl AsyncRead + AsyncWrite + Send + 'static,
    turns: Arc<AtomicUsize>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = tokio::io::split(server);
    // Set before the server's bytes are passed on, so before the client can answer them.
    let spoke = Arc::new(AtomicBool::new(true));
    let heard = Arc::clone(&spoke);
    let up = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            if heard.swap(false, Ordering::SeqCst) {
                turns.fetch_add(1, Ordering::SeqCst);
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
            spoke.store(true, Ordering::SeqCst);
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(up, down);
}

/// A lone create whose batch before has sent its `COMMIT` takes the audit chain's lock and
/// reads its head with its insert: two round trips in all (`BEGIN`, the insert, the lock
/// and head; the entry and `COMMIT`), where taking the lock once the insert answered costs
/// three. A create with an idempotency key, whose insert waits for its claim's answer, takes
/// the lock only after it (four: the claim; the insert; the lock and head; the entry and
/// `COMMIT`). The chain stays whole either way. A lone update, delete or restore takes two
/// as well (`BEGIN`, the record read and locked, its change, the lock and head; the entry
/// and `COMMIT`), where the read answered before the change was sent, and the lock taken
/// after, cost four (a restore, which reads nothing first, three), and a transaction of
/// their own six (five). One thread, so that statements sent together leave together (the
/// count is of round trips, not of the scheduler's timing).
#[tokio::test(flavor = "current_thread")]
async fn lone_writes_take_few_round_trips() {
    let Some(server) = server("lone_writes_take_few_round_trips") else {
        return;
    };
    let database = Database::create(&server).await;
    let turns = Turns::start(&database.url()).await;
    let mut options = PgOptions::new(turns.url(&database.url()));
    options.keys = crate::contract::test_keys();
    let store = PgStore::open(options)
        .await
        .expect("open through the proxy");
    let schema = Schema::from_decls(&[]).expect("the default schema");
    store.migrate(&schema, false).await.expect("migrate");
    let model = Arc::clone(schema.model("resource").expect("resource"));

    // The statements prepared on the connection first.
    for i in 0..3 {
        let claim = IdempotencyClaim {
            key: format!("warm-{i}"),
            body_digest: "d".to_owned(),
        };
        store
            .create(&ctx(), &model, draft(&format!("warm {i}")), None)
            .await
            .expect("a create");
        store
            .create(&ctx(), &model, draft(&format!("claimed {i}")), Some(claim))
            .await
            .expect("a create with a key");
    }
    for i in 0..3 {
        let before = turns.now();
        store
            .create(&ctx(), &model, draft(&format!("lone {i}")), None)
            .await
            .expect("a create");
        assert_eq!(turns.since(&before), 2, "create {i}: round trips");
    }
    let before = turns.now();
    let claim = IdempotencyClaim {
        key: "once".to_owned(),
        body_digest: "d".to_owned(),
    };
    store
        .create(&ctx(), &model, draft("claimed"), Some(claim))
        .await
        .expect("a create with a key");
    assert_eq!(turns.since(&before), 4, "a claimed create's round trips");
    // An update, a delete and a restore: once to prepare their statements, then counted.
    for round in 0..2 {
        let made = store
            .create(&ctx(), &model, draft(&format!("changed {round}")), None)
            .await
            .expect("a create");
        let id = made.record.id;
        let patch = Patch {
            name: Some(format!("renamed {round}")),
            ..Patch::default()
        };
        let before = turns.now();
        store
            .update(&ctx(), &model, id, patch, None)
            .await
            .expect("an update");
        let updated = turns.since(&before);
        let before = turns.now();
        store
            .delete(&ctx(), &model, id, None)
            .await
            .expect("a delete");
        let deleted = turns.since(&before);
        let before = turns.now();
        store.restore(&ctx(), &model, id).await.expect("a restore");
        let restored = turns.since(&before);
        if round == 1 {
            assert_eq!((updated, deleted, restored), (2, 2, 2), "round trips");
        }
    }
    assert!(matches!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

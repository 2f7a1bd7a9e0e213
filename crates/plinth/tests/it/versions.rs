//! `plinth migrate status|plan|up|down` over the versions of Plinth's own tables, a database
//! newer than the binary (refused by name, or started beside with a warning when additive),
//! and, on PostgreSQL, two instances side by side during an additive model change. Both
//! engines.

use crate::helpers::{Server, TestDir, log_message, refused, run_ok};
use reqwest::StatusCode;
use serde_json::json;

use plinth_store::versions::LATEST;
const TITLE: &str = "[[models.fields]]\nname = \"title\"\ntype = \"string\"\n";
const ISBN: &str = "[[models.fields]]\nname = \"isbn\"\ntype = \"string\"\n";

fn declare(dir: &TestDir, fields: &[&str]) {
    dir.write_config(&format!(
        "[[models]]\nname = \"book\"\n\n{}",
        fields.join("\n")
    ));
}

/// Runs `sqlite` on the SQLite file, or `postgres` on the test's PostgreSQL database.
async fn raw(dir: &TestDir, sqlite: &str, postgres: &str) {
    match dir.postgres_url() {
        Some(url) => plinth_testkit::connect(&url)
            .await
            .batch_execute(postgres)
            .await
            .unwrap_or_else(|e| panic!("{postgres}: {e}")),
        None => rusqlite::Connection::open(dir.db())
            .expect("open the database file")
            .execute_batch(sqlite)
            .unwrap_or_else(|e| panic!("{sqlite}: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_plan_up_and_down() {
    let dir = TestDir::new();
    declare(&dir, &[TITLE]);
    let data = dir.data_arg();
    let migrate = |args: &[&str]| {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        all.extend(["--data-dir", data.as_str()]);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let argv = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let call = async |args: &[&str]| {
        let v = migrate(args);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        run_ok(&dir, &v, &[]).await.stdout
    };

    // A new database: status and plan change nothing, and the plan is the exact SQL.
    let status = call(&["status"]).await;
    assert!(
        status.contains(&format!(
            "database: no version recorded; this plinth: version {LATEST}"
        )),
        "{status}"
    );
    assert_eq!(
        status.matches("pending").count(),
        plinth_store::versions::known().len(),
        "{status}"
    );
    let plan = call(&["plan"]).await;
    for expected in [
        "-- Plinth's own tables, version 0: baseline",
        "CREATE TABLE IF NOT EXISTS _plinth_models (",
        "-- Plinth's own tables, version 2: audit trail",
        "CREATE TABLE IF NOT EXISTS _plinth_audit (",
        "-- declared models",
        "create model book",
    ] {
        assert!(plan.contains(expected), "{expected}: {plan}");
    }
    assert!(call(&["status"]).await.contains("no version recorded"));

    // Up: every version, then the model.
    let up = call(&["up"]).await;
    assert!(up.contains(&format!("database: version {LATEST}")), "{up}");
    assert!(up.contains("applied 1 step(s)"), "{up}");
    let status = call(&["status"]).await;
    assert_eq!(
        status.matches("  applied ").count(),
        plinth_store::versions::known().len(),
        "{status}"
    );
    assert!(status.contains("(its down loses data)"), "{status}");

    // Down is refused while a server runs.
    let server = Server::start(&dir).await;
    let book = server
        .create("book", &json!({"name": "Dune", "title": "Dune"}))
        .await;
    let id = book["id"].as_str().expect("id").to_owned();
    let down = migrate(&["down", "--to", "1", "--allow-destructive"]);
    let down: Vec<&str> = down.iter().map(String::as_str).collect();
    let stderr = refused(&dir, &down, &[]).await.stderr;
    assert!(
        stderr.contains("is refused") && stderr.contains("is using"),
        "{stderr}"
    );
    server.stop().await;

    // Without the flag the audit trail's down is refused, and nothing is rolled back.
    let v = migrate(&["down", "--to", "1"]);
    let stderr = refused(&dir, &v.iter().map(String::as_str).collect::<Vec<_>>(), &[])
        .await
        .stderr;
    assert!(
        stderr.contains("--allow-destructive"),
        "{}: {stderr}",
        argv(&v)
    );
    assert!(
        call(&["status"])
            .await
            .contains(&format!("database: version {LATEST}"))
    );

    let done = run_ok(&dir, &down, &[]).await.stdout;
    assert!(
        done.contains("rolled back version 4")
            && done.contains("rolled back version 3")
            && done.contains("rolled back version 2")
            && done.contains("database: version 1"),
        "{done}"
    );
    let plan = call(&["plan"]).await;
    assert!(
        plan.contains("-- Plinth's own tables, version 2: audit trail")
            && plan.contains("CREATE INDEX IF NOT EXISTS _plinth_idempotency_created")
            && !plan.contains("version 1:")
            && plan.contains("the schema is up to date"),
        "{plan}"
    );

    // The next start applies them again; the record is there.
    let server = Server::start(&dir).await;
    assert_eq!(server.read("book", &id).await["title"], "Dune");
    server.stop().await;
    assert!(
        call(&["status"])
            .await
            .contains(&format!("database: version {LATEST}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_by_name_and_an_additive_one_starts_with_a_warning() {
    let dir = TestDir::new();
    declare(&dir, &[TITLE]);
    let data = dir.data_arg();
    run_ok(&dir, &["migrate", "--data-dir", &data], &[]).await;
    let next = LATEST + 1;
    raw(
        &dir,
        &format!(
            "INSERT INTO _plinth_schema_versions VALUES ({next}, 'from a newer plinth', 0, 1700000000000000)"
        ),
        &format!(
            "INSERT INTO _plinth_schema_versions VALUES ({next}, 'from a newer plinth', false, now())"
        ),
    )
    .await;
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    let expected = format!(
        "the database's schema is at version {next}; this plinth knows up to {LATEST}: run a newer \
         plinth, or roll the schema back with `plinth migrate down --to {LATEST}` using the newer binary"
    );
    for args in [
        &serve[..],
        &["migrate", "--data-dir", &data],
        &["migrate", "plan", "--data-dir", &data],
    ] {
        let stderr = refused(&dir, args, &[]).await.stderr;
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    let status = run_ok(&dir, &["migrate", "status", "--data-dir", &data], &[])
        .await
        .stdout;
    assert!(
        status.contains(&format!(
            "database: version {next}; this plinth: version {LATEST}"
        )) && status.contains("from a newer plinth (unknown to this plinth, not additive)"),
        "{status}"
    );

    // Additive: this binary runs beside the newer one, and says so.
    raw(
        &dir,
        &format!("UPDATE _plinth_schema_versions SET additive = 1 WHERE version = {next}"),
        &format!("UPDATE _plinth_schema_versions SET additive = true WHERE version = {next}"),
    )
    .await;
    let server = Server::start(&dir).await;
    let created = server.post("/api/v1/book", &json!({"name": "Emma"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let proc = server.stop().await;
    let warned = proc.logs().iter().any(|l| {
        log_message(l).is_some_and(|m| {
            m.contains(&format!("the database's schema is at version {next}, newer than this plinth knows ({LATEST})"))
        })
    });
    assert!(warned, "{}", proc.describe());
}

/// A rolling update on PostgreSQL: instance A (the current config) serves while instance B
/// starts with an optional field added, migrating beside it; both answer creates and reads,
/// A ignores the new column and keeps answering while B writes it. (On SQLite one server
/// owns the file: nothing runs beside it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_run_side_by_side_during_an_additive_change() {
    let dir = TestDir::new();
    if dir.postgres_url().is_none() {
        return;
    }
    declare(&dir, &[TITLE]);
    let a = Server::start(&dir).await;
    let first = a
        .create("book", &json!({"name": "Dune", "title": "Dune"}))
        .await;

    declare(&dir, &[TITLE, ISBN]);
    let b = Server::start(&dir).await;
    let id = |v: &serde_json::Value| v["id"].as_str().expect("id").to_owned();
    let by_b = b
        .create(
            "book",
            &json!({"name": "Emma", "title": "Emma", "isbn": "978-0141439587"}),
        )
        .await;
    let by_a = a
        .create("book", &json!({"name": "Kim", "title": "Kim"}))
        .await;

    // A does not know the field: it neither shows it nor takes it.
    let seen_by_a = a.read("book", &id(&by_b)).await;
    assert_eq!(seen_by_a["title"], "Emma");
    assert!(seen_by_a.get("isbn").is_none(), "{seen_by_a}");
    let unknown = a
        .post("/api/v1/book", &json!({"name": "X", "isbn": "1"}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    // B sees A's records, without a value for the new field.
    assert_eq!(
        b.read("book", &id(&by_a)).await["isbn"],
        serde_json::Value::Null
    );
    assert_eq!(b.read("book", &id(&first)).await["title"], "Dune");

    // A changes B's record while B writes the new field: neither loses the other's value.
    let changed = a
        .patch(
            &format!("/api/v1/book/{}", id(&by_b)),
            &json!({"title": "Emma!"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let written = b
        .patch(
            &format!("/api/v1/book/{}", id(&by_a)),
            &json!({"isbn": "978-0141441580"}),
        )
        .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    let emma = b.read("book", &id(&by_b)).await;
    assert_eq!(
        (&emma["title"], &emma["isbn"]),
        (&json!("Emma!"), &json!("978-0141439587"))
    );
    let kim = a.read("book", &id(&by_a)).await;
    assert_eq!(kim["title"], "Kim");
    let listed = a.get("/api/v1/book").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        listed.body["data"].as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.body
    );

    // A restarting with the older config while B runs (a rescheduled pod, a rollback)
    // starts: the field it does not declare is kept, unseen, and B's values survive A's
    // writes.
    a.stop().await;
    declare(&dir, &[TITLE]);
    let a = Server::start(&dir).await;
    let seen = a.read("book", &id(&by_b)).await;
    assert!(seen.get("isbn").is_none(), "{seen}");
    let changed = a
        .patch(
            &format!("/api/v1/book/{}", id(&by_b)),
            &json!({"title": "Emma!!"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let emma = b.read("book", &id(&by_b)).await;
    assert_eq!(
        (&emma["title"], &emma["isbn"]),
        (&json!("Emma!!"), &json!("978-0141439587"))
    );
    let proc = a.stop().await;
    let warned = proc.logs().iter().any(|l| {
        log_message(l).is_some_and(|m| m.contains("does not declare: they are kept as they are"))
    });
    assert!(warned, "{}", proc.describe());
    // The declarations recorded are still B's: B restarts with nothing to migrate.
    declare(&dir, &[TITLE, ISBN]);
    let b2 = Server::start(&dir).await;
    assert_eq!(b2.read("book", &id(&by_b)).await["isbn"], "978-0141439587");
    b2.stop().await;
    b.stop().await;
}

/// Beside a running instance, a server applies no change that instance could not run
/// beside (here a rename): it refuses to start, naming the step; alone, it applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rename_waits_until_no_other_instance_runs() {
    let dir = TestDir::new();
    if dir.postgres_url().is_none() {
        return;
    }
    declare(&dir, &[TITLE]);
    let a = Server::start(&dir).await;
    let book = a
        .create("book", &json!({"name": "Dune", "title": "Dune"}))
        .await;
    let renamed =
        "[[models.fields]]\nname = \"heading\"\ntype = \"string\"\nrenamed_from = \"title\"\n";
    declare(&dir, &[renamed]);
    let data = dir.data_arg();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    let stderr = refused(&dir, &serve, &[]).await.stderr;
    assert!(
        stderr.contains("other instances use the database")
            && stderr.contains("rename field book.title"),
        "{stderr}"
    );
    // A was not disturbed; stopped, the rename applies and keeps the value.
    let id = book["id"].as_str().expect("id").to_owned();
    assert_eq!(a.read("book", &id).await["title"], "Dune");
    a.stop().await;
    let b = Server::start(&dir).await;
    assert_eq!(b.read("book", &id).await["heading"], "Dune");
    b.stop().await;
}

/// `down` takes a version number and nothing else; one above the database's rolls nothing
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_refuses_a_bad_version_and_ignores_one_above_the_database() {
    let dir = TestDir::new();
    declare(&dir, &[TITLE]);
    let data = dir.data_arg();
    run_ok(&dir, &["migrate", "up", "--data-dir", &data], &[]).await;
    for bad in [
        vec!["migrate", "down", "--data-dir", &data],
        vec!["migrate", "down", "--to", "abc", "--data-dir", &data],
        vec!["migrate", "down", "--to", "-1", "--data-dir", &data],
        vec![
            "migrate",
            "down",
            "--to",
            "99999999999",
            "--data-dir",
            &data,
        ],
        vec![
            "migrate",
            "down",
            "--to",
            "1",
            "--force",
            "--data-dir",
            &data,
        ],
        vec!["migrate", "status", "--to", "1", "--data-dir", &data],
    ] {
        let done = crate::helpers::run(&dir, &bad, &[]).await;
        assert_eq!(done.status.code(), Some(2), "{bad:?}: {}", done.stderr);
        assert!(done.stderr.contains("error:"), "{bad:?}: {}", done.stderr);
    }
    let above = run_ok(
        &dir,
        &["migrate", "down", "--to", "99", "--data-dir", &data],
        &[],
    )
    .await
    .stdout;
    assert!(above.contains("nothing to roll back"), "{above}");
    let status = run_ok(&dir, &["migrate", "status", "--data-dir", &data], &[])
        .await
        .stdout;
    assert!(
        status.contains(&format!("database: version {LATEST}")),
        "{status}"
    );
}

/// `--dry-run` belongs to bare `plinth migrate`: with a subcommand it is refused as a usage
/// error and nothing runs (clap took it and ran the subcommand: `--dry-run up` migrated,
/// `--dry-run down` rolled back). The global options still go before a subcommand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_with_a_subcommand_is_refused_and_changes_nothing() {
    let dir = TestDir::new();
    declare(&dir, &[TITLE]);
    let data = dir.data_arg();
    let status = async || {
        run_ok(&dir, &["migrate", "--data-dir", &data, "status"], &[])
            .await
            .stdout
    };
    let refused_usage = async |args: &[&str], action: &str| {
        let done = crate::helpers::run(&dir, args, &[]).await;
        assert_eq!(done.status.code(), Some(2), "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.contains(&format!(
                "error: '--dry-run' cannot be used with the subcommand '{action}'"
            )),
            "{args:?}: {}",
            done.stderr
        );
    };
    refused_usage(&["migrate", "--dry-run", "up", "--data-dir", &data], "up").await;
    let now = status().await;
    assert!(now.contains("database: no version recorded"), "{now}");

    run_ok(&dir, &["migrate", "up", "--data-dir", &data], &[]).await;
    let down = [
        "migrate",
        "--dry-run",
        "down",
        "--to",
        "0",
        "--allow-destructive",
        "--data-dir",
        &data,
    ];
    refused_usage(&down, "down").await;
    let now = status().await;
    assert!(
        now.contains(&format!("database: version {LATEST};")),
        "{now}"
    );
}

//! Schema migrations across restarts: additive changes just work, destructive ones are
//! refused unless allowed, and refused changes leave the database untouched.

use crate::helpers::{Server, TestDir, log_field, log_message, refused, run, run_ok};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TITLE: &str = "[[models.fields]]\nname = \"title\"\ntype = \"string\"\n";
const TITLE_UNIQUE: &str =
    "[[models.fields]]\nname = \"title\"\ntype = \"string\"\nunique = true\n";
const PAGES: &str = "[[models.fields]]\nname = \"pages\"\ntype = \"integer\"\n";
const ISBN: &str = "[[models.fields]]\nname = \"isbn\"\ntype = \"string\"\n";
const PUBLISHER: &str =
    "[[models.fields]]\nname = \"publisher\"\ntype = \"string\"\nrequired = true\n";

/// `plinth.toml` declaring `book` with `fields`, and `author` when asked.
fn declare(dir: &TestDir, fields: &[&str], author: bool) {
    let mut text = String::from("[[models]]\nname = \"book\"\n\n");
    for field in fields {
        text.push_str(field);
        text.push('\n');
    }
    if author {
        text.push_str("[[models]]\nname = \"author\"\n");
    }
    dir.write_config(&text);
}

/// A `book` model with title and pages, and two records sharing a title; returns their ids.
async fn seed_books(dir: &TestDir) -> (String, String) {
    declare(dir, &[TITLE, PAGES], false);
    let server = Server::start(dir).await;
    let first = server
        .create(
            "book",
            &json!({"name": "first", "title": "Dune", "pages": 412}),
        )
        .await;
    let second = server
        .create(
            "book",
            &json!({"name": "second", "title": "Dune", "pages": 200}),
        )
        .await;
    server.stop().await;
    let id = |v: &Value| v["id"].as_str().expect("id").to_owned();
    (id(&first), id(&second))
}

/// The statements that made `table` (`CREATE TABLE` first, then its indexes), read from the
/// database file; empty when there is no such table.
fn table_schema(dir: &TestDir, table: &str) -> String {
    schema_rows(
        dir,
        "SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL
         ORDER BY type = 'table' DESC, name",
        table,
    )
    .join(";\n")
}

/// The names of `table`'s indexes.
fn index_names(dir: &TestDir, table: &str) -> Vec<String> {
    schema_rows(
        dir,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 ORDER BY name",
        table,
    )
}

/// The first column of `sql`'s rows, asked of the database file (which must exist).
fn schema_rows(dir: &TestDir, sql: &str, table: &str) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        dir.db(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", dir.db().display()));
    let mut stmt = db.prepare(sql).expect("prepare a schema query");
    stmt.query_map([table], |r| r.get(0))
        .expect("query the schema")
        .collect::<Result<Vec<String>, _>>()
        .expect("read the schema")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn additive_changes_apply_and_destructive_ones_need_allowing() {
    // Looks into the SQLite file: SQLite only, whatever the engine of the run.
    let dir = TestDir::sqlite();
    let (first, _) = seed_books(&dir).await;

    // A new model and a nullable field: start just works, old records get null.
    declare(&dir, &[TITLE, PAGES, ISBN], true);
    let server = Server::start(&dir).await;
    let mut steps: Vec<String> = server
        .proc
        .logs()
        .iter()
        .filter(|l| log_message(l) == Some("migrated"))
        .filter_map(|l| {
            log_field(l, "step")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    steps.sort();
    assert_eq!(steps, ["add field book.isbn", "create model author"]);
    let book = server.read("book", &first).await;
    assert_eq!(book["title"], "Dune");
    assert_eq!(book["pages"], 412);
    assert_eq!(
        book.get("isbn"),
        Some(&Value::Null),
        "the new field is null: {book}"
    );
    let authors = server.get("/api/v1/author").await;
    assert_eq!(authors.status, StatusCode::OK, "{}", authors.body);
    assert_eq!(authors.body["data"], json!([]));
    server
        .create("author", &json!({"name": "Frank Herbert"}))
        .await;
    let with_isbn = server
        .create(
            "book",
            &json!({"name": "third", "title": "Emma", "isbn": "978-0141439587"}),
        )
        .await;
    assert_eq!(with_isbn["isbn"], "978-0141439587");
    server.stop().await;
    let schema = table_schema(&dir, "book");
    assert!(schema.contains("\"isbn\" TEXT"), "{schema}");
    assert!(schema.contains("\"pages\" INTEGER"), "{schema}");
    let schema = table_schema(&dir, "author");
    assert!(schema.starts_with("CREATE TABLE"), "{schema}");
    assert!(schema.contains("\"owner_id\" TEXT"), "{schema}");

    // Dropping a field is refused: a server starts without it, the column kept and
    // unseen, and says so; the migration names the field and the way out.
    declare(&dir, &[TITLE, ISBN], true);
    let data = dir.data_arg();
    let server = Server::start(&dir).await;
    let kept = server.read("book", &first).await;
    assert_eq!(kept.get("pages"), None, "{kept}");
    let proc = server.stop().await;
    let warned = proc.logs().iter().any(|l| {
        let line = l.to_string();
        line.contains("does not declare: they are kept as they are")
            && line.contains("drop field book.pages")
    });
    assert!(warned, "{}", proc.describe());
    let stderr = refused(&dir, &["migrate", "--data-dir", &data], &[])
        .await
        .stderr;
    assert!(stderr.contains("book.pages"), "{stderr}");
    assert!(stderr.contains("--allow-destructive"), "{stderr}");

    // The dry run shows the step, marked, and changes nothing.
    let dry = run_ok(&dir, &["migrate", "--dry-run", "--data-dir", &data], &[]).await;
    let marked: Vec<&str> = dry
        .stdout
        .lines()
        .filter(|l| l.ends_with("(destructive)"))
        .collect();
    assert_eq!(
        marked,
        ["drop field book.pages and its values (destructive)"],
        "{}",
        dry.stdout
    );
    let schema = table_schema(&dir, "book");
    assert!(
        schema.contains("\"pages\""),
        "refusals and dry runs change nothing: {schema}"
    );

    // Allowed: the field is gone from the table and from responses; the rest is intact.
    let server = Server::start_with(&dir, &["--allow-destructive"], &[]).await;
    let book = server.read("book", &first).await;
    assert_eq!(
        book.get("pages"),
        None,
        "dropped field still served: {book}"
    );
    assert_eq!(book["title"], "Dune");
    assert_eq!(book["name"], "first");
    let unknown = server
        .post("/api/v1/book", &json!({"name": "fourth", "pages": 10}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["code"], "INVALID_INPUT");
    server.stop().await;
    let schema = table_schema(&dir, "book");
    assert!(!schema.contains("pages"), "{schema}");
    assert!(schema.contains("\"isbn\" TEXT"), "{schema}");

    // Applied: nothing left to do.
    let dry = run_ok(&dir, &["migrate", "--dry-run", "--data-dir", &data], &[]).await;
    assert!(
        dry.stdout.contains("the schema is up to date"),
        "{}",
        dry.stdout
    );
    Server::start(&dir).await.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_command_applies_when_allowed() {
    let dir = TestDir::new();
    let (first, _) = seed_books(&dir).await;
    declare(&dir, &[TITLE], false);
    let data = dir.data_arg();
    let done = run_ok(
        &dir,
        &["migrate", "--allow-destructive", "--data-dir", &data],
        &[],
    )
    .await;
    assert!(done.stdout.contains("applied 1 step(s)"), "{}", done.stdout);
    let server = Server::start(&dir).await;
    let book = server.read("book", &first).await;
    assert_eq!(book.get("pages"), None, "{book}");
    assert_eq!(book["title"], "Dune");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_field_is_refused_while_records_lack_it() {
    // Looks into the SQLite file: SQLite only, whatever the engine of the run.
    let dir = TestDir::sqlite();
    let (first, second) = seed_books(&dir).await;
    declare(&dir, &[TITLE, PAGES, PUBLISHER], false);
    let data = dir.data_arg();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    let stderr = refused(&dir, &serve, &[]).await.stderr;
    assert!(stderr.contains("book.publisher"), "{stderr}");
    assert!(stderr.contains("required"), "{stderr}");
    assert!(stderr.contains("2 record(s)"), "{stderr}");
    assert!(
        stderr.contains(&first) && stderr.contains("default"),
        "{stderr}"
    );
    let schema = table_schema(&dir, "book");
    assert!(
        !schema.contains("publisher"),
        "the refused migration was applied in part: {schema}"
    );

    // The old declaration still starts, with the records untouched.
    declare(&dir, &[TITLE, PAGES], false);
    let server = Server::start(&dir).await;
    assert_eq!(server.read("book", &first).await["pages"], 412);
    assert_eq!(server.read("book", &second).await["pages"], 200);
    let book = server.read("book", &first).await;
    assert_eq!(book.get("publisher"), None, "{book}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_is_refused_while_duplicates_exist() {
    // Looks into the SQLite file: SQLite only, whatever the engine of the run.
    let dir = TestDir::sqlite();
    let (_, second) = seed_books(&dir).await;
    declare(&dir, &[TITLE_UNIQUE, PAGES], false);
    let data = dir.data_arg();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    let stderr = refused(&dir, &serve, &[]).await.stderr;
    assert!(stderr.contains("book.title"), "{stderr}");
    assert!(stderr.contains("unique"), "{stderr}");
    let indexes = index_names(&dir, "book");
    assert!(!indexes.iter().any(|i| i == "book__title"), "{indexes:?}");

    // Once the duplicate is fixed, the same declaration applies.
    declare(&dir, &[TITLE, PAGES], false);
    let server = Server::start(&dir).await;
    let fixed = server
        .patch(
            &format!("/api/v1/book/{second}"),
            &json!({"title": "Dune Messiah"}),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    server.stop().await;
    declare(&dir, &[TITLE_UNIQUE, PAGES], false);
    let server = Server::start(&dir).await;
    let duplicate = server
        .post("/api/v1/book", &json!({"name": "copy", "title": "Dune"}))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    assert_eq!(duplicate.body["error"]["code"], "CONFLICT");
    server.stop().await;
    let indexes = index_names(&dir, "book");
    assert!(indexes.iter().any(|i| i == "book__title"), "{indexes:?}");
    let schema = table_schema(&dir, "book");
    assert!(
        schema.contains("CREATE UNIQUE INDEX \"book__title\""),
        "{schema}"
    );
    let dry = run(&dir, &["migrate", "--dry-run", "--data-dir", &data], &[]).await;
    assert!(
        dry.stdout.contains("the schema is up to date"),
        "{}",
        dry.stdout
    );
}

/// A production start refused for its signing key must not migrate first: here that would
/// drop a column and its values, then refuse to serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_for_its_signing_key_applies_no_migration() {
    // Looks into the SQLite file: SQLite only, whatever the engine of the run.
    let dir = TestDir::sqlite();
    let (first, _) = seed_books(&dir).await;
    declare(&dir, &[TITLE], false);
    let data = dir.data_arg();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-destructive",
        "--data-dir",
        &data,
    ];
    let weak = "a-weak-key".repeat(2);
    let cases: [&[(&str, &str)]; 2] = [
        &[("PLINTH_ENV", "production")],
        &[("PLINTH_ENV", "production"), ("PLINTH_JWT_SECRET", &weak)],
    ];
    for envs in cases {
        let stderr = refused(&dir, &args, envs).await.stderr;
        assert!(stderr.contains("PLINTH_JWT_SECRET"), "{stderr}");
        let schema = table_schema(&dir, "book");
        assert!(
            schema.contains("\"pages\""),
            "a refused start dropped book.pages: {schema}"
        );
    }

    declare(&dir, &[TITLE, PAGES], false);
    let server = Server::start(&dir).await;
    let book = server.read("book", &first).await;
    assert_eq!(
        book["pages"], 412,
        "a refused start dropped book.pages: {book}"
    );
}

/// `unique` is `true`, `false` or `"owner"`; anything else stops the start, naming the
/// choices. `unique = true` on a model whose users read only their own records starts with
/// a warning (its conflicts reveal others' values); `"owner"` starts without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_values_are_checked_and_a_revealing_one_is_warned_of() {
    let dir = TestDir::new();
    let own = |unique: &str| {
        format!(
            "[[models]]\nname = \"order\"\nuser_read = \"own\"\n\n\
             [[models.fields]]\nname = \"sku\"\ntype = \"string\"\nunique = {unique}\n"
        )
    };
    let data = dir.data_arg();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    dir.write_config(&own("\"yes\""));
    let stderr = refused(&dir, &serve, &[]).await.stderr;
    assert!(stderr.contains("true, false or \"owner\""), "{stderr}");

    let warned = |server: &Server| {
        server.proc.logs().iter().any(|l| {
            l["level"] == "WARN"
                && log_field(l, "field").and_then(Value::as_str) == Some("sku")
                && log_message(l).is_some_and(|m| m.contains("unique = \"owner\""))
        })
    };
    dir.write_config(&own("true"));
    let server = Server::start(&dir).await;
    assert!(warned(&server), "{}", server.proc.describe());
    server.stop().await;
    dir.write_config(&own("\"owner\""));
    let server = Server::start(&dir).await;
    assert!(!warned(&server), "{}", server.proc.describe());
    server.stop().await;
}

/// The dry run prints each step's SQL; the migration then runs exactly that: SQLite keeps
/// each statement's text, so the rebuilt index reads back as printed. The rename and the
/// conversion keep the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_sql_that_runs() {
    // Looks into the SQLite file: SQLite only, whatever the engine of the run.
    let dir = TestDir::sqlite();
    let (first, _) = seed_books(&dir).await;
    let heading = "[[models.fields]]\nname = \"heading\"\ntype = \"string\"\nindexed = true\n\
                   renamed_from = \"title\"\n";
    let pages = "[[models.fields]]\nname = \"pages\"\ntype = \"float\"\n";
    declare(&dir, &[heading, pages], false);
    let data = dir.data_arg();
    let dry = run_ok(&dir, &["migrate", "--dry-run", "--data-dir", &data], &[]).await;
    let out = dry.stdout;
    assert!(
        out.contains("rename field book.title to book.heading, keeping its values\n"),
        "{out}"
    );
    assert!(
        out.contains("    ALTER TABLE \"book\" RENAME COLUMN \"title\" TO \"heading\";\n"),
        "{out}"
    );
    let index = out
        .lines()
        .find_map(|l| l.strip_prefix("    CREATE INDEX \"book__heading\""))
        .expect("the index statement is printed");
    assert!(
        !table_schema(&dir, "book").contains("heading"),
        "dry run applied"
    );

    run_ok(&dir, &["migrate", "--data-dir", &data], &[]).await;
    let schema = table_schema(&dir, "book");
    let printed = format!(
        "CREATE INDEX \"book__heading\"{}",
        index.trim_end_matches(';')
    );
    assert!(schema.contains(&printed), "{printed} not in {schema}");
    assert!(schema.contains("\"pages\" REAL"), "{schema}");
    let server = Server::start(&dir).await;
    let book = server.read("book", &first).await;
    assert_eq!(
        (&book["heading"], &book["pages"]),
        (&json!("Dune"), &json!(412.0))
    );
    server.stop().await;
}

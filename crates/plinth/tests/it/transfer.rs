//! `plinth export` reads only, at the schema recorded in the database; `plinth import` is
//! all or nothing and can be retried, and its messages name only its own flags; feature
//! flags move with the rest, exactly. Both engines.

use crate::helpers::{Server, TestDir, refused, run_ok};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

const BOOK: &str = "[[models]]\nname = \"book\"\n\n[[models.fields]]\nname = \"title\"\ntype = \"string\"\nunique = true\n";

/// What export must not change: the SQLite file's bytes and its WAL's, or on PostgreSQL the
/// recorded declarations and the tables' columns.
fn fingerprint(dir: &TestDir) -> String {
    match dir.postgres_url() {
        None => {
            let db = dir.db();
            let digest = |p: std::path::PathBuf| {
                std::fs::read(&p).map_or_else(
                    |_| "absent".to_owned(),
                    |b| {
                        let mut h = DefaultHasher::new();
                        b.hash(&mut h);
                        format!("{} bytes, hash {:x}", b.len(), h.finish())
                    },
                )
            };
            let mut wal = db.clone().into_os_string();
            wal.push("-wal");
            let wal_bytes = std::fs::read(&wal).map(|b| b.len()).unwrap_or(0);
            // SQLite may create an empty WAL beside a file it opens; it must hold no frames.
            format!("db {} wal frames {}", digest(db), wal_bytes > 0)
        }
        Some(url) => psql(
            &url,
            "SELECT (SELECT string_agg(decl::text, ';' ORDER BY position) FROM _plinth_models) || '|' || \
             (SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) \
              FROM information_schema.columns WHERE table_schema = 'public')",
        ),
    }
}

fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-Atc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_reads_the_recorded_schema_and_changes_nothing() {
    let dir = TestDir::new();
    dir.write_config(BOOK);
    let server = Server::start(&dir).await;
    server
        .create("book", &json!({"name": "Dune", "title": "Dune"}))
        .await;
    server.stop().await;
    // plinth.toml now declares something else; the export is of what the database holds.
    dir.write_config("[[models]]\nname = \"note\"\n");
    let before = fingerprint(&dir);
    let data = dir.data_arg();
    let out = dir.path().join("dump.jsonl");
    let out_arg = out.display().to_string();
    run_ok(
        &dir,
        &["export", "--data-dir", &data, "--output", &out_arg],
        &[],
    )
    .await;
    assert_eq!(fingerprint(&dir), before, "the export changed the database");
    let text = std::fs::read_to_string(&out).expect("the export");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["models"][0]["name"], "book", "{}", lines[0]);
    assert_eq!(lines[0]["models"].as_array().map(Vec::len), Some(1));
    assert!(
        lines
            .iter()
            .any(|l| l["record"]["fields"]["title"] == "Dune"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_leaves_the_target_as_it_was_and_can_be_retried() {
    // The source: a book model without uniqueness, two books sharing a title, a flag
    // changed once.
    let source = TestDir::new();
    source.write_config(&BOOK.replace("unique = true\n", ""));
    let server = Server::start(&source).await;
    for name in ["first", "second"] {
        server
            .create("book", &json!({"name": name, "title": "Dune"}))
            .await;
    }
    let flag = json!({"key": "new-checkout", "enabled": true, "rollout": 12.5,
        "allow": ["role:admin"], "off_after": "2030-01-01T00:00:00.000001Z"});
    let r = server.post("/api/v1/flags", &flag).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = server
        .patch(
            "/api/v1/flags/new-checkout",
            &json!({"description": "one page"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let flag = r.body["data"].clone();
    assert_eq!(flag["version"], 2, "{flag}");
    server.stop().await;
    let data = source.data_arg();
    let dump = source.path().join("dump.jsonl");
    let dump_arg = dump.display().to_string();
    let done = run_ok(
        &source,
        &["export", "--data-dir", &data, "--output", &dump_arg],
        &[],
    )
    .await;
    assert!(
        done.stderr
            .contains("exported 1 user(s), 1 flag(s) and 2 record(s)"),
        "{}",
        done.stderr
    );
    let text = std::fs::read_to_string(&dump).expect("the export");

    // The target declares the title unique: the last record clashes.
    let target = TestDir::new();
    target.write_config(BOOK);
    let input = target.write("dump.jsonl", &text);
    let (input_arg, target_data) = (input.display().to_string(), target.data_arg());
    let import = ["import", "--data-dir", &target_data, "--input", &input_arg];
    let stderr = refused(&target, &import, &[]).await.stderr;
    assert!(stderr.contains("title"), "{stderr}");
    assert!(!stderr.contains("--allow-destructive"), "{stderr}");
    // No users, no recorded models, no model tables; on SQLite, no database file at all.
    if target.postgres_url().is_none() {
        assert!(
            !target.db().exists(),
            "the failed import left a database file"
        );
    }
    assert_eq!(
        target_state(&target),
        "0|0||",
        "the failed import left something"
    );
    // Retried, with the clash fixed, it imports.
    let last = text.trim_end().rsplit('\n').next().expect("a last line");
    let fixed = text.replace(last, &last.replace("\"Dune\"", "\"Dune Messiah\""));
    target.write("dump.jsonl", &fixed);
    let done = run_ok(&target, &import, &[]).await;
    assert!(
        done.stderr
            .contains("imported 1 user(s), 1 flag(s) and 2 record(s)"),
        "{}",
        done.stderr
    );
    let server = Server::start(&target).await;
    let list = server.get("/api/v1/book?sort=created_at").await;
    let titles: Vec<&str> = list.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert_eq!(titles, ["Dune", "Dune Messiah"]);
    // The flag as the source showed it: id, rule, times and version.
    let r = server.get("/api/v1/flags/new-checkout").await;
    assert_eq!(r.body["data"], flag, "{}", r.text);
    server.stop().await;
}

/// Users, flags, recorded models and tables of the target (absent when there is no database
/// yet).
fn target_state(dir: &TestDir) -> String {
    match dir.postgres_url() {
        Some(url) => psql(
            &url,
            "SELECT coalesce((SELECT count(*) FROM _plinth_users)::text, '') || '|' || \
             coalesce((SELECT count(*) FROM _plinth_flags)::text, '') || '|' || \
             coalesce((SELECT string_agg(name, ',') FROM _plinth_models), '') || '|' || \
             coalesce((SELECT string_agg(table_name, ',' ORDER BY table_name) FROM \
             information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE '\\_plinth%'), '')",
        ),
        None if !dir.db().exists() => "0|0||".to_owned(),
        None => {
            let db = rusqlite::Connection::open(dir.db()).expect("open");
            let get = |sql: &str| -> String {
                db.query_row(sql, [], |r| r.get::<_, Option<String>>(0))
                    .expect("query")
                    .unwrap_or_default()
            };
            [
                get("SELECT CAST(count(*) AS TEXT) FROM _plinth_users"),
                get("SELECT CAST(count(*) AS TEXT) FROM _plinth_flags"),
                get("SELECT group_concat(name) FROM _plinth_models"),
                get("SELECT group_concat(name) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_plinth%' ESCAPE '\\'"),
            ]
            .join("|")
        }
    }
}

//! Commands beside a running server: `plinth migrate` (and its dry run) refuses while a
//! server uses the database, saying so, and works once it stops; on SQLite a second server
//! is refused too, while on PostgreSQL instances share the database and a destructive start
//! migration is refused beside them. Both engines.

use crate::helpers::{Server, TestDir, refused, run_ok};
use reqwest::StatusCode;
use serde_json::json;

const TITLE: &str = "[[models.fields]]\nname = \"title\"\ntype = \"string\"\n";
const PAGES: &str = "[[models.fields]]\nname = \"pages\"\ntype = \"integer\"\n";

fn declare(dir: &TestDir, fields: &[&str]) {
    dir.write_config(&format!(
        "[[models]]\nname = \"book\"\n\n{}",
        fields.join("\n")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_while_a_server_uses_the_database() {
    let dir = TestDir::new();
    declare(&dir, &[TITLE, PAGES]);
    let server = Server::start(&dir).await;
    let book = server
        .create(
            "book",
            &json!({"name": "Dune", "title": "Dune", "pages": 412}),
        )
        .await;
    let id = book["id"].as_str().expect("id").to_owned();

    // Dropping `pages` under the server would break it: refused, and the dry run says so.
    declare(&dir, &[TITLE]);
    let data = dir.data_arg();
    for args in [
        vec!["migrate", "--allow-destructive", "--data-dir", &data],
        vec!["migrate", "--dry-run", "--data-dir", &data],
    ] {
        let stderr = refused(&dir, &args, &[]).await.stderr;
        assert!(
            stderr.contains("server") && stderr.contains("is using"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("refused"), "{args:?}: {stderr}");
    }
    // The server never noticed.
    assert_eq!(server.read("book", &id).await["pages"], 412);
    let created = server
        .post("/api/v1/book", &json!({"name": "Emma", "pages": 474}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    if dir.postgres_url().is_some() {
        // Instances share a PostgreSQL database; one starting with a destructive change is
        // refused while another runs, and nothing is dropped.
        let serve = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--allow-destructive",
        ];
        let stderr = refused(&dir, &serve, &[]).await.stderr;
        assert!(stderr.contains("other instances"), "{stderr}");
        declare(&dir, &[TITLE, PAGES]);
        let peer = Server::start(&dir).await;
        assert_eq!(peer.read("book", &id).await["pages"], 412);
        peer.stop().await;
        declare(&dir, &[TITLE]);
    } else {
        // One server per SQLite file.
        let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
        let stderr = refused(&dir, &serve, &[]).await.stderr;
        assert!(
            stderr.contains("another plinth process is using"),
            "{stderr}"
        );
    }
    assert_eq!(server.read("book", &id).await["pages"], 412);
    server.stop().await;

    // Stopped: the dry run shows the step, and the migration applies.
    let dry = run_ok(&dir, &["migrate", "--dry-run", "--data-dir", &data], &[]).await;
    assert!(
        dry.stdout.contains("drop field book.pages"),
        "{}",
        dry.stdout
    );
    run_ok(
        &dir,
        &["migrate", "--allow-destructive", "--data-dir", &data],
        &[],
    )
    .await;
    let server = Server::start(&dir).await;
    assert_eq!(server.read("book", &id).await.get("pages"), None);
    server.stop().await;
}

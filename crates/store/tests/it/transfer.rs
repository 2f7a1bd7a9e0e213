//! `plinth export` / `plinth import` at the store level: SQLite to the engine under test
//! (PostgreSQL when PLINTH_TEST_POSTGRES is set, else a second SQLite file), losslessly.

use plinth_core::auth::Email;
use plinth_core::input::validate_draft;
use plinth_core::{FieldAccess, ModelDecl, Principal, Role, Schema};
use plinth_store::transfer::{self, TransferError};
use plinth_store::{
    AccountStore, NewUser, PgOptions, PgStore, SqliteOptions, SqliteStore, Store, WriteCtx,
};
use serde_json::json;
use std::sync::Arc;

fn ctx() -> WriteCtx {
    WriteCtx {
        actor: Principal::local_admin(),
        request_id: "test".to_owned(),
    }
}

fn schema() -> Schema {
    let decls: Vec<ModelDecl> = serde_json::from_value(json!([
        {"name": "customer", "fields": [
            {"name": "email", "type": "string", "unique": true},
            {"name": "born", "type": "datetime"},
            {"name": "score", "type": "float"},
            {"name": "meta", "type": "json"},
            {"name": "vip", "type": "boolean"}
        ]},
        {"name": "order", "fields": [
            {"name": "customer", "type": "reference", "model": "customer", "required": true},
            {"name": "total", "type": "integer"}
        ]}
    ]))
    .expect("decls");
    Schema::from_decls(&decls).expect("schema")
}

/// The target engine: PostgreSQL (a fresh database, dropped at the end) or SQLite.
async fn target(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Option<(String, String)>) {
    match std::env::var("PLINTH_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            let name = format!("plinth_test_{}", uuid::Uuid::now_v7().simple());
            let (admin, conn) =
                tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
                    .await
                    .expect("connect");
            tokio::spawn(conn);
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create db");
            let store = PgStore::open(PgOptions::new(format!("{server}/{name}")))
                .await
                .expect("open pg");
            (Arc::new(store), Some((server, name)))
        }
        _ => {
            eprintln!("note: PLINTH_TEST_POSTGRES not set; exporting SQLite to SQLite");
            let store = SqliteStore::open(SqliteOptions::new(dir.path().join("target.db")))
                .await
                .expect("open");
            (Arc::new(store), None)
        }
    }
}

async fn drop_db(pg: Option<(String, String)>) {
    if let Some((server, name)) = pg {
        let (admin, conn) =
            tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(conn);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .expect("drop db");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_moves_everything_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema();
    let source = SqliteStore::open(SqliteOptions::new(dir.path().join("source.db")))
        .await
        .expect("open source");
    source
        .migrate(&schema, false)
        .await
        .expect("migrate source");
    let email = Email::parse("Ada@Example.com").expect("email");
    let hash =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
            .to_owned();
    let user = source
        .create_user(
            &ctx(),
            NewUser {
                email,
                password_hash: hash.clone(),
                role: Role::Admin,
            },
        )
        .await
        .expect("user");
    let customer = Arc::clone(schema.model("customer").expect("customer"));
    let order = Arc::clone(schema.model("order").expect("order"));
    let mut ids = Vec::new();
    for i in 0..250 {
        let body = json!({"name": format!("c{i} 𝄞"), "email": format!("c{i}@x.io"), "born": "1999-12-31T23:59:59.123456Z",
                          "score": 0.1 + f64::from(i), "meta": {"tags": ["a", i], "nested": {"x": null}}, "vip": i % 2 == 0});
        let draft = validate_draft(&customer, &body, FieldAccess::All).expect("draft");
        ids.push(
            source
                .create(&ctx(), &customer, draft, None)
                .await
                .expect("create")
                .record
                .id,
        );
    }
    let draft = validate_draft(
        &order,
        &json!({"name": "o1", "customer": ids[0].to_string(), "total": 42}),
        FieldAccess::All,
    )
    .expect("order draft");
    source
        .create(&ctx(), &order, draft, None)
        .await
        .expect("order");
    source
        .delete(&ctx(), &customer, ids[1], None)
        .await
        .expect("soft delete");

    let mut dump = Vec::new();
    let counts = transfer::export(&source, &schema, &mut dump)
        .await
        .expect("export");
    assert_eq!((counts.users, counts.records), (1, 251));

    let (target, pg) = target(&dir).await;
    target
        .migrate(&schema, false)
        .await
        .expect("migrate target");
    let imported = transfer::import(target.as_ref(), &schema, &mut dump.as_slice())
        .await
        .expect("import");
    assert_eq!(imported, counts);

    // Exported again from the target, the file is identical: ids, times, owners, versions,
    // statuses, values and hashes all survived.
    let mut again = Vec::new();
    transfer::export(target.as_ref(), &schema, &mut again)
        .await
        .expect("export target");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&dump)
    );
    let moved = target
        .get_user(user.id)
        .await
        .expect("get")
        .expect("the user moved");
    assert_eq!(moved.password_hash, hash);
    let deleted = target
        .get(&customer, ids[1])
        .await
        .expect("get")
        .expect("record moved");
    assert_eq!(deleted.status, plinth_core::Status::Deleted);
    assert_eq!(deleted.version, 2);

    // A second import into the now populated target is refused, adding nothing.
    let err = transfer::import(target.as_ref(), &schema, &mut dump.as_slice())
        .await
        .expect_err("not empty");
    assert!(matches!(err, TransferError::NotEmpty(_)), "{err}");
    target.close().await;
    drop_db(pg).await;
}

#[tokio::test]
async fn garbage_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = schema();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db")))
        .await
        .expect("open");
    store.migrate(&schema, false).await.expect("migrate");
    for (input, line) in [
        ("", 0),
        ("not json\n", 1),
        ("{\"hello\": 1}\n", 1),
        (
            "{\"plinth_export\": 1, \"models\": []}\n{\"record\": {\"model\": \"nope\"}}\n",
            2,
        ),
        (
            "{\"plinth_export\": 1, \"models\": []}\n{\"user\": {\"id\": \"x\"}}\n",
            2,
        ),
    ] {
        let err = transfer::import(&store, &schema, &mut input.as_bytes())
            .await
            .expect_err("refused");
        match err {
            TransferError::Format { line: l, .. } => assert_eq!(l, line, "{input:?}"),
            other => panic!("{input:?}: {other}"),
        }
    }
    assert!(
        store.list_users(None, 1).await.expect("list").is_empty(),
        "nothing imported"
    );
}

//! The change log's tail in memory (`recent`): after writes of every kind, and an entry
//! that logs no change, it answers every read from where it starts exactly as the log
//! does; a change logged past it (on a path other than the batch's own append) sends reads
//! to the log, and the tail starts again at the head; so does a job run alone; and a record
//! of a model older than the schema is read from the log.

use super::super::{SqliteOptions, SqliteStore};
use crate::seal::{Keyring, Keys};
use crate::sql::{Query, audit, changes, ready};
use crate::{AccountStore, Store, WriteCtx};
use plinth_core::schema::ModelDecl;
use plinth_core::{FieldAccess, ModelDef, Principal, Schema};
use serde_json::json;
use std::sync::Arc;

async fn store() -> (tempfile::TempDir, SqliteStore, Arc<ModelDef>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SqliteOptions::new(dir.path().join("db.sqlite"));
    opts.keys = Keys::fixed(Keyring::generate().expect("keys"));
    let store = SqliteStore::open(opts).await.expect("open");
    let model = migrate(&store, &[]).await;
    (dir, store, model)
}

/// Migrates `store` to the `person` model, with `more` fields after its own three;
/// returns the model.
pub(super) async fn migrate(store: &SqliteStore, more: &[serde_json::Value]) -> Arc<ModelDef> {
    let schema = person(more);
    store.migrate(&schema, false).await.expect("migrate");
    Arc::clone(schema.model("person").expect("person"))
}

/// The schema of the `person` model, with `more` fields after its own three.
pub(super) fn person(more: &[serde_json::Value]) -> Schema {
    let mut fields = vec![
        json!({"name": "contact", "type": "string", "pii": true}),
        json!({"name": "age", "type": "integer"}),
        json!({"name": "meta", "type": "json"}),
    ];
    fields.extend_from_slice(more);
    let decls: Vec<ModelDecl> =
        serde_json::from_value(json!([{"name": "person", "fields": fields}]))
            .expect("declarations");
    Schema::from_decls(&decls).expect("a schema")
}

pub(super) fn ctx() -> WriteCtx {
    WriteCtx::new(Principal::local_admin(), "tail")
}

pub(super) async fn create(
    store: &SqliteStore,
    model: &Arc<ModelDef>,
    n: i64,
) -> plinth_core::Record {
    let body = json!({"name": format!("p{n}"), "contact": format!("p{n}@example.com"),
        "age": n, "meta": {"n": n}});
    let draft =
        plinth_core::input::validate_draft(model, &body, FieldAccess::All).expect("a valid draft");
    store
        .create(&ctx(), model, draft, None)
        .await
        .expect("create")
        .record
}

/// The page the log itself reads, on a read connection.
async fn from_log(store: &SqliteStore, after: i64, limit: u32) -> crate::ChangesPage {
    let (keys, schema) = (store.inner.keys.clone(), store.schema());
    store
        .read(move |c| ready(changes::after(c, &keys, &schema, after, limit)))
        .await
        .expect("read the log")
}

async fn head(store: &SqliteStore) -> i64 {
    store.change_window().await.expect("the window").head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tail_reads_as_the_log_does() {
    let (_dir, store, model) = store().await;
    // The first commit after a new schema starts the tail again at the head.
    let a = create(&store, &model, 1).await;
    let start = head(&store).await;
    let b = create(&store, &model, 2).await;
    let patch = plinth_core::input::validate_patch(&model, &json!({"age": 40}), FieldAccess::All)
        .expect("a valid patch");
    store
        .update(&ctx(), &model, a.id, patch, Some(1))
        .await
        .expect("update");
    store
        .delete(&ctx(), &model, b.id, None)
        .await
        .expect("delete");
    store.restore(&ctx(), &model, b.id).await.expect("restore");
    store
        .purge(&ctx(), &model, b.id, None)
        .await
        .expect("purge");
    // Writes at once: batches of several.
    let writes = (10..30).map(|n| {
        let (store, model) = (store.clone(), Arc::clone(&model));
        tokio::spawn(async move { create(&store, &model, n).await })
    });
    for w in writes.collect::<Vec<_>>() {
        w.await.expect("a create");
    }
    // An entry that logs no change: an account event.
    store
        .create_user(
            &ctx(),
            crate::NewUser {
                email: plinth_core::auth::Email::parse("ada@example.com").expect("an email"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
                role: plinth_core::Role::User,
            },
        )
        .await
        .expect("a user");
    create(&store, &model, 99).await;
    let end = head(&store).await;

    let mut served = 0;
    for after in start..=end {
        for limit in [0, 1, 3, 1000] {
            let tail = store
                .inner
                .recent
                .after(after, limit)
                .unwrap_or_else(|| panic!("the tail holds what follows {after}"));
            let log = from_log(&store, after, limit).await;
            assert_eq!(tail, log, "after {after}, pages of {limit}");
            served += tail.changes.len();
        }
    }
    assert!(served > 0);
    let batches = store.engine_stats().writer.expect("the writer").batch_sizes;
    assert!(
        batches.buckets.iter().skip(1).any(|b| b.1 > 0),
        "some batch held several writes: {batches:?}"
    );
    let all = store.changes_after(start, 1000).await.expect("all");
    assert_eq!(all.changes.len(), 1 + 4 + 20 + 1);
    assert_eq!(all.through, end);
    assert!(store.inner.recent.after(end + 1, 10).is_none());
    store.close().await;
}

#[tokio::test]
async fn a_change_logged_past_the_tail_is_read_from_the_log() {
    let (_dir, store, model) = store().await;
    let made = create(&store, &model, 1).await;
    let before = head(&store).await;
    assert!(store.inner.recent.after(before, 10).is_some());
    // A change logged in a write job, but not by the batch's own append.
    let (keys, m, logged_record) = (store.inner.keys.clone(), Arc::clone(&model), made.clone());
    store
        .write(move |w| {
            let seq = before + 1;
            let at = w.now();
            let mut q = Query::new(crate::sql::Dialect::Sqlite);
            q.push(
                "INSERT INTO _plinth_audit (seq, at, actor_kind, actor_label, action, \
                 request_id, changes, prev_hash, hash) VALUES (",
            )
            .bind(seq)
            .push(", ")
            .bind(at)
            .push(", 'system', 'test', 'record.update', 'r', '{}', '', '')");
            ready(crate::sql::Exec::execute(&w.conn, &q))?;
            let logged =
                changes::snapshot(&keys, &m, crate::ChangeKind::Updated, &logged_record, None)?;
            let mut q = Query::new(crate::sql::Dialect::Sqlite);
            q.push(changes::INSERT);
            changes::push_row(&mut q, &logged, seq, at);
            ready(crate::sql::Exec::execute(&w.conn, &q))?;
            // And an entry the batch's own append makes, after it.
            let by = crate::sql::records::By {
                ctx: &ctx(),
                now: at,
                keys: &keys,
            };
            let event = crate::Event::Logout;
            ready(audit::append_event(&w.conn, by, event, None, &json!({})))
        })
        .await
        .expect("the write");
    let page = store.changes_after(before, 10).await.expect("a page");
    assert_eq!(page.changes.len(), 1, "{page:?}");
    assert_eq!(page.changes[0].seq, before + 1);
    assert_eq!(page.changes[0].record, made);
    // The tail starts again at the head, and holds what follows.
    let next = create(&store, &model, 2).await;
    let page = store.changes_after(before + 2, 10).await.expect("a page");
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].record, next);
    assert!(store.inner.recent.after(before + 2, 10).is_some());
    assert!(store.inner.recent.after(before + 1, 10).is_none());

    // A job run alone forgets the tail; the next commit starts it again at the head.
    let schema = store.schema();
    let held = head(&store).await;
    assert!(store.inner.recent.after(held - 1, 10).is_some());
    store.migrate(&schema, false).await.expect("migrate again");
    assert!(store.inner.recent.after(held - 1, 10).is_none());
    let page = store.changes_after(before + 1, 10).await.expect("a page");
    assert_eq!(page.changes.len(), 1);
    create(&store, &model, 3).await;
    let now = head(&store).await;
    let last = create(&store, &model, 4).await;
    let page = store.inner.recent.after(now, 10).expect("the tail again");
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].record, last);
    store.close().await;
}

/// A record written with a model older than the store's schema (fewer fields) is not
/// served from the tail: the log reads it against the models as they are.
#[tokio::test]
async fn a_record_of_a_stale_model_is_read_against_the_schema() {
    let (_dir, store, old) = store().await;
    let new = migrate(&store, &[json!({"name": "nick", "type": "string"})]).await;
    // The first commit after the new schema starts the tail again at the head.
    create(&store, &new, 1).await;
    let before = head(&store).await;
    let stale = create(&store, &old, 2).await;
    let held = store.inner.recent.after(before, 10).expect("the tail");
    assert_eq!(held.changes[0].record.fields.len(), 3);
    let page = store.changes_after(before, 10).await.expect("a page");
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].record.id, stale.id);
    assert_eq!(page.changes[0].record.fields.len(), 4);
    assert_eq!(page.changes[0].record.fields[3], plinth_core::Value::Null);
    store.close().await;
}

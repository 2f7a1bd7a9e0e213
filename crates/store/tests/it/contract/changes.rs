//! The change log: every record write logs one change in its transaction, with the `seq`
//! of its audit entry and the record as it stood after the write (before it, for a purge);
//! a refused write logs nothing; writes at once log in `seq` order; pii is sealed in the
//! log and opened when read; the log is read against the schema as it is now; the prune
//! raises the window and keeps newer changes; the signal bumps after a local write; an
//! import starts the window at its head.

use super::{Engine, admin, draft, model, patch};
use plinth_core::{Record, RecordId, Timestamp, Value};
use plinth_store::{AuditEntry, Change, ChangeKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

contract!(
    each_write_logs_one_change_with_its_audit_seq_and_snapshot,
    a_refused_write_logs_nothing,
    writes_at_once_log_in_seq_order_matching_the_audit_trail,
    pii_is_sealed_in_the_log_and_opened_when_read,
    the_log_is_read_against_the_schema_as_it_is_now,
    the_prune_raises_the_window_and_keeps_newer_changes,
    the_signal_bumps_after_a_local_write,
    an_import_starts_the_window_at_its_head,
    a_page_of_dropped_model_changes_still_moves_its_reader_on,
);

fn book_decls() -> serde_json::Value {
    json!([
        {"name": "author", "fields": []},
        {"name": "book", "fields": [
            {"name": "pages", "type": "integer"},
            {"name": "author", "type": "reference", "model": "author"}
        ]}
    ])
}

async fn changes(store: &dyn Store) -> Vec<Change> {
    store
        .changes_after(0, 1000)
        .await
        .expect("read the log")
        .changes
}

/// The audit entries of record writes, in `seq` order.
async fn record_entries(store: &dyn Store) -> Vec<AuditEntry> {
    let all = store.audit_list(0, 10_000).await.expect("list the audit");
    all.into_iter()
        .filter(|e| e.action.starts_with("record."))
        .collect()
}

fn now() -> Timestamp {
    Timestamp::from_system(std::time::SystemTime::now())
}

async fn each_write_logs_one_change_with_its_audit_seq_and_snapshot(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    let s = &*e.store;
    let created = e
        .create(&admin(), &book, json!({"name": "dune", "pages": 412}))
        .await;
    let id = created.id;
    let updated = s
        .update(
            &admin(),
            &book,
            id,
            patch(&book, &json!({"pages": 500})),
            Some(1),
        )
        .await
        .expect("update");
    let deleted = s.delete(&admin(), &book, id, None).await.expect("delete");
    let restored = s.restore(&admin(), &book, id).await.expect("restore");
    s.purge(&admin(), &book, id, None).await.expect("purge");

    let log = changes(s).await;
    let kinds: Vec<ChangeKind> = log.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, [Created, Updated, Deleted, Restored, Purged]);
    let expected: Vec<&Record> = vec![&created, &updated, &deleted, &restored, &restored];
    for (c, r) in log.iter().zip(expected) {
        assert_eq!(&c.record, r, "{:?}", c.kind);
        assert_eq!(c.model, "book");
    }
    let entries = record_entries(s).await;
    let seqs = |x: &[i64]| x.to_vec();
    assert_eq!(
        seqs(&log.iter().map(|c| c.seq).collect::<Vec<_>>()),
        entries.iter().map(|x| x.seq).collect::<Vec<_>>()
    );
    for (c, entry) in log.iter().zip(&entries) {
        assert_eq!(c.at, entry.at);
        assert_eq!(entry.record_id, Some(id));
    }
    // From a seq on: only what came after it.
    let tail = s
        .changes_after(log[2].seq, 1000)
        .await
        .expect("the tail")
        .changes;
    assert_eq!(
        tail.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [Restored, Purged]
    );
    let one = s.changes_after(0, 1).await.expect("a page of one");
    assert_eq!(one.changes.len(), 1);
    assert!(one.full);
    assert_eq!(one.through, log[0].seq);
    let window = s.change_window().await.expect("the window");
    assert_eq!(window.head, entries.last().map_or(0, |x| x.seq));
    assert_eq!(window.pruned_through, 0);
}

async fn a_refused_write_logs_nothing(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    let s = &*e.store;
    let made = e.create(&admin(), &book, json!({"name": "dune"})).await;
    let before = changes(s).await;
    let head = s.change_window().await.expect("window").head;

    let stale = s
        .update(
            &admin(),
            &book,
            made.id,
            patch(&book, &json!({"pages": 1})),
            Some(7),
        )
        .await
        .expect_err("a stale version");
    assert!(matches!(stale, StoreError::Stale { .. }), "{stale:?}");
    let missing = RecordId::new_v7().to_string();
    let body = json!({"name": "x", "author": missing});
    let refused = s
        .create(&admin(), &book, draft(&book, &body), None)
        .await
        .expect_err("a reference to nothing");
    assert!(
        matches!(refused, StoreError::InvalidReference { .. }),
        "{refused:?}"
    );
    let gone = s
        .restore(&admin(), &book, made.id)
        .await
        .expect_err("not deleted");
    assert!(matches!(gone, StoreError::Conflict { .. }), "{gone:?}");

    assert_eq!(changes(s).await, before);
    assert_eq!(s.change_window().await.expect("window").head, head);
}

async fn writes_at_once_log_in_seq_order_matching_the_audit_trail(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    let mut tasks = Vec::new();
    for n in 0..24 {
        let (store, book) = (Arc::clone(&e.store), Arc::clone(&book));
        tasks.push(tokio::spawn(async move {
            let body = json!({"name": format!("b{n}"), "pages": n});
            let d = draft(&book, &body);
            let made = store
                .create(&admin(), &book, d, None)
                .await
                .expect("create");
            let p = patch(&book, &json!({"pages": n + 100}));
            store
                .update(&admin(), &book, made.record.id, p, Some(1))
                .await
                .expect("update");
            made.record.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("a writer"));
    }
    let log = changes(&*e.store).await;
    let entries = record_entries(&*e.store).await;
    assert_eq!(log.len(), 48);
    assert_eq!(
        log.iter().map(|c| (c.seq, c.record.id)).collect::<Vec<_>>(),
        entries
            .iter()
            .map(|x| (x.seq, x.record_id.expect("a record")))
            .collect::<Vec<_>>()
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    for id in ids {
        let of: Vec<_> = log.iter().filter(|c| c.record.id == id).collect();
        assert_eq!(of.len(), 2);
        assert_eq!(
            (of[0].kind, of[1].kind),
            (ChangeKind::Created, ChangeKind::Updated)
        );
        assert_eq!(of[1].record.version, 2);
    }
}

async fn pii_is_sealed_in_the_log_and_opened_when_read(e: &Engine) {
    let schema = e
        .migrate(json!([{"name": "customer", "fields": [
            {"name": "email", "type": "string", "pii": true}
        ]}]))
        .await;
    let customer = model(&schema, "customer");
    let s = &*e.store;
    let secret = "very-secret-mail@example.org";
    let made = e
        .create(&admin(), &customer, json!({"name": "c", "email": secret}))
        .await;
    let other = "other-secret-mail@example.org";
    s.update(
        &admin(),
        &customer,
        made.id,
        patch(&customer, &json!({"email": other})),
        None,
    )
    .await
    .expect("update");
    let raw = e.raw_contents("_plinth_changes").await;
    assert!(e.is_postgres() || raw.contains("_plinth_changes"));
    assert!(
        !raw.contains(secret) && !raw.contains("very-secret"),
        "plaintext pii"
    );
    assert!(
        !raw.contains(other) && !raw.contains("other-secret"),
        "plaintext pii"
    );
    let log = changes(s).await;
    let emails: Vec<&Value> = log.iter().map(|c| &c.record.fields[0]).collect();
    assert_eq!(
        emails,
        [
            &Value::Text(secret.to_owned()),
            &Value::Text(other.to_owned())
        ]
    );
    // A value that can no longer be opened (its key retired; here a key id no keyring
    // holds) reads as null; the page is still read. Read by another store over the
    // database: the writing store's tail in memory (SQLite) holds the records as written,
    // and is set aside only when its keys are read again.
    e.raw("UPDATE _plinth_changes SET record = replace(record, '\"v1:', '\"v1:zz')")
        .await;
    let restarted = e.reopen(false).await.expect("reopen");
    restarted.adopt(&schema).await.expect("adopt");
    let log = changes(&*restarted).await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|c| c.record.fields == vec![Value::Null]));
    assert_eq!(log[1].record.name, "c");
    if e.is_postgres() {
        // The raw rows are there, and each holds a sealed value in the field's place.
        assert_eq!(raw.lines().count(), 2);
        assert!(raw.contains("v1:"), "{raw}");
    }
}

async fn the_log_is_read_against_the_schema_as_it_is_now(e: &Engine) {
    let s = &*e.store;
    let first = e
        .migrate(json!([
            {"name": "note", "fields": []},
            {"name": "book", "fields": [{"name": "pages", "type": "integer"}]}
        ]))
        .await;
    let book = model(&first, "book");
    let made = e
        .create(&admin(), &book, json!({"name": "dune", "pages": 412}))
        .await;
    e.create(&admin(), &model(&first, "note"), json!({"name": "n"}))
        .await;
    // Later: `pages` dropped, `tag` declared, `note` gone.
    let later = super::schema(json!([
        {"name": "book", "fields": [{"name": "tag", "type": "string"}]}
    ]));
    s.migrate(&later, true).await.expect("migrate, dropping");
    let log = changes(s).await;
    assert_eq!(log.len(), 1, "the note's change is skipped");
    assert_eq!(log[0].record.id, made.id);
    assert_eq!(log[0].record.name, "dune");
    assert_eq!(log[0].record.fields, vec![Value::Null]);
    assert_eq!(log[0].record.version, 1);
}

async fn the_prune_raises_the_window_and_keeps_newer_changes(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    let s = &*e.store;
    for n in 0..3 {
        e.create(&admin(), &book, json!({"name": format!("old{n}")}))
            .await;
    }
    let boundary = now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for n in 0..2 {
        e.create(&admin(), &book, json!({"name": format!("new{n}")}))
            .await;
    }
    let log = changes(s).await;
    assert_eq!(log.len(), 5);
    // A limit bounds the prune; only changes made before `before` go.
    assert_eq!(s.prune_changes(boundary, 1).await.expect("prune one"), 1);
    assert_eq!(
        s.change_window().await.expect("window").pruned_through,
        log[0].seq
    );
    assert_eq!(s.prune_changes(boundary, 100).await.expect("prune"), 2);
    assert_eq!(s.prune_changes(boundary, 100).await.expect("again"), 0);
    let window = s.change_window().await.expect("window");
    assert_eq!(window.pruned_through, log[2].seq);
    assert_eq!(window.head, log[4].seq);
    let kept = changes(s).await;
    assert_eq!(kept, log[3..].to_vec());
    // Everything, then: the window is the last seq, the log empty.
    assert_eq!(s.prune_changes(now(), 100).await.expect("all"), 2);
    let window = s.change_window().await.expect("window");
    assert_eq!(
        (window.pruned_through, window.head),
        (log[4].seq, log[4].seq)
    );
    assert!(changes(s).await.is_empty());
}

async fn the_signal_bumps_after_a_local_write(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    let mut signal = e.store.change_signal();
    signal.borrow_and_update();
    let made = e.create(&admin(), &book, json!({"name": "dune"})).await;
    // On PostgreSQL the write's own notice bumps it, just after the commit.
    let bumped = tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed()).await;
    assert!(bumped.is_ok_and(|open| open.is_ok()), "bumped");
    let seen = *signal.borrow_and_update();
    // By the time it is seen, the change is in the log.
    let log = changes(&*e.store).await;
    assert_eq!(log.last().map(|c| c.record.id), Some(made.id));
    e.store
        .delete(&admin(), &book, made.id, None)
        .await
        .expect("delete");
    let bumped = tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed()).await;
    assert!(bumped.is_ok_and(|open| open.is_ok()), "bumped again");
    assert!(*signal.borrow_and_update() > seen);
}

async fn an_import_starts_the_window_at_its_head(e: &Engine) {
    let schema = e.migrate(book_decls()).await;
    let book = model(&schema, "book");
    for n in 0..3 {
        e.create(&admin(), &book, json!({"name": format!("b{n}")}))
            .await;
    }
    let mut out = Vec::new();
    plinth_store::transfer::export(&*e.store, &mut out)
        .await
        .expect("export");
    let target = e.another().await;
    let lines = plinth_store::transfer::parse(&schema, &mut out.as_slice()).expect("parse");
    target.store.import(&schema, lines).await.expect("import");
    let window = target.store.change_window().await.expect("window");
    assert_eq!(window.pruned_through, window.head);
    assert!(changes(&*target.store).await.is_empty());
    target.store.close().await;
}

async fn a_page_of_dropped_model_changes_still_moves_its_reader_on(e: &Engine) {
    let s = &*e.store;
    let first = e
        .migrate(json!([
            {"name": "note", "fields": []},
            {"name": "book", "fields": []}
        ]))
        .await;
    let note = model(&first, "note");
    for n in 0..300 {
        e.create(&admin(), &note, json!({"name": format!("n{n}")}))
            .await;
    }
    let made = e
        .create(&admin(), &model(&first, "book"), json!({"name": "dune"}))
        .await;
    let later = super::schema(json!([{"name": "book", "fields": []}]));
    s.migrate(&later, true).await.expect("migrate, dropping");
    let all = changes(s).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].record.id, made.id);
    // What the hub and the replay do: read pages of 256 from 0, each after the last's
    // `through`, until one is not full.
    let first_page = s.changes_after(0, 256).await.expect("read");
    assert!(
        first_page.changes.is_empty(),
        "256 rows of the dropped model"
    );
    assert!(first_page.full);
    assert!(first_page.through > 0);
    let mut after = first_page.through;
    let mut seen = Vec::new();
    loop {
        let page = s.changes_after(after, 256).await.expect("read");
        assert!(page.through >= after);
        seen.extend(page.changes.iter().map(|c| c.record.id));
        after = page.through;
        if !page.full {
            break;
        }
    }
    assert_eq!(seen, [made.id]);
    assert_eq!(
        after, all[0].seq,
        "the last page reads through the last row"
    );
    // Read from the end: nothing, and `through` stays where it was asked.
    let none = s.changes_after(after, 256).await.expect("read");
    assert_eq!(
        (none.changes.len(), none.through, none.full),
        (0, after, false)
    );
}

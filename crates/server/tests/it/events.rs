//! The change feed, end to end over real HTTP on the engine of the run: what a stream
//! sends (every kind of write, in order, with the record as `GET` shows it), which records
//! it sends (filters, `id=`, several models, the read policy, `admin_only` fields), and
//! how it resumes (`Last-Event-ID`, `after`, `reset`).
//!
//! Each test waits for `ready` before writing, and ends its writes with one the stream
//! must send: events come in `seq` order, so receiving it proves nothing before it that
//! should have come was left out.

use crate::helpers::sse::Event;
use crate::helpers::{TestApp, decls, id_of};
use plinth_core::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Books with a page count and an author's name.
async fn library() -> TestApp {
    TestApp::spawn_with(decls(json!([
        {"name": "book", "fields": [
            {"name": "pages", "type": "integer"},
            {"name": "title", "type": "string"}
        ]},
        {"name": "author"},
        {"name": "note"}
    ])))
    .await
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| id_of(&e.data["record"])).collect()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn assert_increasing(events: &[Event]) {
    let seqs: Vec<i64> = events.iter().map(Event::seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq not increasing: {seqs:?}"
    );
}

#[tokio::test]
async fn every_write_is_sent_in_order_with_the_record_as_get_shows_it() {
    let app = TestApp::spawn().await;
    let (mut sse, start) = app.subscribe("/api/v1/resource/events").await;
    let created = app.create_ok("resource", &json!({"name": "first"})).await;
    let id = id_of(&created);
    let (status, updated) = app
        .patch("resource", &id, &json!({"name": "second"}), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let updated = app.get_ok("resource", &id).await;
    assert!(app.delete("resource", &id).await.0.is_success());
    let restored = app.restore_resp("resource", &id).await;
    assert!(restored.status.is_success(), "{}", restored.body);
    let restored = app.get_ok("resource", &id).await;
    let purged = app.purge_resp("resource", &id).await;
    assert!(purged.status.is_success(), "{}", purged.body);

    let events = sse.changes(5).await;
    assert_eq!(
        kinds(&events),
        ["created", "updated", "deleted", "restored", "purged"]
    );
    assert_increasing(&events);
    assert!(events[0].seq() > start, "{start} then {:?}", events[0]);
    for e in &events {
        assert_eq!(e.data["model"], json!("resource"));
        let at = e.data["at"].as_str().expect("at");
        Timestamp::parse(at).unwrap_or_else(|err| panic!("at {at}: {err}"));
    }
    assert_eq!(events[0].data["record"], created);
    assert_eq!(events[1].data["record"], updated);
    let deleted = &events[2].data["record"];
    assert_eq!(deleted["status"], json!("deleted"));
    assert_eq!(deleted["version"], json!(3));
    assert_eq!(events[3].data["record"], restored);
    // A purge shows the record as it was before it.
    assert_eq!(events[4].data["record"], restored);
}

#[tokio::test]
async fn filters_and_ids_narrow_a_stream() {
    let app = library().await;
    let (mut long, _) = app.subscribe("/api/v1/book/events?pages[gte]=100").await;
    let short = app
        .create_ok("book", &json!({"name": "short", "pages": 50}))
        .await;
    let big = app
        .create_ok("book", &json!({"name": "big", "pages": 150}))
        .await;
    let mut only_short = app
        .subscribe(&format!("/api/v1/book/events?id={}", id_of(&short)))
        .await
        .0;
    // Matched against the record after the write: shrinking it leaves the stream.
    app.patch("book", &id_of(&big), &json!({"pages": 20}), None)
        .await;
    app.patch("book", &id_of(&short), &json!({"pages": 500}), None)
        .await;
    let marker = app
        .create_ok("book", &json!({"name": "marker", "pages": 100}))
        .await;
    let events = long.changes(3).await;
    assert_eq!(
        ids(&events),
        [id_of(&big), id_of(&short), id_of(&marker)],
        "{events:?}"
    );
    assert_eq!(kinds(&events), ["created", "updated", "created"]);

    app.patch("book", &id_of(&short), &json!({"title": "again"}), None)
        .await;
    let events = only_short.changes(2).await;
    assert_eq!(ids(&events), [id_of(&short), id_of(&short)]);
    assert_eq!(events[0].data["record"]["pages"], json!(500));
    assert_eq!(events[1].data["record"]["title"], json!("again"));

    // The list's own filters: text patterns, several conditions, status.
    let (mut pattern, _) = app
        .subscribe("/api/v1/book/events?title[like]=*RUST*&status=active")
        .await;
    app.create_ok("book", &json!({"name": "a", "title": "Go"}))
        .await;
    let rust = app
        .create_ok("book", &json!({"name": "b", "title": "Learning rust"}))
        .await;
    assert!(app.delete("book", &id_of(&rust)).await.0.is_success());
    let last = app
        .create_ok("book", &json!({"name": "c", "title": "rusty"}))
        .await;
    let events = pattern.changes(2).await;
    assert_eq!(ids(&events), [id_of(&rust), id_of(&last)], "{events:?}");
}

#[tokio::test]
async fn one_stream_follows_several_models() {
    let app = library().await;
    let (mut sse, _) = app.subscribe("/api/v1/events?models=book,author").await;
    let book = app.create_ok("book", &json!({"name": "b"})).await;
    app.create_ok("note", &json!({"name": "not followed"}))
        .await;
    let author = app.create_ok("author", &json!({"name": "a"})).await;
    let events = sse.changes(2).await;
    assert_eq!(ids(&events), [id_of(&book), id_of(&author)]);
    assert_eq!(events[0].data["model"], json!("book"));
    assert_eq!(events[1].data["model"], json!("author"));
    assert_increasing(&events);
}

#[tokio::test]
async fn a_resume_sends_what_was_missed_once_then_goes_live() {
    let app = library().await;
    let (mut sse, _) = app.subscribe("/api/v1/book/events").await;
    let first = app.create_ok("book", &json!({"name": "1"})).await;
    let seen = sse.changes(1).await;
    let last_seen = seen[0].seq();
    drop(sse);
    // Writes go on while the client is away.
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(id_of(
            &app.create_ok("book", &json!({"name": format!("m{i}")}))
                .await,
        ));
    }
    app.patch("book", &id_of(&first), &json!({"pages": 7}), None)
        .await;
    missed.push(id_of(&first));

    let mut sse = app
        .subscribe_as(
            "/api/v1/book/events",
            Some(&app.admin_token),
            Some(last_seen),
        )
        .await;
    let (replayed, position) = sse.until_ready().await;
    assert_eq!(ids(&replayed), missed, "{replayed:?}");
    assert_increasing(&replayed);
    assert!(replayed[0].seq() > last_seen);
    assert_eq!(
        position,
        replayed.last().map(Event::seq).unwrap_or_default()
    );
    let live = app.create_ok("book", &json!({"name": "live"})).await;
    let events = sse.changes(1).await;
    assert_eq!(ids(&events), [id_of(&live)]);

    // `after=` does the same; the header wins over it.
    let path = format!("/api/v1/book/events?after={last_seen}");
    let mut by_query = app.subscribe_as(&path, Some(&app.admin_token), None).await;
    let (again, _) = by_query.until_ready().await;
    assert_eq!(ids(&again)[..missed.len()], missed[..]);
    let mut both = app
        .subscribe_as(
            "/api/v1/book/events?after=0",
            Some(&app.admin_token),
            Some(position),
        )
        .await;
    let (after_header, _) = both.until_ready().await;
    assert_eq!(ids(&after_header), [id_of(&live)]);
}

#[tokio::test]
async fn a_resume_outside_the_log_is_reset() {
    let app = library().await;
    let (mut sse, _) = app.subscribe("/api/v1/book/events").await;
    app.create_ok("book", &json!({"name": "1"})).await;
    let first = sse.changes(1).await[0].seq();
    app.create_ok("book", &json!({"name": "2"})).await;
    let second = sse.changes(1).await[0].seq();
    // Newer than anything the database holds (as after a restore).
    let mut unknown = app
        .subscribe_as(
            "/api/v1/book/events",
            Some(&app.admin_token),
            Some(second + 1000),
        )
        .await;
    let (before, position) = unknown.until_ready().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].event, "reset");
    assert_eq!(before[0].data["reason"], json!("unknown"));
    let head = before[0].data["position"].as_i64().expect("a position");
    assert_eq!((before[0].seq(), position), (head, head));
    assert!(head >= second);

    // Older than the log's window: the log pruned.
    let pruned = app
        .state
        .store()
        .prune_changes(
            Timestamp::from_system(
                std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
            ),
            1000,
        )
        .await
        .expect("prune the change log");
    assert!(pruned >= 2, "pruned {pruned}");
    let mut expired = app
        .subscribe_as("/api/v1/book/events", Some(&app.admin_token), Some(first))
        .await;
    let (before, position) = expired.until_ready().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].data["reason"], json!("expired"));
    assert_eq!(before[0].data["position"], json!(position));
    // The stream goes on live from there.
    let live = app.create_ok("book", &json!({"name": "3"})).await;
    assert_eq!(ids(&expired.changes(1).await), [id_of(&live)]);
}

#[tokio::test]
async fn a_user_receives_only_what_the_read_policy_lets_it_read() {
    let app = TestApp::spawn_with(decls(json!([
        {"name": "diary", "user_read": "own"},
        {"name": "account", "fields": [
            {"name": "note", "type": "string"},
            {"name": "credit", "type": "integer", "admin_only": true}
        ]},
        {"name": "ledger", "guest_read": false}
    ])))
    .await;
    let (_, alice) = app.user("alice@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let mut sse = app
        .subscribe_as("/api/v1/events?models=diary,account", Some(&alice), None)
        .await;
    sse.until_ready().await;
    let (mut admin, _) = app.subscribe("/api/v1/account/events").await;

    app.create_as("diary", &bob, &json!({"name": "bob's"}))
        .await;
    app.create_ok("diary", &json!({"name": "admin's"})).await;
    let mine = app
        .create_as("diary", &alice, &json!({"name": "alice's"}))
        .await;
    let account = app
        .create_ok("account", &json!({"name": "acc", "note": "n", "credit": 5}))
        .await;
    let events = sse.changes(2).await;
    assert_eq!(ids(&events), [id_of(&mine), id_of(&account)]);
    let record = &events[1].data["record"];
    assert!(record.get("credit").is_none(), "{record}");
    assert_eq!(record["note"], json!("n"));
    let seen = app
        .call_as(
            reqwest::Method::GET,
            &format!("/api/v1/account/{}", id_of(&account)),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(record, seen.data(StatusCode::OK));
    // The admin sees the field.
    let events = admin.changes(1).await;
    assert_eq!(events[0].data["record"]["credit"], json!(5));
    assert_eq!(events[0].data["record"], account);

    // A guest where guests may not read: the list's refusal.
    for path in [
        "/api/v1/ledger/events",
        "/api/v1/events?models=account,ledger",
    ] {
        let r = app.call_as(reqwest::Method::GET, path, None, None).await;
        crate::helpers::assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    // A guest where guests may read gets a stream; it is not sent what users own alone.
    let mut guest = app.subscribe_as("/api/v1/account/events", None, None).await;
    guest.until_ready().await;
    let open = app
        .create_as("account", &bob, &json!({"name": "open", "note": "bob's"}))
        .await;
    let events = guest.changes(1).await;
    assert_eq!(ids(&events), [id_of(&open)]);
    assert!(events[0].data["record"].get("credit").is_none());
    let _: Value = open;
}

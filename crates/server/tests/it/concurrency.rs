//! Racing writers and readers: conditional writes have one winner, idempotent creates make
//! one record, and keyset pages return every record exactly once while others insert.

use crate::helpers::{TestApp, id_of};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_patches_with_the_same_if_match_have_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    let id = id_of(
        &app.create_ok("resource", &json!({"name": "contested"}))
            .await,
    );
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (app, id, barrier) = (Arc::clone(&app), id.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = app
                .patch_resp(
                    "resource",
                    &id,
                    &json!({"name": format!("writer {i}")}),
                    Some("\"1\""),
                )
                .await;
            (i, r)
        }));
    }
    let mut winners = Vec::new();
    let mut stale = 0;
    for t in tasks {
        let (i, r) = t.await.expect("the task finishes");
        match r.status {
            StatusCode::OK => {
                assert_eq!(r.header("etag"), Some("\"2\""));
                winners.push(i);
            }
            StatusCode::PRECONDITION_FAILED => {
                crate::helpers::assert_error(
                    &r,
                    StatusCode::PRECONDITION_FAILED,
                    "PRECONDITION_FAILED",
                );
                stale += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(stale, n - 1);
    let record = app.get_ok("resource", &id).await;
    assert_eq!(record["version"], json!(2));
    assert_eq!(record["name"], json!(format!("writer {}", winners[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_with_one_idempotency_key_make_one_record() {
    let app = Arc::new(TestApp::spawn().await);
    let n = 12;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (app, barrier) = (Arc::clone(&app), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.create_idempotent("resource", "race", &json!({"name": "once"}))
                .await
        }));
    }
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let r = t.await.expect("the task finishes");
        ids.insert(id_of(r.data(StatusCode::CREATED)));
        if r.header("idempotent-replayed").is_none() {
            fresh += 1;
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1, "exactly one request created the record");
    assert_eq!(app.count_all("resource").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_of_one_unique_value_have_one_winner() {
    let app = Arc::new(
        TestApp::spawn_with(crate::helpers::decls(json!([{
            "name": "account",
            "fields": [{"name": "handle", "type": "string", "unique": true}]
        }])))
        .await,
    );
    let n = 10;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (app, barrier) = (Arc::clone(&app), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.create_resp(
                "account",
                &json!({"name": format!("a{i}"), "handle": "taken"}),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.expect("the task finishes");
        if r.status == StatusCode::CREATED {
            created += 1;
        } else {
            let fields = crate::helpers::assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
            assert_eq!(fields, ["handle"]);
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.count_all("account").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_writes_racing_accepted_ones_leave_the_accepted_ones_intact() {
    let app = Arc::new(
        TestApp::spawn_with(crate::helpers::decls(json!([{
            "name": "account",
            "fields": [{"name": "handle", "type": "string", "unique": true}]
        }])))
        .await,
    );
    let mut existing = Vec::new();
    for i in 0..10 {
        let body = json!({"name": format!("e{i}"), "handle": format!("e{i}")});
        existing.push(id_of(&app.create_ok("account", &body).await));
    }
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (app, barrier, existing) = (Arc::clone(&app), Arc::clone(&barrier), existing.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            match i % 4 {
                // A fresh handle: accepted.
                0 => {
                    app.create_resp(
                        "account",
                        &json!({"name": "n", "handle": format!("new{i}")}),
                    )
                    .await
                }
                // A taken handle: refused.
                1 => {
                    app.create_resp("account", &json!({"name": "n", "handle": "e0"}))
                        .await
                }
                // A current If-Match: accepted.
                2 => {
                    let id = &existing[i / 4];
                    app.patch_resp("account", id, &json!({"name": "patched"}), Some("\"1\""))
                        .await
                }
                // A stale If-Match: refused.
                _ => {
                    let id = &existing[i / 4];
                    app.patch_resp("account", id, &json!({"name": "stale"}), Some("\"7\""))
                        .await
                }
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("the task finishes");
        let expected = match i % 4 {
            0 => StatusCode::CREATED,
            1 => StatusCode::CONFLICT,
            2 => StatusCode::OK,
            _ => StatusCode::PRECONDITION_FAILED,
        };
        assert_eq!(r.status, expected, "task {i}: {}", r.body);
    }
    assert_eq!(app.count_all("account").await, 20);
    for (i, id) in existing.iter().enumerate() {
        let record = app.get_ok("account", id).await;
        assert_eq!(record["version"], json!(2), "{i}");
        assert_eq!(record["name"], json!("patched"), "{i}");
    }
    for i in (0..n).step_by(4) {
        let handle = format!("new{i}");
        assert_eq!(
            app.ids("account", &[("handle", handle.as_str())])
                .await
                .len(),
            1
        );
    }
}

/// Seeds `seed` records, then walks every page of `sort` with limit 7 while another task
/// keeps inserting; checks that each seeded record is seen exactly once and no record twice.
async fn walk_while_inserting(sort: &str, seed: usize) {
    let app = Arc::new(TestApp::spawn().await);
    let mut seeded = HashSet::new();
    for i in 0..seed {
        seeded.insert(id_of(
            &app.create_ok("resource", &json!({"name": format!("seed {i}")}))
                .await,
        ));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicUsize::new(0));
    let inserter = {
        let (app, stop, inserted) = (Arc::clone(&app), Arc::clone(&stop), Arc::clone(&inserted));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2000 {
                app.create_ok("resource", &json!({"name": format!("late {i}")}))
                    .await;
                inserted.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    // Let the inserter get going before the first page.
    while inserted.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut order = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "7")];
        if !sort.is_empty() {
            q.push(("sort", sort));
        }
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let r = app.list_resp("resource", &q).await;
        let data = r.data(StatusCode::OK).as_array().expect("a list").clone();
        assert!(data.len() <= 7);
        assert_eq!(r.body["page"]["limit"], json!(7));
        for rec in &data {
            *seen.entry(id_of(rec)).or_default() += 1;
            order.push(rec["created_at"].as_str().expect("created_at").to_owned());
        }
        pages += 1;
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 1000, "the walk does not end");
        // Let at least one insert land between two pages, so the walk races the inserter
        // however the machine schedules the two tasks.
        let before = inserted.load(Ordering::Relaxed);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while inserted.load(Ordering::Relaxed) == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    let inserted_during_walk = inserted.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    inserter.await.expect("the inserter finishes");
    assert!(inserted_during_walk > 1, "no insert overlapped the walk");

    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "records seen twice: {dupes:?}");
    let missing: Vec<_> = seeded.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} seeded records never seen",
        missing.len()
    );

    // The pages were in order.
    let mut sorted = order.clone();
    sorted.sort();
    if sort.starts_with('-') || sort.is_empty() {
        sorted.reverse();
    }
    assert_eq!(order, sorted, "pages out of order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_ascending_sees_every_record_once_under_concurrent_inserts() {
    walk_while_inserting("created_at", 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_default_order_sees_every_record_once_under_concurrent_inserts() {
    walk_while_inserting("", 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_explicit_descending_sees_every_record_once_under_concurrent_inserts() {
    walk_while_inserting("-created_at", 300).await;
}

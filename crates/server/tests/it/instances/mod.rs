//! Several instances on one PostgreSQL database, as behind a load balancer: each has its own
//! store (pool), `AppState` and `Auth`, and only the database is shared. A write through one
//! is visible through the other at once, `If-Match` and idempotency keys hold across them,
//! and a revoked key, a changed account or a spent refresh token counts on every instance:
//! the other instance is told through the database, before its credential cache would have
//! let the change through anyway.
//!
//! PostgreSQL only: each test prints why it is skipped when `PLINTH_TEST_POSTGRES` is unset.

use crate::helpers::{
    PASSWORD, TestApp, TestDb, Tokens, assert_error, decls, id_of, make_user, postgres_server,
    test_auth_config,
};
use plinth_core::Role;
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// How long an instance trusts a credential it checked without asking the database again:
/// the server's credential cache TTL. A change made through another instance reaches it
/// sooner only through the database's notification; these tests tell the two apart.
const CACHE_TTL: Duration = Duration::from_millis(500);
/// A round decides only when the change through A completed within this of B caching the
/// credential, leaving B the rest of [`CACHE_TTL`] to show that it was told.
const DECISIVE: Duration = Duration::from_millis(200);
/// Rounds tried before giving up on a machine too slow to decide.
const ROUNDS: usize = 5;

/// What a round showed.
#[derive(Debug)]
enum Round {
    /// B refused the credential while its cache entry was still fresh: it was told.
    Told,
    /// The change through A took this long after B cached the credential: too long to
    /// tell a notification from the entry's expiry, so the round proves nothing.
    Undecided(Duration),
}

/// Polls `path` on B with `credential`, which B cached (its first request with it) at
/// `cached` and another instance has just revoked. B must refuse it before the cached entry
/// could have expired: only the notification can make it forget the credential that soon.
async fn refused_before_the_cache_expires(
    b: &TestApp,
    path: &str,
    credential: &str,
    cached: Instant,
) -> Round {
    let revoked_after = cached.elapsed();
    if revoked_after >= DECISIVE {
        return Round::Undecided(revoked_after);
    }
    // B's entry lasts until at least `cached + CACHE_TTL`: B set its expiry after `cached`.
    let expiry = cached + CACHE_TTL;
    loop {
        let r = b.call_as(Method::GET, path, Some(credential), None).await;
        let answered = Instant::now();
        let status = r.status;
        assert!(
            answered < expiry,
            "B answered {status} {:?} after caching a credential that A revoked {revoked_after:?} \
             after that: B was not told, it refuses only once its cache entry expires",
            answered - cached
        );
        if status != StatusCode::OK {
            assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
            return Round::Told;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fails the test when no round decided.
fn undecided(rounds: &[Duration]) -> ! {
    panic!(
        "every change through A took at least {DECISIVE:?} after B cached the credential \
         ({rounds:?}): too slow to tell a notification from cache expiry"
    )
}

/// Instances A and B over one fresh PostgreSQL database, or `None` (skipped, with the
/// reason printed) without PostgreSQL.
async fn two_instances(test: &str) -> Option<(Arc<TestApp>, Arc<TestApp>)> {
    let server = postgres_server(test)?;
    let db = TestDb::postgres(&server).await;
    let a = TestApp::spawn_on(db, Vec::new(), ServerConfig::default(), test_auth_config()).await;
    let b = a.spawn_peer().await;
    assert_ne!(a.addr, b.addr, "two listeners");
    Some((Arc::new(a), Arc::new(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_one_instance_is_read_through_the_other_at_once() {
    let Some((a, b)) =
        two_instances("a_write_through_one_instance_is_read_through_the_other_at_once").await
    else {
        return;
    };
    let created = a.create_resp("resource", &json!({"name": "shared"})).await;
    let record = created.data(StatusCode::CREATED).clone();
    let id = id_of(&record);

    // B reads it by id and in lists, with the same representation and ETag.
    let read = b.get_resp("resource", &id, None).await;
    assert_eq!(read.data(StatusCode::OK), &record);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(b.ids("resource", &[]).await, vec![id.clone()]);

    // A write through B is read through A at once, and vice versa.
    let (status, body) = b
        .patch(
            "resource",
            &id,
            &json!({"name": "changed on B"}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_a = a.get_ok("resource", &id).await;
    assert_eq!(on_a["name"], json!("changed on B"));
    assert_eq!(on_a["version"], json!(2));
    let listed = a.list_all("resource", &[]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], json!("changed on B"));

    let (status, body) = a.delete("resource", &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(b.get_ok("resource", &id).await["status"], json!("deleted"));
    assert!(b.ids("resource", &[]).await.is_empty());
    assert_eq!(b.ids("resource", &[("status", "deleted")]).await, vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_patches_split_across_instances_have_one_winner() {
    let Some((a, b)) =
        two_instances("parallel_patches_split_across_instances_have_one_winner").await
    else {
        return;
    };
    let id = id_of(&a.create_ok("resource", &json!({"name": "contested"})).await);
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        // Even writers go through A, odd ones through B: ten each.
        let app = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let (id, barrier) = (id.clone(), Arc::clone(&barrier));
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
                assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
                stale += 1;
            }
            other => panic!("writer {i}: unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(stale, n - 1);
    let expected = json!(format!("writer {}", winners[0]));
    for app in [&a, &b] {
        let record = app.get_ok("resource", &id).await;
        assert_eq!(record["version"], json!(2));
        assert_eq!(record["name"], expected);
    }
}

/// Sends the same create with `key` through A and B at the same moment, with the bodies
/// given.
async fn race_creates(
    a: &Arc<TestApp>,
    b: &Arc<TestApp>,
    key: &str,
    bodies: [Value; 2],
) -> [crate::helpers::Resp; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let [body_a, body_b] = bodies;
    let spawn = |app: &Arc<TestApp>, body: Value| {
        let (app, barrier, key) = (Arc::clone(app), Arc::clone(&barrier), key.to_owned());
        tokio::spawn(async move {
            barrier.wait().await;
            app.create_idempotent("resource", &key, &body).await
        })
    };
    let (ta, tb) = (spawn(a, body_a), spawn(b, body_b));
    [
        ta.await.expect("the create through A finishes"),
        tb.await.expect("the create through B finishes"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_used_on_both_instances_at_once_makes_one_record() {
    let Some((a, b)) =
        two_instances("an_idempotency_key_used_on_both_instances_at_once_makes_one_record").await
    else {
        return;
    };
    // Several rounds, so the requests really overlap in at least some of them.
    let rounds = 8;
    let mut all_ids = HashSet::new();
    for round in 0..rounds {
        let key = format!("race-{round}");
        let body = json!({"name": format!("once {round}")});
        let answers = race_creates(&a, &b, &key, [body.clone(), body]).await;
        let ids: HashSet<String> = answers
            .iter()
            .map(|r| id_of(r.data(StatusCode::CREATED)))
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: both answers name one record");
        let replayed: Vec<Option<&str>> = answers
            .iter()
            .map(|r| r.header("idempotent-replayed"))
            .collect();
        assert_eq!(
            replayed.iter().filter(|h| h.is_none()).count(),
            1,
            "round {round}: exactly one answer made the record: {replayed:?}"
        );
        assert!(
            replayed.contains(&Some("true")),
            "round {round}: the other is a replay: {replayed:?}"
        );
        all_ids.extend(ids);
    }
    assert_eq!(all_ids.len(), rounds);
    assert_eq!(a.count_all("resource").await, rounds);
    assert_eq!(b.count_all("resource").await, rounds);

    // Later, the key still replays on either instance.
    for app in [&a, &b] {
        let again = app
            .create_idempotent("resource", "race-0", &json!({"name": "once 0"}))
            .await;
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert!(all_ids.contains(&id_of(again.data(StatusCode::CREATED))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_used_with_two_bodies_on_two_instances_is_a_conflict() {
    let Some((a, b)) =
        two_instances("an_idempotency_key_used_with_two_bodies_on_two_instances_is_a_conflict")
            .await
    else {
        return;
    };
    let rounds = 6;
    let mut winners = Vec::new();
    for round in 0..rounds {
        let key = format!("clash-{round}");
        let bodies = [
            json!({"name": format!("from A {round}")}),
            json!({"name": format!("from B {round}")}),
        ];
        let answers = race_creates(&a, &b, &key, bodies).await;
        let created: Vec<&crate::helpers::Resp> = answers
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .collect();
        assert_eq!(
            created.len(),
            1,
            "round {round}: {:?}",
            answers.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        let loser = answers
            .iter()
            .find(|r| r.status != StatusCode::CREATED)
            .expect("one answer is refused");
        let fields = assert_error(loser, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(fields, vec!["Idempotency-Key"], "round {round}");
        winners.push(created[0].data(StatusCode::CREATED).clone());
    }
    // One record per key, the winner's, as seen from either instance; nothing half-written.
    for app in [&a, &b] {
        assert_eq!(app.count_all("resource").await, rounds);
        for w in &winners {
            assert_eq!(&app.get_ok("resource", &id_of(w)).await, w);
        }
    }
    // A retry with the loser's body is still a conflict, on both instances.
    for app in [&a, &b] {
        let name = winners[0]["name"].as_str().expect("a name");
        let other = if name.starts_with("from A") {
            "from B 0"
        } else {
            "from A 0"
        };
        let r = app
            .create_idempotent("resource", "clash-0", &json!({"name": other}))
            .await;
        assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    }
    assert_eq!(a.count_all("resource").await, rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_key_revoked_through_one_instance_is_refused_by_the_other_at_once() {
    let Some((a, b)) =
        two_instances("an_api_key_revoked_through_one_instance_is_refused_by_the_other_at_once")
            .await
    else {
        return;
    };
    let (_, token) = a.user("ada@example.com").await;
    let mut slow = Vec::new();
    let key = loop {
        if slow.len() == ROUNDS {
            undecided(&slow);
        }
        let created = a.create_key(&token, &json!({"name": "ci"})).await;
        let data = created.data(StatusCode::CREATED);
        let key_id = data["id"].as_str().expect("a key id").to_owned();
        let key = data["key"]
            .as_str()
            .expect("the key, shown once")
            .to_owned();
        a.me(Some(&key)).await.data(StatusCode::OK);
        // B's first request with the key: B caches it from now on.
        let cached = Instant::now();
        b.call_as(Method::GET, "/api/v1/resource", Some(&key), None)
            .await
            .data(StatusCode::OK);
        b.me(Some(&key)).await.data(StatusCode::OK);

        let revoked = a
            .call_as(
                Method::DELETE,
                &format!("/api/v1/auth/api-keys/{key_id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
        match refused_before_the_cache_expires(&b, "/api/v1/resource", &key, cached).await {
            Round::Told => break key,
            Round::Undecided(took) => slow.push(took),
        }
    };
    // And it stays refused everywhere, whichever way it is sent.
    for app in [&a, &b] {
        assert_error(
            &app.me(Some(&key)).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        let header = app
            .send(
                app.request_as(Method::GET, "/api/v1/resource", None)
                    .header("x-api-key", &key),
            )
            .await;
        assert_error(&header, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_demoted_through_one_instance_loses_old_tokens_on_the_other_at_once() {
    let Some((a, b)) =
        two_instances("a_user_demoted_through_one_instance_loses_old_tokens_on_the_other_at_once")
            .await
    else {
        return;
    };
    let mut slow = Vec::new();
    let (email, token, session) = loop {
        if slow.len() == ROUNDS {
            undecided(&slow);
        }
        let email = format!("root{}@example.com", slow.len());
        let (second, token) = make_user(&a.state, &email, Role::Admin).await;
        let session = b.login_ok(&email, PASSWORD).await;
        // B's first requests as this account: B caches it from now on.
        let cached = Instant::now();
        for old in [&token, &session.access] {
            b.call_as(Method::GET, "/api/v1/users", Some(old), None)
                .await
                .data(StatusCode::OK);
        }
        let demote = a
            .send(
                a.request(Method::PATCH, &format!("/api/v1/users/{}", second.id))
                    .json(&json!({"role": "user"})),
            )
            .await;
        assert_eq!(demote.data(StatusCode::OK)["role"], json!("user"));
        // B learns of the change through LISTEN/NOTIFY: its cached credentials are dropped.
        match refused_before_the_cache_expires(&b, "/api/v1/users", &token, cached).await {
            Round::Told => break (email, token, session),
            Round::Undecided(took) => slow.push(took),
        }
    };
    for old in [&token, &session.access] {
        let users = b
            .call_as(Method::GET, "/api/v1/users", Some(old), None)
            .await;
        assert_error(&users, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
        assert_error(
            &b.me(Some(old)).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
    }
    // Neither can the admin-era session be refreshed on B.
    let refresh = b.refresh(&session.refresh).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // A new login on B acts as what the account is now.
    let now = b.login_ok(&email, PASSWORD).await;
    let users = b
        .call_as(Method::GET, "/api/v1/users", Some(&now.access), None)
        .await;
    assert_error(&users, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(
        b.me(Some(&now.access)).await.data(StatusCode::OK)["role"],
        json!("user")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_deleted_through_one_instance_loses_old_tokens_on_the_other_at_once() {
    let Some((a, b)) =
        two_instances("a_user_deleted_through_one_instance_loses_old_tokens_on_the_other_at_once")
            .await
    else {
        return;
    };
    let mut slow = Vec::new();
    let (email, token, session) = loop {
        if slow.len() == ROUNDS {
            undecided(&slow);
        }
        let email = format!("ada{}@example.com", slow.len());
        let (user, token) = a.user(&email).await;
        let session = b.login_ok(&email, PASSWORD).await;
        // B's first requests as this account: B caches it from now on.
        let cached = Instant::now();
        for old in [&token, &session.access] {
            b.me(Some(old)).await.data(StatusCode::OK);
        }
        let gone = a
            .send(a.request(Method::DELETE, &format!("/api/v1/users/{}", user.id)))
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
        match refused_before_the_cache_expires(&b, "/api/v1/resource", &token, cached).await {
            Round::Told => break (email, token, session),
            Round::Undecided(took) => slow.push(took),
        }
    };
    for old in [&token, &session.access] {
        assert_error(
            &b.me(Some(old)).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        let list = b
            .call_as(Method::GET, "/api/v1/resource", Some(old), None)
            .await;
        assert_error(&list, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let refresh = b.refresh(&session.refresh).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let login = b.login(&email, PASSWORD).await;
    assert_error(&login, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_spent_on_one_instance_and_replayed_on_the_other_revokes_its_family() {
    let Some((a, b)) = two_instances(
        "a_refresh_token_spent_on_one_instance_and_replayed_on_the_other_revokes_its_family",
    )
    .await
    else {
        return;
    };
    a.user("ada@example.com").await;
    let other_session = b.login_ok("ada@example.com", PASSWORD).await;
    let first = a.login_ok("ada@example.com", PASSWORD).await;
    let second = Tokens::from_resp(&a.refresh(&first.refresh).await);
    b.me(Some(&second.access)).await.data(StatusCode::OK);

    // The spent token replayed on B: refused…
    let replay = b.refresh(&first.refresh).await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // …and the newer token of the same family is dead on both instances.
    for app in [&a, &b] {
        let newer = app.refresh(&second.refresh).await;
        assert_error(&newer, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    // Another family (another login) is untouched, whichever instance refreshes it.
    let rotated = Tokens::from_resp(&a.refresh(&other_session.refresh).await);
    Tokens::from_resp(&b.refresh(&rotated.refresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_on_the_previous_models_keeps_working_while_another_adds_a_field() {
    let Some(server) = postgres_server(
        "an_instance_on_the_previous_models_keeps_working_while_another_adds_a_field",
    ) else {
        return;
    };
    let before = decls(json!([{
        "name": "book",
        "fields": [{"name": "title", "type": "string"}]
    }]));
    let after = decls(json!([{
        "name": "book",
        "fields": [
            {"name": "title", "type": "string"},
            {"name": "subtitle", "type": "string"}
        ]
    }]));
    // A rolling upgrade: A still runs the old configuration, B starts with the new one and
    // migrates (additively) under A's feet.
    let a = TestApp::spawn_on(
        TestDb::postgres(&server).await,
        before,
        ServerConfig::default(),
        test_auth_config(),
    )
    .await;
    let (b, steps) = a.spawn_peer_with(&after).await;
    assert_eq!(steps, ["add field book.subtitle"]);

    // What A writes, B reads, with the new field empty.
    let from_a = a
        .create_ok("book", &json!({"name": "Emma", "title": "Emma"}))
        .await;
    let on_b = b.get_ok("book", &id_of(&from_a)).await;
    assert_eq!(on_b["title"], json!("Emma"));
    assert_eq!(on_b["subtitle"], json!(null));
    assert_eq!(on_b["version"], json!(1));

    // What B writes, A reads without the field it does not know, and A's writes (PATCH and
    // PUT) leave that field alone.
    let from_b = b
        .create_ok(
            "book",
            &json!({"name": "Dune", "title": "Dune", "subtitle": "a novel"}),
        )
        .await;
    let id = id_of(&from_b);
    let on_a = a.get_ok("book", &id).await;
    assert_eq!(on_a["title"], json!("Dune"));
    assert!(on_a.get("subtitle").is_none(), "{on_a}");
    let (status, body) = a
        .patch("book", &id, &json!({"title": "Dune (1965)"}), Some("\"1\""))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = a
        .put(
            "book",
            &id,
            &json!({"name": "Dune", "title": "Dune, again"}),
            Some("\"2\""),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_b = b.get_ok("book", &id).await;
    assert_eq!(on_b["title"], json!("Dune, again"));
    assert_eq!(on_b["subtitle"], json!("a novel"));
    assert_eq!(on_b["version"], json!(3));
    // Both list both records.
    for app in [&a, &b] {
        let mut names: Vec<String> = app
            .list_all("book", &[])
            .await
            .iter()
            .map(|r| r["name"].as_str().expect("a name").to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["Dune", "Emma"]);
    }
}

mod events;
mod sessions;

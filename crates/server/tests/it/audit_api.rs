//! The audit trail as clients read it: `GET /api/v1/audit` (admins, filtered, newest first,
//! by cursor) and `GET /api/v1/{model}/{id}/history` (whoever may read the record), with
//! their attacks: no credential, a user's, another user's record, a revoked key, hostile
//! filters and cursors; and retention, which prunes behind a checkpoint.

use crate::helpers::{MISSING_ID, Resp, TestApp, assert_error, decls, id_of};
use plinth_server::ServerConfig;
use plinth_store::AuditVerdict;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `GET path` as `credential`.
async fn get_as(app: &TestApp, path: &str, credential: Option<&str>) -> Resp {
    app.call_as(Method::GET, path, credential, None).await
}

/// Every entry of a paged endpoint, following `next_cursor` with pages of `limit`.
async fn walk(app: &TestApp, path: &str, credential: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    for _ in 0..100 {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = get_as(app, &url, Some(credential)).await;
        let page = r.data(StatusCode::OK).as_array().expect("a page").clone();
        assert!(page.len() <= limit as usize);
        all.extend(page);
        match r.body["page"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
    panic!("the cursor never ended");
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["seq"].as_i64().expect("a seq"))
        .collect()
}

#[tokio::test]
async fn the_audit_lists_entries_newest_first_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let (ann, ann_token) = app.user("ann@example.com").await;
    let a = id_of(
        &app.create_as("resource", &ann_token, &json!({"name": "a"}))
            .await,
    );
    let b = id_of(
        &app.create_as("resource", &app.admin_token, &json!({"name": "b"}))
            .await,
    );
    let patched = app
        .call_as(
            Method::PATCH,
            &format!("/api/v1/resource/{a}"),
            Some(&ann_token),
            Some(&json!({"name": "a2"})),
        )
        .await;
    patched.data(StatusCode::OK);
    let deleted = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/resource/{b}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    deleted.data(StatusCode::OK);

    // Seqs 1 and 2: the admin's and ann's accounts, made by the local administrator.
    let all = walk(&app, "/api/v1/audit", &app.admin_token, 100).await;
    assert_eq!(seqs(&all), [6, 5, 4, 3, 2, 1]);
    assert_eq!(all[4]["action"], "account.create");
    assert_eq!(all[5]["action"], "account.create");
    let update = &all[1];
    assert_eq!(
        update,
        &json!({
            "seq": 5,
            "at": update["at"],
            "actor": {"kind": "user", "id": ann.id.to_string(), "label": "user"},
            "action": "record.update",
            "target": {"model": "resource", "id": a},
            "request_id": patched.request_id(),
            "client_addr": "127.0.0.1",
            "changes": {"name": {"from": "a", "to": "a2"}},
            "prev_hash": all[2]["hash"],
            "hash": update["hash"],
        })
    );
    assert!(update["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    // Pages of one, two and three give the same entries.
    for limit in [1, 2, 3] {
        assert_eq!(
            seqs(&walk(&app, "/api/v1/audit", &app.admin_token, limit).await),
            [6, 5, 4, 3, 2, 1]
        );
    }
    let admin = app.admin_id.clone();
    let at = |i: usize| all[i]["at"].as_str().expect("a time").to_owned();
    let enc = |t: String| t.replace(':', "%3A").replace('+', "%2B");
    for (query, expected) in [
        (format!("actor={}", ann.id), vec![5, 3]),
        (format!("actor={admin}"), vec![6, 4]),
        ("actor_kind=user".to_owned(), vec![6, 5, 4, 3]),
        ("actor_kind=system".to_owned(), vec![2, 1]),
        ("action=record.create".to_owned(), vec![4, 3]),
        ("action=record.*".to_owned(), vec![6, 5, 4, 3]),
        ("action=account.*".to_owned(), vec![2, 1]),
        ("action=audit.*".to_owned(), vec![]),
        ("model=resource".to_owned(), vec![6, 5, 4, 3]),
        ("model=_users".to_owned(), vec![2, 1]),
        ("model=other".to_owned(), vec![]),
        (format!("record={a}"), vec![5, 3]),
        (
            format!("model=resource&record={b}&action=record.delete"),
            vec![6],
        ),
        (format!("since={}", enc(at(2))), vec![6, 5, 4]),
        (format!("until={}", enc(at(2))), vec![3, 2, 1]),
        (
            format!("since={}&until={}", enc(at(2)), enc(at(0))),
            vec![5, 4],
        ),
    ] {
        let path = format!("/api/v1/audit?{query}");
        assert_eq!(
            seqs(&walk(&app, &path, &app.admin_token, 1).await),
            expected,
            "{query}"
        );
    }
    // Audit entries are kept out of caches.
    let r = get_as(&app, "/api/v1/audit", Some(&app.admin_token)).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_audit_is_for_admins_only() {
    let app = TestApp::spawn().await;
    app.create_as("resource", &app.admin_token, &json!({"name": "a"}))
        .await;
    let guest = get_as(&app, "/api/v1/audit", None).await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let (_, token) = app.user("ann@example.com").await;
    let user = get_as(&app, "/api/v1/audit", Some(&token)).await;
    assert_error(&user, StatusCode::FORBIDDEN, "FORBIDDEN");
    let key = app.create_key(&token, &json!({"name": "k"})).await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let user_key = get_as(&app, "/api/v1/audit", Some(&key)).await;
    assert_error(&user_key, StatusCode::FORBIDDEN, "FORBIDDEN");
    // An admin's key reads it, until it is revoked.
    let made = app
        .create_key(&app.admin_token, &json!({"name": "siem"}))
        .await;
    let made = made.data(StatusCode::CREATED);
    let (key_id, key) = (
        made["id"].as_str().expect("an id").to_owned(),
        made["key"].as_str().expect("a key").to_owned(),
    );
    // Accounts: the admin's (1) and ann's (3); the record (2); the two keys (4, 5).
    let ok = get_as(&app, "/api/v1/audit", Some(&key)).await;
    assert_eq!(
        seqs(ok.data(StatusCode::OK).as_array().expect("a page")),
        [5, 4, 3, 2, 1]
    );
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = get_as(&app, "/api/v1/audit", Some(&key)).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let forged = get_as(&app, "/api/v1/audit", Some("not.a.token")).await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn hostile_audit_filters_and_cursors_are_400s() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_as("resource", &app.admin_token, &json!({"name": "a"}))
            .await;
    }
    let first = get_as(&app, "/api/v1/audit?limit=1", Some(&app.admin_token)).await;
    let cursor = first.body["page"]["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let long = "a".repeat(100);
    let forged_seq = {
        use base64::Engine;
        let fp = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .expect("base64");
        let wire: Value = serde_json::from_slice(&fp).expect("json");
        let forged = json!({"s": -5, "f": wire["f"]});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
    };
    for query in [
        "actor=1".to_owned(),
        "actor=%27%20OR%201%3D1--".to_owned(),
        "actor_kind=root".to_owned(),
        "actor_kind=".to_owned(),
        "action=record.%25".to_owned(),
        "action=%27%3B%20DROP%20TABLE%20_plinth_audit%3B--".to_owned(),
        "action=*".to_owned(),
        "action=record._%25".to_owned(),
        "action=record%00.create".to_owned(),
        format!("action={long}.*"),
        "model=Robert%27)%3B".to_owned(),
        "model=".to_owned(),
        "record=123".to_owned(),
        "since=yesterday".to_owned(),
        "until=2026-13-01T00%3A00%3A00Z".to_owned(),
        "since=99999-01-01T00%3A00%3A00Z".to_owned(),
        "limit=0".to_owned(),
        "limit=201".to_owned(),
        "limit=-1".to_owned(),
        "limit=abc".to_owned(),
        "cursor=garbage".to_owned(),
        "cursor=".to_owned(),
        format!("cursor={}", "A".repeat(5000)),
        format!("cursor={forged_seq}"),
        // A cursor of another query.
        format!("cursor={cursor}&action=record.create"),
        "limit=1&limit=2".to_owned(),
        "action=record.create&action=record.update".to_owned(),
        "sort=-seq".to_owned(),
        "seq=1".to_owned(),
    ] {
        let r = get_as(
            &app,
            &format!("/api/v1/audit?{query}"),
            Some(&app.admin_token),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert!(!r.body.to_string().contains("SQL"), "{query}: {}", r.body);
    }
    // Its own cursor still works, and nothing was changed.
    let next = get_as(
        &app,
        &format!("/api/v1/audit?limit=1&cursor={cursor}"),
        Some(&app.admin_token),
    )
    .await;
    // The admin's account (1), then the three records (2, 3, 4).
    assert_eq!(
        seqs(next.data(StatusCode::OK).as_array().expect("a page")),
        [3]
    );
    assert_eq!(
        app.state.store().audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 4 }
    );
}

/// A model users read only their own records of, with an `admin_only` field.
async fn diary_app() -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "diary",
        "user_read": "own",
        "fields": [
            {"name": "mood", "type": "string"},
            {"name": "credit", "type": "integer", "admin_only": true}
        ]
    }])))
    .await
}

#[tokio::test]
async fn a_record_history_is_for_whoever_may_read_the_record() {
    let app = diary_app().await;
    let (_, ann) = app.user("ann@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let id = id_of(
        &app.create_as("diary", &ann, &json!({"name": "d", "mood": "ok"}))
            .await,
    );
    let at = format!("/api/v1/diary/{id}");
    let admin_patch = app
        .call_as(
            Method::PATCH,
            &at,
            Some(&app.admin_token),
            Some(&json!({"mood": "fine", "credit": 7})),
        )
        .await;
    admin_patch.data(StatusCode::OK);
    let history = format!("{at}/history");

    // The admin sees everything, newest first (after the three accounts' entries).
    let full = walk(&app, &history, &app.admin_token, 1).await;
    assert_eq!(seqs(&full), [5, 4]);
    assert_eq!(
        full[0]["changes"],
        json!({"mood": {"from": "ok", "to": "fine"}, "credit": {"from": null, "to": 7}})
    );
    assert_eq!(full[0]["client_addr"], json!("127.0.0.1"));
    // The owner, without the admin_only field or anyone's address.
    let own = walk(&app, &history, &ann, 1).await;
    assert_eq!(seqs(&own), [5, 4]);
    assert_eq!(
        own[0]["changes"],
        json!({"mood": {"from": "ok", "to": "fine"}})
    );
    assert_eq!(own[0]["client_addr"], json!(null));
    assert_eq!(own[0]["hash"], full[0]["hash"]);
    assert_eq!(
        own[1]["changes"],
        json!({"name": {"to": "d"}, "status": {"to": "active"}, "mood": {"to": "ok"}})
    );
    // Another user: the same 404 as for the record itself; a guest: 401.
    let other = get_as(&app, &history, Some(&bob)).await;
    assert_error(&other, StatusCode::NOT_FOUND, "NOT_FOUND");
    let record = get_as(&app, &at, Some(&bob)).await;
    assert_eq!(
        other.body["error"]["message"],
        record.body["error"]["message"]
    );
    let guest = get_as(&app, &history, None).await;
    assert_error(&guest, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // A revoked key of the owner: 401.
    let made = app.create_key(&ann, &json!({"name": "k"})).await;
    let made = made.data(StatusCode::CREATED);
    let key = made["key"].as_str().expect("a key").to_owned();
    let key_id = made["id"].as_str().expect("an id").to_owned();
    get_as(&app, &history, Some(&key))
        .await
        .data(StatusCode::OK);
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = get_as(&app, &history, Some(&key)).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // Hostile parameters and ids.
    let audit_cursor = {
        let r = get_as(&app, "/api/v1/audit?limit=1", Some(&app.admin_token)).await;
        r.body["page"]["next_cursor"]
            .as_str()
            .expect("a cursor")
            .to_owned()
    };
    for query in [
        "action=record.create".to_owned(),
        "limit=0".to_owned(),
        "cursor=%00".to_owned(),
        format!("cursor={audit_cursor}"),
    ] {
        let r = get_as(&app, &format!("{history}?{query}"), Some(&ann)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let bad_id = get_as(&app, "/api/v1/diary/1%27%20OR%201=1/history", Some(&ann)).await;
    assert_error(&bad_id, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let no_model = get_as(&app, &format!("/api/v1/nothing/{id}/history"), Some(&ann)).await;
    assert_error(&no_model, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn deleted_records_keep_their_history_and_purged_ones_show_it_to_admins() {
    let app = TestApp::spawn().await;
    let (_, ann) = app.user("ann@example.com").await;
    let id = id_of(&app.create_as("resource", &ann, &json!({"name": "a"})).await);
    let at = format!("/api/v1/resource/{id}");
    let history = format!("{at}/history");
    app.call_as(Method::DELETE, &at, Some(&ann), None)
        .await
        .data(StatusCode::OK);
    let own = walk(&app, &history, &ann, 10).await;
    assert_eq!(own[0]["action"], json!("record.delete"));
    // After the admin's and ann's accounts (1, 2).
    assert_eq!(seqs(&own), [4, 3]);
    // Guests read resources, so they read a deleted one's history too.
    let guest = get_as(&app, &history, None).await;
    assert_eq!(
        seqs(guest.data(StatusCode::OK).as_array().expect("a page")),
        [4, 3]
    );

    let purged = app
        .call_as(
            Method::DELETE,
            &format!("{at}?purge=true"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    let admin = walk(&app, &history, &app.admin_token, 10).await;
    assert_eq!(seqs(&admin), [5, 4, 3]);
    assert_eq!(admin[0]["action"], json!("record.purge"));
    assert_eq!(admin[0]["changes"]["name"], json!({"from": "a"}));
    for credential in [Some(ann.as_str()), None] {
        let gone = get_as(&app, &history, credential).await;
        assert_error(&gone, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // A record that never was: 404 for admins too.
    let never = get_as(
        &app,
        &format!("/api/v1/resource/{MISSING_ID}/history"),
        Some(&app.admin_token),
    )
    .await;
    assert_error(&never, StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// The entries' actions, oldest first, as the store lists them.
async fn actions(app: &TestApp) -> Vec<String> {
    let entries = app.state.store().audit_list(0, 1000).await.expect("list");
    entries.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn the_sweep_prunes_entries_past_the_retention_behind_a_checkpoint() {
    let sweeping = |audit_retention| ServerConfig {
        sweep_interval: Duration::from_millis(50),
        audit_retention,
        ..ServerConfig::default()
    };
    let forever = TestApp::spawn_configured(Vec::new(), sweeping(None)).await;
    let app =
        TestApp::spawn_configured(Vec::new(), sweeping(Some(Duration::from_millis(300)))).await;
    for a in [&forever, &app] {
        for name in ["a", "b", "c"] {
            a.create_as("resource", &a.admin_token, &json!({ "name": name }))
                .await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while actions(&app).await.iter().any(|a| a.starts_with("record.")) {
        assert!(Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = actions(&app).await;
    assert!(
        !left.is_empty() && left.iter().all(|a| a == "audit.checkpoint"),
        "{left:?}"
    );
    assert!(matches!(
        app.state.store().audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
    let seal = get_as(
        &app,
        "/api/v1/audit?action=audit.checkpoint",
        Some(&app.admin_token),
    )
    .await;
    let seal = &seal.data(StatusCode::OK)[0];
    assert_eq!(
        seal["actor"],
        json!({"kind": "system", "id": null, "label": "local admin"})
    );
    assert_eq!(seal["target"], json!({"model": null, "id": null}));
    assert!(
        seal["changes"]["seq"]["to"]
            .as_i64()
            .is_some_and(|s| s >= 3),
        "{seal}"
    );
    // Writes go on, and the chain still verifies.
    app.create_as("resource", &app.admin_token, &json!({"name": "d"}))
        .await;
    assert!(matches!(
        app.state.store().audit_verify().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
    // Without a retention, nothing is pruned.
    assert_eq!(
        actions(&forever).await,
        [
            "account.create",
            "record.create",
            "record.create",
            "record.create"
        ]
    );
}

#[tokio::test]
async fn a_history_is_refused_exactly_as_a_read_of_its_record() {
    let app = TestApp::spawn_with(decls(json!([
        {"name": "ledger", "user_read": "own", "hide_forbidden": false},
        {"name": "memo", "guest_read": false}
    ])))
    .await;
    let (_, ann) = app.user("ann@example.com").await;
    let (_, bob) = app.user("bob@example.com").await;
    let ledger = id_of(&app.create_as("ledger", &ann, &json!({"name": "l"})).await);
    let memo = id_of(&app.create_as("memo", &ann, &json!({"name": "m"})).await);
    for (path, credential, status) in [
        (
            format!("/api/v1/ledger/{ledger}"),
            Some(bob.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/api/v1/ledger/{ledger}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/api/v1/memo/{memo}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/api/v1/memo/{memo}"),
            Some(bob.as_str()),
            StatusCode::OK,
        ),
        (
            format!("/api/v1/ledger/{ledger}"),
            Some(ann.as_str()),
            StatusCode::OK,
        ),
    ] {
        let record = get_as(&app, &path, credential).await;
        let history = get_as(&app, &format!("{path}/history"), credential).await;
        assert_eq!((record.status, history.status), (status, status), "{path}");
        assert_eq!(record.body["error"]["code"], history.body["error"]["code"]);
    }
}

#[tokio::test]
async fn the_sweep_prunes_changes_past_their_retention_and_raises_the_window() {
    let sweeping = |change_retention| ServerConfig {
        sweep_interval: Duration::from_millis(50),
        change_retention,
        ..ServerConfig::default()
    };
    let kept = TestApp::spawn_configured(Vec::new(), sweeping(Duration::from_secs(3600))).await;
    let app = TestApp::spawn_configured(Vec::new(), sweeping(Duration::from_millis(300))).await;
    for a in [&kept, &app] {
        for name in ["a", "b", "c"] {
            a.create_as("resource", &a.admin_token, &json!({ "name": name }))
                .await;
        }
    }
    let store = app.state.store();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store
        .changes_after(0, 100)
        .await
        .expect("the log")
        .changes
        .is_empty()
    {
        assert!(Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = store.change_window().await.expect("the window");
    assert!(window.pruned_through >= 3, "{window:?}");
    assert_eq!(window.pruned_through, window.head);
    // Within the retention, nothing goes.
    let log = kept
        .state
        .store()
        .changes_after(0, 100)
        .await
        .expect("the log")
        .changes;
    assert_eq!(log.len(), 3);
    assert_eq!(
        kept.state
            .store()
            .change_window()
            .await
            .expect("window")
            .pruned_through,
        0
    );
}

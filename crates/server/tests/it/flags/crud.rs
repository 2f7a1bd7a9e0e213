//! The flags API: made, listed, read, changed (with `If-Match`) and deleted by an admin,
//! every change audited; refused to everyone else and for every bad body, writing nothing.

use crate::helpers::{Resp, TestApp, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The audit entries about flags, oldest first: `(action, changes)`.
async fn flag_audit(app: &TestApp) -> Vec<(String, Value)> {
    let r = app.get_path("/api/v1/audit?model=_flags&limit=200").await;
    let mut entries: Vec<(String, Value)> = r
        .data(StatusCode::OK)
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("an action").to_owned(),
                e["changes"].clone(),
            )
        })
        .collect();
    entries.reverse();
    entries
}

async fn listed(app: &TestApp) -> Vec<Value> {
    let r = app
        .flags_as(Method::GET, "", Some(&app.admin_token), None)
        .await;
    r.data(StatusCode::OK).as_array().expect("a list").clone()
}

#[tokio::test]
async fn an_admin_makes_reads_changes_and_deletes_a_flag_and_each_change_is_audited() {
    let app = TestApp::spawn().await;
    let user = uuid::Uuid::now_v7();
    let made = app
        .flags_as(
            Method::POST,
            "",
            Some(&app.admin_token),
            Some(&json!({
                "key": "new-checkout",
                "description": "the one-page checkout",
                "enabled": true,
                "rollout": 12.5,
                "allow": ["role:admin", format!("user:{user}")],
                "on_from": "2026-01-01T00:00:00Z",
            })),
        )
        .await;
    let flag = made.data(StatusCode::CREATED).clone();
    assert_eq!(made.header("location"), Some("/api/v1/flags/new-checkout"));
    // The ETag names this flag (its id) at version 1.
    let etag1 = made.header("etag").expect("an ETag").to_owned();
    assert!(
        etag1.starts_with('"') && etag1.ends_with(".1\"") && etag1.len() == 40,
        "{etag1}"
    );
    let etag2 = etag1.replace(".1\"", ".2\"");
    assert_eq!(flag["key"], "new-checkout");
    assert_eq!(flag["enabled"], true);
    assert_eq!(flag["rollout"], 12.5);
    assert_eq!(flag["allow"], json!(["role:admin", format!("user:{user}")]));
    assert_eq!(flag["deny"], json!([]));
    assert_eq!(flag["on_from"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(flag["off_after"], Value::Null);
    assert_eq!(flag["version"], 1);
    assert!(
        made.header("cache-control")
            .is_some_and(|c| c.contains("no-store"))
    );
    // Defaults: disabled, 0 %.
    let other = app.flag_ok(&json!({"key": "a.quiet_one"})).await;
    assert_eq!(
        (&other["enabled"], &other["rollout"]),
        (&json!(false), &json!(0.0))
    );

    let keys: Vec<Value> = listed(&app)
        .await
        .iter()
        .map(|f| f["key"].clone())
        .collect();
    assert_eq!(keys, [json!("a.quiet_one"), json!("new-checkout")]);
    let read = app.get_path("/api/v1/flags/new-checkout").await;
    assert_eq!(read.data(StatusCode::OK), &flag);
    assert_eq!(read.header("etag"), Some(etag1.as_str()));

    // A change with the current ETag; then the old one is stale (412, nothing changed).
    let changed = app
        .send(
            app.request(Method::PATCH, "/api/v1/flags/new-checkout")
                .header("if-match", &etag1)
                .json(&json!({"rollout": 50, "deny": ["role:user"], "on_from": null})),
        )
        .await;
    assert_eq!(changed.header("etag"), Some(etag2.as_str()));
    let changed = changed.data(StatusCode::OK).clone();
    assert_eq!(
        (&changed["rollout"], &changed["version"]),
        (&json!(50.0), &json!(2))
    );
    assert_eq!(changed["deny"], json!(["role:user"]));
    assert_eq!(changed["on_from"], Value::Null);
    let stale = app
        .send(
            app.request(Method::PATCH, "/api/v1/flags/new-checkout")
                .header("if-match", &etag1)
                .json(&json!({"enabled": false})),
        )
        .await;
    assert_error(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    // A bare version is not a flag's tag: it names nothing.
    let bare = app
        .send(
            app.request(Method::PATCH, "/api/v1/flags/new-checkout")
                .header("if-match", "\"2\"")
                .json(&json!({"enabled": false})),
        )
        .await;
    assert_error(
        &bare,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    let stale = app
        .send(
            app.request(Method::DELETE, "/api/v1/flags/new-checkout")
                .header("if-match", &etag1),
        )
        .await;
    assert_error(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    assert_eq!(
        app.get_path("/api/v1/flags/new-checkout")
            .await
            .data(StatusCode::OK),
        &changed
    );
    // A change to nothing new is no new version.
    let same = app
        .patch_flag_ok("new-checkout", &json!({"rollout": 50}))
        .await;
    assert_eq!(same["version"], 2);

    let gone = app
        .send(
            app.request(Method::DELETE, "/api/v1/flags/new-checkout")
                .header("if-match", &etag2),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let missing = app.get_path("/api/v1/flags/new-checkout").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND");

    let audit = flag_audit(&app).await;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["flag.create", "flag.create", "flag.update", "flag.delete"]
    );
    assert_eq!(audit[0].1["rollout"], json!({"to": 12.5}));
    assert_eq!(audit[0].1["key"], json!({"to": "new-checkout"}));
    assert_eq!(
        audit[2].1,
        json!({
            "key": {"from": "new-checkout", "to": "new-checkout"},
            "rollout": {"from": 12.5, "to": 50.0},
            "deny": {"from": [], "to": ["role:user"]},
            "on_from": {"from": "2026-01-01T00:00:00.000000Z", "to": null},
        })
    );
    assert_eq!(audit[3].1["enabled"], json!({"from": true}));
}

/// A flag deleted and made again under its key is another flag: an `If-Match` of the old
/// one (the same key, the same version) names nothing, so a stale change cannot land on it.
#[tokio::test]
async fn an_etag_of_a_deleted_flag_does_not_match_the_one_made_again() {
    let app = TestApp::spawn().await;
    let old = app
        .flags_as(
            Method::POST,
            "",
            Some(&app.admin_token),
            Some(&json!({"key": "kill-switch", "enabled": false})),
        )
        .await;
    let old_tag = old.header("etag").expect("an ETag").to_owned();
    let r = app
        .flags_as(Method::DELETE, "/kill-switch", Some(&app.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = app
        .flags_as(
            Method::POST,
            "",
            Some(&app.admin_token),
            Some(&json!({"key": "kill-switch", "enabled": false})),
        )
        .await;
    let made = again.data(StatusCode::CREATED).clone();
    assert_eq!(made["version"], 1, "the same key at the same version");
    assert_ne!(again.header("etag"), Some(old_tag.as_str()));

    let patch = app
        .send(
            app.request(Method::PATCH, "/api/v1/flags/kill-switch")
                .header("if-match", &old_tag)
                .json(&json!({"enabled": true, "rollout": 100})),
        )
        .await;
    assert_error(
        &patch,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    let message = patch.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("flag"), "{}", patch.body);
    let delete = app
        .send(
            app.request(Method::DELETE, "/api/v1/flags/kill-switch")
                .header("if-match", &old_tag),
        )
        .await;
    assert_error(
        &delete,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    );
    assert_eq!(
        app.get_path("/api/v1/flags/kill-switch")
            .await
            .data(StatusCode::OK),
        &made,
        "nothing changed"
    );
}

/// Every way in but an admin's: no credential, a forged one, a user's token and key, a
/// revoked admin key.
#[tokio::test]
async fn only_admins_reach_the_flags_api() {
    let app = TestApp::spawn().await;
    app.flag_ok(&json!({"key": "f", "enabled": true, "rollout": 100}))
        .await;
    let calls: [(Method, &str, Option<Value>); 5] = [
        (Method::GET, "", None),
        (Method::POST, "", Some(json!({"key": "g"}))),
        (Method::GET, "/f", None),
        (Method::PATCH, "/f", Some(json!({"enabled": false}))),
        (Method::DELETE, "/f", None),
    ];
    let (_, token) = app.user("ann@example.com").await;
    let key = app.create_key(&token, &json!({"name": "k"})).await;
    let user_key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let made = app
        .create_key(&app.admin_token, &json!({"name": "ops"}))
        .await;
    let made = made.data(StatusCode::CREATED).clone();
    let admin_key = made["key"].as_str().expect("a key").to_owned();
    // The admin's key works until it is revoked.
    let r = app
        .flags_as(Method::GET, "/f", Some(&admin_key), None)
        .await;
    r.data(StatusCode::OK);
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!(
                "/api/v1/auth/api-keys/{}",
                made["id"].as_str().expect("an id")
            ),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);

    for (method, path, body) in &calls {
        let as_ = async |credential: Option<&str>| -> Resp {
            app.flags_as(method.clone(), path, credential, body.as_ref())
                .await
        };
        let what = format!("{method} /api/v1/flags{path}");
        for (who, credential, status, code) in [
            ("guest", None, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            (
                "forged",
                Some("not.a.token"),
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
            ),
            (
                "revoked key",
                Some(admin_key.as_str()),
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
            ),
            (
                "user",
                Some(token.as_str()),
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            ),
            (
                "user's key",
                Some(user_key.as_str()),
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            ),
        ] {
            let r = as_(credential).await;
            assert_eq!(r.status, status, "{what} as {who}: {}", r.body);
            assert_error(&r, status, code);
        }
    }
    // Nothing changed.
    let flags = listed(&app).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(
        (&flags[0]["enabled"], &flags[0]["version"]),
        (&json!(true), &json!(1))
    );
    assert_eq!(flag_audit(&app).await.len(), 1);
}

#[tokio::test]
async fn bad_bodies_keys_and_parameters_are_refused_with_nothing_written() {
    let app = TestApp::spawn().await;
    app.flag_ok(&json!({"key": "taken"})).await;
    let create = async |body: Value| {
        app.flags_as(Method::POST, "", Some(&app.admin_token), Some(&body))
            .await
    };
    let id = uuid::Uuid::now_v7();
    for (body, fields) in [
        (json!({}), vec!["key"]),
        (json!({"key": "Bad Key"}), vec!["key"]),
        (json!({"key": "a--b"}), vec!["key"]),
        (json!({"key": "x".repeat(65)}), vec!["key"]),
        (json!({"key": "evaluate"}), vec!["key"]),
        (json!({"key": "plinth.replica_read"}), vec!["key"]),
        (json!({"key": "plinth.kill_all"}), vec!["key"]),
        (json!({"key": 7}), vec!["key"]),
        (json!({"key": "k", "rollout": 100.5}), vec!["rollout"]),
        (json!({"key": "k", "rollout": -1}), vec!["rollout"]),
        (json!({"key": "k", "rollout": 12.345}), vec!["rollout"]),
        (json!({"key": "k", "rollout": "10"}), vec!["rollout"]),
        (json!({"key": "k", "enabled": "yes"}), vec!["enabled"]),
        (
            json!({"key": "k", "allow": ["user:not-a-uuid"]}),
            vec!["allow"],
        ),
        (json!({"key": "k", "allow": ["role:guest"]}), vec!["allow"]),
        (
            json!({"key": "k", "deny": [format!("group:{id}")]}),
            vec!["deny"],
        ),
        (json!({"key": "k", "deny": "role:user"}), vec!["deny"]),
        (json!({"key": "k", "allow": [1]}), vec!["allow"]),
        (
            json!({"key": "k", "allow": [format!("user:{id}"), format!("user:{id}")]}),
            vec!["allow"],
        ),
        (
            json!({"key": "k", "allow": vec!["role:user"; 1001]}),
            vec!["allow"],
        ),
        (json!({"key": "k", "on_from": "tomorrow"}), vec!["on_from"]),
        (json!({"key": "k", "off_after": 5}), vec!["off_after"]),
        (
            json!({"key": "k", "on_from": "2026-02-01T00:00:00Z", "off_after": "2026-01-01T00:00:00Z"}),
            vec!["off_after"],
        ),
        (
            json!({"key": "k", "description": "x".repeat(1001)}),
            vec!["description"],
        ),
        (
            json!({"key": "k", "description": "a\u{0}b"}),
            vec!["description"],
        ),
        (json!({"key": "k", "version": 9}), vec!["version"]),
        (
            json!({"key": "k", "id": "x", "created_at": "x"}),
            vec!["id", "created_at"],
        ),
        (
            json!({"key": "Bad", "rollout": 101}),
            vec!["key", "rollout"],
        ),
    ] {
        let r = create(body.clone()).await;
        let mut got = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        got.sort();
        let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        want.sort();
        assert_eq!(got, want, "{body}");
    }
    // A misspelt Plinth flag: the reason names the ones Plinth knows.
    let typo = create(json!({"key": "plinth.replica_read", "enabled": false})).await;
    assert_error(&typo, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let reason = typo.body["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("plinth.replica_reads"), "{}", typo.body);
    for body in [json!([]), json!("k"), json!(null)] {
        let r = create(body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let r = app
        .send(
            app.request(Method::POST, "/api/v1/flags")
                .header("content-type", "application/json")
                .body("{\"key\":"),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let r = app
        .send(app.request(Method::POST, "/api/v1/flags").body("key=k"))
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let huge = json!({"key": "k", "description": "x".repeat(3 << 20)});
    let r = create(huge).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let dup = create(json!({"key": "taken", "enabled": true})).await;
    assert_eq!(
        assert_error(&dup, StatusCode::CONFLICT, "CONFLICT"),
        ["key"]
    );

    // A PATCH: the key is for good, and the same checks hold, on the merged schedule too.
    app.patch_flag_ok("taken", &json!({"on_from": "2026-01-01T00:00:00Z"}))
        .await;
    let patch = async |path: &str, body: Value| {
        app.flags_as(Method::PATCH, path, Some(&app.admin_token), Some(&body))
            .await
    };
    for (body, fields) in [
        (json!({"key": "other"}), vec!["key"]),
        (json!({"rollout": 1000}), vec!["rollout"]),
        (
            json!({"off_after": "2025-12-31T23:59:59Z"}),
            vec!["off_after"],
        ),
        (json!({"nope": 1}), vec!["nope"]),
    ] {
        let r = patch("/taken", body.clone()).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            fields,
            "{body}"
        );
    }
    let r = patch("/missing", json!({"enabled": true})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = patch("/Not%20A%20Key", json!({"enabled": true})).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["key"]
    );
    let r = app
        .flags_as(Method::DELETE, "/missing", Some(&app.admin_token), None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app.get_path("/api/v1/flags/missing").await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app
        .send(
            app.request(Method::PATCH, "/api/v1/flags/taken")
                .header("if-match", "W/\"")
                .json(&json!({})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    for path in [
        "/api/v1/flags?limit=5",
        "/api/v1/flags/evaluate?x=1",
        "/api/v1/flags?%zz=%00",
    ] {
        let r = app.get_path(path).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let r = app
        .flags_as(
            Method::PUT,
            "/taken",
            Some(&app.admin_token),
            Some(&json!({})),
        )
        .await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");

    // Nothing but the one flag and its one change was written.
    let flags = listed(&app).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(
        (&flags[0]["key"], &flags[0]["version"]),
        (&json!("taken"), &json!(2))
    );
    assert_eq!(flag_audit(&app).await.len(), 2);
}

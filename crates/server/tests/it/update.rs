//! `PUT` and `PATCH /api/v1/{m}/{id}`: full and partial writes, `If-Match`, versions.

use crate::helpers::{MISSING_ID, TestApp, assert_error, decls, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A model with optional fields of several types.
async fn notes() -> TestApp {
    TestApp::spawn_with(decls(json!([{
        "name": "note",
        "fields": [
            {"name": "body", "type": "text"},
            {"name": "priority", "type": "integer"},
            {"name": "flag", "type": "boolean"},
            {"name": "extra", "type": "json"}
        ]
    }])))
    .await
}

async fn full_note(app: &TestApp) -> Value {
    app.create_ok(
        "note",
        &json!({"name": "n", "body": "text", "priority": 3, "flag": true, "extra": {"a": [1]}}),
    )
    .await
}

#[tokio::test]
async fn put_replaces_every_value_and_absent_optional_fields_become_null() {
    let app = notes().await;
    let created = full_note(&app).await;
    let id = id_of(&created);

    let r = app
        .put_resp("note", &id, &json!({"name": "replaced"}), None)
        .await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(data["name"], json!("replaced"));
    for field in ["body", "priority", "flag", "extra"] {
        assert_eq!(data[field], json!(null), "{field} survived a PUT");
    }
    assert_eq!(data["version"], json!(2));
    assert_eq!(data["id"], created["id"]);
    assert_eq!(data["created_at"], created["created_at"]);
    assert!(
        data["updated_at"].as_str() > created["updated_at"].as_str(),
        "updated_at did not move forward"
    );
    assert_eq!(app.get_ok("note", &id).await, data);
}

#[tokio::test]
async fn put_requires_a_name() {
    let app = notes().await;
    let created = full_note(&app).await;
    let id = id_of(&created);
    let r = app.put_resp("note", &id, &json!({"body": "x"}), None).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        vec!["name"]
    );
    let (status, body) = app.put("note", &id, &json!({"name": ""}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"][0]["field"], json!("name"));
    assert_eq!(app.get_ok("note", &id).await, created);
}

#[tokio::test]
async fn patch_changes_only_the_fields_present_and_null_clears() {
    let app = notes().await;
    let created = full_note(&app).await;
    let id = id_of(&created);

    let r = app
        .patch_resp("note", &id, &json!({"priority": 9}), None)
        .await;
    let data = r.data(StatusCode::OK).clone();
    assert_eq!(data["priority"], json!(9));
    for field in ["name", "body", "flag", "extra", "status", "created_at"] {
        assert_eq!(data[field], created[field], "{field} changed");
    }
    assert_eq!(data["version"], json!(2));

    let (status, cleared) = app.patch("note", &id, &json!({"body": null}), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["data"]["body"], json!(null));
    assert_eq!(cleared["data"]["priority"], json!(9));
    assert_eq!(cleared["data"]["flag"], json!(true));
    assert_eq!(cleared["data"]["version"], json!(3));
    assert_eq!(app.get_ok("note", &id).await, cleared["data"]);
}

#[tokio::test]
async fn patch_can_set_status_inactive_and_back() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "s"})).await);
    let (status, body) = app
        .patch("resource", &id, &json!({"status": "inactive"}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["status"], json!("inactive"));
    let (status, body) = app
        .patch("resource", &id, &json!({"status": "active"}), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["status"], json!("active"));
    assert_eq!(body["data"]["version"], json!(3));
}

#[tokio::test]
async fn patch_cannot_null_the_name_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "keep"})).await;
    let id = id_of(&created);
    for body in [
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": 1}),
    ] {
        let r = app.patch_resp("resource", &id, &body, None).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            vec!["name"],
            "{body}"
        );
    }
    assert_eq!(app.get_ok("resource", &id).await, created);
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_nothing_is_written() {
    let app = notes().await;
    let created = full_note(&app).await;
    let id = id_of(&created);
    let (status, _) = app.patch("note", &id, &json!({"priority": 4}), None).await;
    assert_eq!(status, StatusCode::OK);
    let current = app.get_ok("note", &id).await;

    let r = app
        .patch_resp("note", &id, &json!({"priority": 5}), Some("\"1\""))
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    let r = app
        .put_resp("note", &id, &json!({"name": "other"}), Some("\"1\""))
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    let r = app
        .patch_resp("note", &id, &json!({"priority": 5}), Some("\"3\""))
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    let r = app.delete_resp("note", &id, "", Some("\"1\"")).await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");

    assert_eq!(app.get_ok("note", &id).await, current);
    assert_eq!(current["version"], json!(2));
}

#[tokio::test]
async fn a_current_if_match_writes_and_bumps_the_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "a"})).await);
    let r = app
        .patch_resp("resource", &id, &json!({"name": "b"}), Some("\"1\""))
        .await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(2));
    assert_eq!(r.header("etag"), Some("\"2\""));

    let r = app
        .put_resp("resource", &id, &json!({"name": "c"}), Some("\"2\""))
        .await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(3));
    assert_eq!(r.header("etag"), Some("\"3\""));

    let r = app
        .patch_resp("resource", &id, &json!({"name": "d"}), Some("*"))
        .await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(4));

    let r = app.delete_resp("resource", &id, "", Some("\"4\"")).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["version"], json!(5));
    assert_eq!(data["status"], json!("deleted"));
}

#[tokio::test]
async fn a_malformed_if_match_is_400_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "a"})).await;
    let id = id_of(&created);
    // Well-formed tags that name no version ("abc", "0", a weak tag) are 412: see
    // `conditional.rs`.
    for tag in ["1", "\"1", "", "\"1\" junk", "\"1\";\"2\"", "W/1"] {
        let r = app
            .patch_resp("resource", &id, &json!({"name": "b"}), Some(tag))
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            vec!["If-Match"],
            "If-Match {tag:?}"
        );
        let r = app
            .put_resp("resource", &id, &json!({"name": "b"}), Some(tag))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        let r = app.delete_resp("resource", &id, "", Some(tag)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    assert_eq!(app.get_ok("resource", &id).await, created);
}

#[tokio::test]
async fn every_write_bumps_the_version_by_exactly_one() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "v"})).await);
    assert_eq!(app.version_of("resource", &id).await, 1);

    let steps: [(&str, Value); 5] = [
        ("patch", json!({"name": "v2"})),
        ("put", json!({"name": "v3"})),
        ("delete", json!(null)),
        ("restore", json!(null)),
        ("patch", json!({"status": "inactive"})),
    ];
    for (expected, (op, body)) in (2..).zip(steps) {
        let r = match op {
            "patch" => app.patch_resp("resource", &id, &body, None).await,
            "put" => app.put_resp("resource", &id, &body, None).await,
            "delete" => app.delete_resp("resource", &id, "", None).await,
            _ => app.restore_resp("resource", &id).await,
        };
        assert_eq!(r.data(StatusCode::OK)["version"], json!(expected), "{op}");
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{expected}\"").as_str()),
            "{op}"
        );
        assert_eq!(app.version_of("resource", &id).await, expected, "{op}");
    }
}

#[tokio::test]
async fn put_and_patch_on_a_deleted_record_are_409_and_write_nothing() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "gone"})).await);
    let (status, _) = app.delete("resource", &id).await;
    assert_eq!(status, StatusCode::OK);
    let deleted = app.get_ok("resource", &id).await;

    let r = app
        .put_resp("resource", &id, &json!({"name": "x"}), None)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = app
        .patch_resp("resource", &id, &json!({"name": "x"}), None)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let r = app
        .patch_resp("resource", &id, &json!({"name": "x"}), Some("\"2\""))
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");

    assert_eq!(app.get_ok("resource", &id).await, deleted);
    assert_eq!(deleted["status"], json!("deleted"));
}

#[tokio::test]
async fn put_and_patch_on_an_unknown_id_are_404() {
    let app = TestApp::spawn().await;
    let r = app
        .put_resp("resource", MISSING_ID, &json!({"name": "x"}), None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = app
        .patch_resp("resource", MISSING_ID, &json!({"name": "x"}), Some("\"1\""))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.count_all("resource").await, 0);
}

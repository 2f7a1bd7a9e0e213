//! Hostile and malformed request bodies: each is a 400 naming what is wrong, nothing is
//! written, and the server keeps answering. Text the server accepts round-trips exactly.

use crate::helpers::{TestApp, assert_error, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// POSTs raw bytes as JSON.
async fn post_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> crate::helpers::Resp {
    app.send(
        app.request(Method::POST, "/api/v1/resource")
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[tokio::test]
async fn malformed_and_truncated_json_is_400() {
    let app = TestApp::spawn().await;
    let bodies: [&[u8]; 12] = [
        b"",
        b"{",
        b"{\"name\": }",
        b"{name: \"x\"}",
        b"{\"name\": \"x\",}",
        b"{'name': 'x'}",
        b"{\"name\": \"ab",
        b"{\"name\": \"x\"} trailing",
        b"nope",
        b"{\"name\": \"\\ud800\"}",
        b"{\"name\": \"\xff\xfe\"}",
        b"{\"name\": 1e999999}",
    ];
    for body in bodies {
        let r = post_raw(&app, body.to_vec()).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, ["body"], "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_the_server_survives() {
    let app = TestApp::spawn().await;
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let inside = format!("{{\"name\": \"x\", \"extra\": {arrays}}}");
    let unclosed = "[".repeat(100_000);
    for body in [arrays, objects, inside, unclosed] {
        let r = post_raw(&app, body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(app.get_path("/healthz").await.status, StatusCode::OK);
    }
    assert_eq!(app.count_all("resource").await, 0);
    app.create_ok("resource", &json!({"name": "still works"}))
        .await;
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_400() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "x"})).await);
    for body in [
        json!([]),
        json!([{"name": "x"}]),
        json!("name"),
        json!(null),
        json!(42),
        json!(-1.5),
        json!(true),
    ] {
        let r = app.create_resp("resource", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["body"],
            "POST {body}"
        );
        let r = app.put_resp("resource", &id, &body, None).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["body"]
        );
        let r = app.patch_resp("resource", &id, &body, None).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["body"]
        );
    }
    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.version_of("resource", &id).await, 1);
}

#[tokio::test]
async fn wrong_types_for_base_fields_are_400_naming_them() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"name": 5}), "name"),
        (json!({"name": true}), "name"),
        (json!({"name": {"x": 1}}), "name"),
        (json!({"name": ["x"]}), "name"),
        (json!({"name": null}), "name"),
        (json!({}), "name"),
        (json!({"name": "x", "status": 1}), "status"),
        (json!({"name": "x", "status": "ACTIVE"}), "status"),
        (json!({"name": "x", "status": null}), "status"),
        (json!({"name": "x", "status": "deleted"}), "status"),
    ];
    for (body, field) in cases {
        let r = app.create_resp("resource", &body).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [field],
            "{body}"
        );
    }
    assert_eq!(app.count_all("resource").await, 0);
}

#[tokio::test]
async fn status_deleted_is_refused_on_put_and_patch_too() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let id = id_of(&created);
    let body = json!({"name": "x", "status": "deleted"});
    let r = app.put_resp("resource", &id, &body, None).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["status"]
    );
    let r = app
        .patch_resp("resource", &id, &json!({"status": "deleted"}), None)
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["status"]
    );
    assert_eq!(app.get_ok("resource", &id).await, created);
    assert!(
        app.ids("resource", &[("status", "deleted")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn name_length_is_1_to_255_characters() {
    let app = TestApp::spawn().await;
    for name in [
        "".to_owned(),
        "a".repeat(256),
        "é".repeat(256),
        "😀".repeat(256),
    ] {
        let r = app.create_resp("resource", &json!({"name": name})).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["name"],
            "{} chars",
            name.chars().count()
        );
    }
    assert_eq!(app.count_all("resource").await, 0);

    // Characters, not bytes: 255 four-byte characters are fine.
    for name in [
        "a".repeat(255),
        "é".repeat(255),
        "😀".repeat(255),
        "x".to_owned(),
    ] {
        let data = app.create_ok("resource", &json!({"name": name})).await;
        assert_eq!(data["name"], json!(name));
        assert_eq!(
            app.get_ok("resource", &id_of(&data)).await["name"],
            json!(name)
        );
    }

    let id = id_of(&app.create_ok("resource", &json!({"name": "p"})).await);
    let r = app
        .patch_resp("resource", &id, &json!({"name": "b".repeat(256)}), None)
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["name"]
    );
    assert_eq!(app.get_ok("resource", &id).await["name"], json!("p"));
}

#[tokio::test]
async fn nul_and_astral_plane_text_round_trips_byte_exact() {
    let app = TestApp::spawn().await;
    let names = [
        "a\u{0}b",
        "𝄞😀",
        "\u{0}",
        "nul\u{0}𝄞 😀\u{7f}\u{feff}\u{200b}\u{10ffff}end",
        "line\nbreak\ttab\r\"quote\"\\",
        "'; DROP TABLE resource; --",
        "Robert'); DROP TABLE resource;--",
        "\" OR 1=1 --",
        "%_*[]",
    ];
    for name in names {
        if app.postgres && name.contains('\u{0}') {
            // PostgreSQL text cannot hold NUL: refused with a clear reason, nothing written.
            let before = app.count_all("resource").await;
            let r = app
                .send(
                    app.request(reqwest::Method::POST, "/api/v1/resource")
                        .json(&json!({"name": name})),
                )
                .await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
            assert!(
                r.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("NUL")),
                "{}",
                r.body
            );
            assert_eq!(app.count_all("resource").await, before);
            continue;
        }
        let created = app.create_ok("resource", &json!({"name": name})).await;
        assert_eq!(created["name"].as_str(), Some(name));
        let id = id_of(&created);
        let got = app.get_ok("resource", &id).await;
        assert_eq!(
            got["name"].as_str().map(str::as_bytes),
            Some(name.as_bytes())
        );

        let listed = app.list_all("resource", &[]).await;
        let found: Vec<&Value> = listed.iter().filter(|r| r["id"] == json!(id)).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["name"].as_str(), Some(name));

        // An exact filter on the value finds exactly this record.
        assert_eq!(
            app.ids("resource", &[("name", name)]).await,
            vec![id.clone()],
            "{name:?}"
        );

        // And through a PATCH.
        let patched = format!("{name}{name}");
        let (status, body) = app
            .patch("resource", &id, &json!({"name": patched}), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["name"].as_str(), Some(patched.as_str()));
        assert_eq!(
            app.get_ok("resource", &id).await["name"].as_str(),
            Some(patched.as_str())
        );
    }
    let stored = names
        .iter()
        .filter(|n| !(app.postgres && n.contains('\u{0}')))
        .count();
    assert_eq!(app.count_all("resource").await, stored);
}

#[tokio::test]
async fn server_set_fields_in_bodies_are_400_naming_each() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let id = id_of(&created);
    let all = json!({
        "name": "x",
        "id": "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d",
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
        "owner_id": null,
        "version": 99
    });
    let expected: BTreeSet<String> = ["id", "created_at", "updated_at", "owner_id", "version"]
        .map(str::to_owned)
        .into();
    for method in ["POST", "PUT", "PATCH"] {
        let r = match method {
            "POST" => app.create_resp("resource", &all).await,
            "PUT" => app.put_resp("resource", &id, &all, None).await,
            _ => app.patch_resp("resource", &id, &all, None).await,
        };
        let fields: BTreeSet<String> = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT")
            .into_iter()
            .collect();
        assert_eq!(fields, expected, "{method}");
        for field in &expected {
            let mut one = json!({"name": "x"});
            one[field] = all[field].clone();
            let r = match method {
                "POST" => app.create_resp("resource", &one).await,
                "PUT" => app.put_resp("resource", &id, &one, None).await,
                _ => app.patch_resp("resource", &id, &one, None).await,
            };
            let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
            assert_eq!(fields, [field.as_str()], "{method} with {field}");
        }
    }
    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.get_ok("resource", &id).await, created);
}

#[tokio::test]
async fn unknown_fields_are_400_naming_each() {
    let app = TestApp::spawn().await;
    let created = app.create_ok("resource", &json!({"name": "x"})).await;
    let id = id_of(&created);
    let body = json!({"name": "x", "colour": "red", "Name": "y", "": 1});
    let expected: BTreeSet<&str> = ["colour", "Name", ""].into();
    for r in [
        app.create_resp("resource", &body).await,
        app.put_resp("resource", &id, &body, None).await,
        app.patch_resp("resource", &id, &body, None).await,
    ] {
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        let got: BTreeSet<&str> = fields.iter().map(String::as_str).collect();
        assert_eq!(got, expected);
    }
    // Every problem in one answer: an unknown field and an invalid name together.
    let r = app
        .create_resp("resource", &json!({"name": "", "bogus": 1}))
        .await;
    let got: BTreeSet<String> = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT")
        .into_iter()
        .collect();
    assert_eq!(got, ["bogus".to_owned(), "name".to_owned()].into());

    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.get_ok("resource", &id).await, created);
}

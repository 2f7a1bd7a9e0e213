//! `POST /api/v1/{m}`: the created record, its headers, and `Idempotency-Key`.

use crate::helpers::{TestApp, assert_error, id_of, raw_header};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_record() {
    let app = TestApp::spawn().await;
    let r = app.create_resp("resource", &json!({"name": "first"})).await;
    let data = r.data(StatusCode::CREATED).clone();
    let id = id_of(&data);

    assert_eq!(r.header("etag"), Some("\"1\""));
    let location = r.header("location").expect("a Location header");
    assert!(
        location.ends_with(&format!("/api/v1/resource/{id}")),
        "Location {location:?} does not point at {id}"
    );
    assert!(r.header("idempotent-replayed").is_none());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );

    assert_eq!(data["name"], json!("first"));
    assert_eq!(data["status"], json!("active"));
    assert_eq!(data["version"], json!(1));
    assert_eq!(
        data["owner_id"],
        json!(app.admin_id),
        "the creator owns the record"
    );
    assert_eq!(data["created_at"], data["updated_at"]);
    let created = data["created_at"].as_str().expect("created_at is text");
    assert!(
        created.ends_with('Z') && created.len() == "2026-01-02T03:04:05.123456Z".len(),
        "created_at {created:?} is not RFC 3339 UTC with microseconds"
    );
    let uuid = uuid::Uuid::parse_str(&id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "id {id} is not a UUIDv7");

    // The Location really points at the record.
    let path = location.trim_start_matches(&format!("http://{}", app.addr));
    let got = app.get_path(path).await;
    assert_eq!(got.data(StatusCode::OK), &data);
}

#[tokio::test]
async fn create_accepts_status_inactive_and_lists_it_by_default() {
    let app = TestApp::spawn().await;
    let data = app
        .create_ok("resource", &json!({"name": "off", "status": "inactive"}))
        .await;
    assert_eq!(data["status"], json!("inactive"));
    assert_eq!(app.ids("resource", &[]).await, vec![id_of(&data)]);
    assert_eq!(
        app.ids("resource", &[("status", "inactive")]).await,
        vec![id_of(&data)]
    );
    assert!(
        app.ids("resource", &[("status", "active")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn ids_sort_by_creation() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, body) = app
            .create("resource", &json!({"name": format!("r{i}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["success"], json!(true));
        ids.push(id_of(&body["data"]));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[tokio::test]
async fn same_idempotency_key_and_body_replays_the_same_record() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "once"});
    let first = app.create_idempotent("resource", "key-1", &body).await;
    let record = first.data(StatusCode::CREATED).clone();
    assert!(first.header("idempotent-replayed").is_none());

    let second = app.create_idempotent("resource", "key-1", &body).await;
    assert_eq!(second.data(StatusCode::CREATED), &record);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.header("etag"), Some("\"1\""));
    assert_eq!(second.header("location"), first.header("location"));

    assert_eq!(app.ids("resource", &[]).await, vec![id_of(&record)]);
    assert_eq!(app.count_all("resource").await, 1);
}

#[tokio::test]
async fn idempotency_ignores_json_formatting_of_the_same_body() {
    let app = TestApp::spawn().await;
    let first = app
        .create_idempotent(
            "resource",
            "fmt",
            &json!({"name": "x", "status": "inactive"}),
        )
        .await;
    let id = id_of(first.data(StatusCode::CREATED));
    let second = app
        .send(
            app.request(Method::POST, "/api/v1/resource")
                .header("content-type", "application/json")
                .header("idempotency-key", "fmt")
                .body("{ \"status\" : \"inactive\",\n  \"name\":\"x\" }"),
        )
        .await;
    assert_eq!(id_of(second.data(StatusCode::CREATED)), id);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count_all("resource").await, 1);
}

#[tokio::test]
async fn same_idempotency_key_with_another_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let first = app
        .create_idempotent("resource", "key-2", &json!({"name": "a"}))
        .await;
    let record = first.data(StatusCode::CREATED).clone();

    let other = app
        .create_idempotent("resource", "key-2", &json!({"name": "b"}))
        .await;
    let fields = assert_error(&other, StatusCode::CONFLICT, "CONFLICT");
    assert_eq!(fields, vec!["Idempotency-Key"]);

    // Nothing new was written and the first record is untouched.
    assert_eq!(app.ids("resource", &[]).await, vec![id_of(&record)]);
    assert_eq!(app.count_all("resource").await, 1);
    assert_eq!(app.get_ok("resource", &id_of(&record)).await, record);
}

#[tokio::test]
async fn different_idempotency_keys_create_different_records() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "same"});
    let a = app.create_idempotent("resource", "k-a", &body).await;
    let b = app.create_idempotent("resource", "k-b", &body).await;
    assert_ne!(
        id_of(a.data(StatusCode::CREATED)),
        id_of(b.data(StatusCode::CREATED))
    );
    assert!(b.header("idempotent-replayed").is_none());
    assert_eq!(app.count_all("resource").await, 2);
}

#[tokio::test]
async fn invalid_idempotency_keys_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let long = "k".repeat(300);
    let bad: [&[u8]; 5] = [
        b"",
        long.as_bytes(),
        "clé-non-ascii".as_bytes(),
        b"has space",
        b"tab\there",
    ];
    for key in bad {
        let (name, value) = raw_header("idempotency-key", key);
        let r = app
            .send(
                app.request(Method::POST, "/api/v1/resource")
                    .header(name, value)
                    .json(&json!({"name": "x"})),
            )
            .await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, vec!["Idempotency-Key"], "key {key:?}");
    }
    assert_eq!(app.count_all("resource").await, 0);

    // The longest accepted key.
    let longest = "k".repeat(255);
    let ok = app
        .create_idempotent("resource", &longest, &json!({"name": "x"}))
        .await;
    ok.data(StatusCode::CREATED);
    assert_eq!(app.count_all("resource").await, 1);
}

#[tokio::test]
async fn a_refused_create_with_an_idempotency_key_does_not_spend_the_key() {
    let app = TestApp::spawn().await;
    let bad = app
        .create_idempotent("resource", "retry-me", &json!({"name": ""}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(app.count_all("resource").await, 0);
    let good = app
        .create_idempotent("resource", "retry-me", &json!({"name": "fixed"}))
        .await;
    good.data(StatusCode::CREATED);
    assert!(good.header("idempotent-replayed").is_none());
    assert_eq!(app.count_all("resource").await, 1);
}

//! Conditional requests and caching (RFC 9110 §13, RFC 9111): `If-Match` compares strongly
//! and takes a list; records and lists say `private, no-cache` with `Vary` on credentials;
//! a record's `Last-Modified` is its `updated_at` rounded down to the second, then up once
//! that is a minute old, and `If-Modified-Since` is honoured (to the microsecond) unless
//! `If-None-Match` is present.

use crate::helpers::{MISSING_ID, Resp, TestApp, assert_error, id_of};
use plinth_core::{RecordId, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// Every `If-Match` a client may send about a record at version 1 that must not match.
const NOT_MATCHING: [&str; 7] = [
    "\"bogus\"",
    "W/\"1\"",
    "\"7\", \"8\"",
    "\"\"",
    "\"01\"",
    "\"0\"",
    "\"-1\"",
];

#[tokio::test]
async fn if_match_tags_that_name_another_version_are_412_and_change_nothing() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "v1"})).await);
    let body = json!({"name": "changed"});
    for tag in NOT_MATCHING {
        let r = app.patch_resp("resource", &id, &body, Some(tag)).await;
        assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
        let r = app.put_resp("resource", &id, &body, Some(tag)).await;
        assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
        let r = app.delete_resp("resource", &id, "", Some(tag)).await;
        assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
        let r = app
            .delete_resp("resource", &id, "?purge=true", Some(tag))
            .await;
        assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    }
    let record = app.get_ok("resource", &id).await;
    assert_eq!(
        (record["version"].clone(), record["name"].clone()),
        (json!(1), json!("v1"))
    );
}

#[tokio::test]
async fn if_match_accepts_a_list_naming_the_current_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "v1"})).await);
    let r = app
        .patch_resp(
            "resource",
            &id,
            &json!({"name": "v2"}),
            Some("\"5\", \"1\""),
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(2));
    // Over several header lines, with a weak tag and an unknown one among them.
    let r = app
        .send(
            app.request(Method::PUT, &format!("/api/v1/resource/{id}"))
                .header("if-match", "W/\"2\", \"x\"")
                .header("if-match", "\"2\"")
                .json(&json!({"name": "v3"})),
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(3));
    let r = app
        .delete_resp("resource", &id, "", Some("\"3\",\"4\""))
        .await;
    assert_eq!(r.data(StatusCode::OK)["status"], json!("deleted"));
    let r = app
        .delete_resp("resource", &id, "?purge=true", Some("*"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn only_a_malformed_if_match_is_400_and_a_missing_record_stays_404() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("resource", &json!({"name": "v1"})).await);
    for bad in ["1", "\"1", "abc", "\"1\" \"2\"", "*, \"1\"", ","] {
        let r = app
            .patch_resp("resource", &id, &json!({"name": "x"}), Some(bad))
            .await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields, ["If-Match"], "If-Match {bad}");
    }
    let r = app
        .patch_resp(
            "resource",
            MISSING_ID,
            &json!({"name": "x"}),
            Some("\"bogus\""),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.version_of("resource", &id).await, 1);
}

#[tokio::test]
async fn a_users_if_match_follows_the_same_rules() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user("if-match@example.com").await;
    let path = format!("/api/v1/users/{}", user.id);
    let patch = |tag: &'static str| {
        app.request(Method::PATCH, &path)
            .header("if-match", tag)
            .json(&json!({"role": "admin"}))
    };
    for tag in NOT_MATCHING {
        let r = app.send(patch(tag)).await;
        assert_error(&r, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    }
    let r = app.send(patch("abc")).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    let r = app.send(patch("\"9\", \"1\"")).await;
    assert_eq!(r.data(StatusCode::OK)["version"], json!(2));
}

fn assert_private(r: &Resp) {
    assert_eq!(
        r.header("cache-control"),
        Some("private, no-cache"),
        "{r:?}"
    );
    let vary = r.header("vary").unwrap_or_default().to_ascii_lowercase();
    for name in ["authorization", "x-api-key"] {
        assert!(vary.contains(name), "Vary {vary:?} lacks {name}");
    }
    assert_ne!(r.header("cache-control"), Some("no-store"));
}

/// The HTTP-date of an RFC 3339 `updated_at`, cut to whole seconds (`up`: rounded up).
fn http_date(rfc3339: &Value, up: bool) -> String {
    let at = time::OffsetDateTime::parse(
        rfc3339.as_str().expect("a timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 timestamp");
    let mut secs = u64::try_from(at.unix_timestamp()).expect("after 1970");
    if up && at.nanosecond() > 0 {
        secs += 1;
    }
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A copy of a new record named `name`, last changed `age` ago (put in the store as an
/// import would); its id.
async fn aged_record(app: &TestApp, name: &str, age: Duration) -> String {
    let id = id_of(&app.create_ok("resource", &json!({"name": name})).await);
    let model = app.state.schema().model("resource").expect("the model");
    let id = RecordId::parse(&id).expect("an id");
    let mut record = app
        .state
        .store()
        .get(model, id)
        .await
        .expect("get")
        .expect("the record");
    record.id = RecordId::new_v7();
    let then = Timestamp::from_system(SystemTime::now() - age);
    (record.created_at, record.updated_at) = (then, then);
    let copy = record.id.to_string();
    app.state
        .store()
        .import_record(model, record)
        .await
        .expect("import");
    copy
}

/// Longer ago than a `Last-Modified` must be before it is sent.
const SETTLED: Duration = Duration::from_secs(120);

#[tokio::test]
async fn records_and_lists_say_how_caches_may_keep_them() {
    let app = TestApp::spawn().await;
    let id = aged_record(&app, "c", SETTLED).await;
    let r = app.get_resp("resource", &id, None).await;
    let record = r.data(StatusCode::OK).clone();
    assert_private(&r);
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(
        r.header("last-modified"),
        Some(http_date(&record["updated_at"], true).as_str())
    );
    let list = app.list_resp("resource", &[]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_private(&list);
    let not_modified = app.get_resp("resource", &id, Some("\"1\"")).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_private(&not_modified);
    assert_eq!(not_modified.header("etag"), Some("\"1\""));
    assert_eq!(
        not_modified.header("last-modified"),
        r.header("last-modified")
    );
    // A write answers the new version with its ETag; its date is not settled yet, so for
    // a minute Last-Modified is its second rounded down (never later than the answer).
    let patched = app
        .patch_resp("resource", &id, &json!({"name": "d"}), None)
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    let fresh = http_date(&patched.data(StatusCode::OK)["updated_at"], false);
    assert_eq!(patched.header("last-modified"), Some(fresh.as_str()));
    let r = app.get_resp("resource", &id, None).await;
    assert_eq!(r.header("last-modified"), Some(fresh.as_str()));
    assert_private(&r);
    // Sent back, that date is a 304 only if the record is exactly at a whole second.
    let r = get_if(&app, &id, &[("if-modified-since", &fresh)]).await;
    let exact = patched.data(StatusCode::OK)["updated_at"]
        .as_str()
        .is_some_and(|t| t.contains(".000000") || !t.contains('.'));
    let expected = if exact {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    assert_eq!(r.status, expected);
}

/// `GET` of a record with the given conditional headers.
async fn get_if(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = app.request(Method::GET, &format!("/api/v1/resource/{id}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.send(req).await
}

#[tokio::test]
async fn if_modified_since_is_honoured_unless_if_none_match_is_present() {
    let app = TestApp::spawn().await;
    let id = aged_record(&app, "d", SETTLED).await;
    let first = app.get_resp("resource", &id, None).await;
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    let since = httpdate::parse_http_date(&modified).expect("an HTTP-date");
    let before = httpdate::fmt_http_date(since - Duration::from_secs(3600));
    let after = httpdate::fmt_http_date(since + Duration::from_secs(3600));

    let r = get_if(&app, &id, &[("if-modified-since", &modified)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.raw.is_empty());
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.header("last-modified"), Some(modified.as_str()));
    let r = get_if(&app, &id, &[("if-modified-since", &after)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = get_if(&app, &id, &[("if-modified-since", &before)]).await;
    assert_eq!(r.data(StatusCode::OK)["name"], json!("d"));
    // Not a date: ignored.
    let r = get_if(&app, &id, &[("if-modified-since", "yesterday")]).await;
    assert_eq!(r.status, StatusCode::OK);
    // If-None-Match takes precedence: a tag that does not match means a full answer...
    let r = get_if(
        &app,
        &id,
        &[("if-none-match", "\"9\""), ("if-modified-since", &after)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // ...and one that matches means 304, whatever the date says.
    let r = get_if(
        &app,
        &id,
        &[("if-none-match", "\"1\""), ("if-modified-since", &before)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_change_after_the_date_a_client_holds_is_never_hidden_by_if_modified_since() {
    let app = TestApp::spawn().await;
    // A settled record: the client holds its Last-Modified; then two changes in a row.
    let id = aged_record(&app, "old", SETTLED).await;
    let held = app.get_resp("resource", &id, None).await;
    let held = held
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    let r = get_if(&app, &id, &[("if-modified-since", &held)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    for name in ["first", "second"] {
        let r = app
            .patch_resp("resource", &id, &json!({"name": name}), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = get_if(&app, &id, &[("if-modified-since", &held)]).await;
    assert_eq!(r.data(StatusCode::OK)["name"], json!("second"));

    // Two changes within one second: a date at that second (the Last-Modified of a fresh
    // record, or `updated_at` cut to seconds) does not hide the second change.
    let (id, seen) = loop {
        let created = app.create_ok("resource", &json!({"name": "v1"})).await;
        let id = id_of(&created);
        let r = app
            .patch_resp("resource", &id, &json!({"name": "v2"}), None)
            .await;
        let changed = r.data(StatusCode::OK).clone();
        let seen = http_date(&created["updated_at"], false);
        if http_date(&changed["updated_at"], false) == seen {
            break (id, seen);
        }
    };
    let r = get_if(&app, &id, &[("if-modified-since", &seen)]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a change within the same second as {seen} was answered 304"
    );
    assert_eq!(r.data(StatusCode::OK)["name"], json!("v2"));
}

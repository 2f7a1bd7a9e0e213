//! `pii` fields over HTTP: read back in plaintext, found by equality, refused (400 naming
//! the field) for ordering comparisons, `like` and sorting; an equality filter reveals
//! nothing across owners, to guests or to a revoked credential.

use crate::helpers::{TestApp, assert_error, decls, id_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `patient`: users read their own records; `ssn` pii and unique, `note` pii text.
async fn app() -> TestApp {
    TestApp::spawn_with(decls(
        json!([{"name": "patient", "user_read": "own", "fields": [
            {"name": "ssn", "type": "string", "pii": true, "unique": true, "max_length": 20},
            {"name": "note", "type": "text", "pii": true},
        ]}]),
    ))
    .await
}

#[tokio::test]
async fn pii_fields_read_back_and_filter_by_equality() {
    let app = app().await;
    let a = app
        .create_ok(
            "patient",
            &json!({"name": "a", "ssn": "123-45-6789", "note": "allergic"}),
        )
        .await;
    app.create_ok("patient", &json!({"name": "b", "ssn": "987-65-4321"}))
        .await;
    let got = app.get_ok("patient", &id_of(&a)).await;
    assert_eq!(got["ssn"], "123-45-6789");
    assert_eq!(got["note"], "allergic");
    assert_eq!(
        app.ids("patient", &[("ssn", "123-45-6789")]).await,
        [id_of(&a)]
    );
    assert_eq!(
        app.ids("patient", &[("ssn[in]", "123-45-6789,000")]).await,
        [id_of(&a)]
    );
    assert_eq!(
        app.ids("patient", &[("ssn[ne]", "987-65-4321")]).await,
        [id_of(&a)]
    );
    // Validation runs on the plaintext.
    let r = app
        .create_fail("patient", &json!({"name": "c", "ssn": "x".repeat(21)}))
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["ssn"]
    );
    // Unique through the blind index.
    let r = app
        .create_fail("patient", &json!({"name": "d", "ssn": "123-45-6789"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
}

#[tokio::test]
async fn range_like_and_sort_on_pii_are_400_naming_the_field() {
    let app = app().await;
    app.create_ok("patient", &json!({"name": "a", "ssn": "1"}))
        .await;
    for key in [
        "ssn[lt]",
        "ssn[lte]",
        "ssn[gt]",
        "ssn[gte]",
        "ssn[like]",
        "note[like]",
    ] {
        let r = app.list_resp("patient", &[(key, "1")]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            [key],
            "{key}"
        );
        assert!(r.body.to_string().contains("is pii"), "{key}: {}", r.body);
    }
    for sort in ["ssn", "-ssn", "note"] {
        let r = app.list_resp("patient", &[("sort", sort)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["sort"]
        );
        assert!(r.body.to_string().contains("pii"), "{sort}: {}", r.body);
    }
}

#[tokio::test]
async fn an_equality_filter_on_pii_reveals_nothing_across_owners() {
    let app = app().await;
    let (_, alice) = app.user("alice@example.com").await;
    let (bob_user, bob) = app.user("bob@example.com").await;
    let path = "/api/v1/patient?ssn=555-55-5555";
    app.create_as(
        "patient",
        &alice,
        &json!({"name": "a", "ssn": "555-55-5555"}),
    )
    .await;
    // Bob filters by Alice's value: an empty page, as for a value nobody has.
    let r = app.call_as(Method::GET, path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"], json!([]));
    let r = app.call_as(Method::GET, path, Some(&alice), None).await;
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
    // No credential, a forged one, and a revoked one.
    let r = app.call_as(Method::GET, path, None, None).await;
    assert!(
        r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN,
        "{}",
        r.body
    );
    assert!(!r.body.to_string().contains("555-55"), "{}", r.body);
    let r = app
        .call_as(Method::GET, path, Some("not-a-token"), None)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = app
        .send(app.request(Method::DELETE, &format!("/api/v1/users/{}", bob_user.id)))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.call_as(Method::GET, path, Some(&bob), None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    // Hostile values only fail to match.
    for value in ["' OR 1=1 --", "%", "*", "\u{0}"] {
        let r = app.list_resp("patient", &[("ssn", value)]).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{value:?}: {}",
            r.body
        );
        if r.status == StatusCode::OK {
            assert_eq!(r.body["data"], json!([]), "{value:?}");
        }
    }
}

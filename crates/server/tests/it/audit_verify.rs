//! `GET /api/v1/audit/verify`: the whole chain checked on request, as `plinth audit verify`
//! does. Intact after writes (and counting them); broken, with the entry and the reason,
//! once a row is changed behind the server's back; and the endpoint's attacks.

use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::json;

const VERIFY: &str = "/api/v1/audit/verify";

#[tokio::test]
async fn the_chain_is_intact_after_writes_and_counts_them() {
    let app = TestApp::spawn().await;
    let before = app.get_path(VERIFY).await;
    let before = before.data(StatusCode::OK).clone();
    assert_eq!(before["intact"], json!(true), "{before}");
    let n = before["entries"].as_u64().expect("a count");
    for name in ["a", "b", "c"] {
        app.create_as("resource", &app.admin_token, &json!({ "name": name }))
            .await;
    }
    let after = app.get_path(VERIFY).await;
    assert_eq!(after.header("cache-control"), Some("no-store"));
    assert_eq!(
        after.data(StatusCode::OK),
        &json!({"intact": true, "entries": n + 3, "seq": null, "reason": null})
    );
}

#[tokio::test]
async fn an_entry_changed_in_the_database_breaks_the_chain_at_that_entry() {
    let app = TestApp::spawn().await;
    for name in ["a", "b", "c"] {
        app.create_as("resource", &app.admin_token, &json!({ "name": name }))
            .await;
    }
    let seq: i64 = 3;
    app.database()
        .sql(&format!(
            "UPDATE _plinth_audit SET action = 'record.delete' WHERE seq = {seq}"
        ))
        .await;
    let r = app.get_path(VERIFY).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["intact"], json!(false), "{data}");
    assert_eq!(data["entries"], json!(null), "{data}");
    assert_eq!(data["seq"], json!(seq), "{data}");
    assert!(
        data["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("hash mismatch")),
        "{data}"
    );
    // An entry removed: the sequence breaks at the one after it.
    app.database()
        .sql("DELETE FROM _plinth_audit WHERE seq = 2")
        .await;
    let r = app.get_path(VERIFY).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["intact"], json!(false), "{data}");
    assert_eq!(data["seq"], json!(3), "{data}");
    assert!(
        data["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("sequence broken")),
        "{data}"
    );
}

#[tokio::test]
async fn only_admins_verify_and_nothing_else_is_taken() {
    let app = TestApp::spawn().await;
    app.assert_admin_only(VERIFY).await;
}

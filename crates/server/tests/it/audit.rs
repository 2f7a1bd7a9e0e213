//! The audit trail as the server writes it: each record write over HTTP appends one entry
//! naming the caller (an access token's user, or an API key and its owner), the request id
//! and the client's address.

use crate::helpers::{TestApp, id_of};
use plinth_store::AuditVerdict;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_write_over_http_is_audited_with_its_caller_request_and_address() {
    let app = TestApp::spawn().await;
    let key = app
        .create_key(&app.admin_token, &json!({"name": "ci"}))
        .await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let created = app
        .send(
            app.request(Method::POST, "/api/v1/resource")
                .json(&json!({"name": "a"})),
        )
        .await;
    let id = id_of(created.data(StatusCode::CREATED));
    let deleted = app
        .send(app.request_as(
            Method::DELETE,
            &format!("/api/v1/resource/{id}"),
            Some(&key),
        ))
        .await;
    deleted.data(StatusCode::OK);

    let store = app.state.store();
    let entries = store.audit_list(0, 100).await.expect("list the audit");
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor_kind.as_str(),
                e.actor_id.map(|u| u.to_string()),
                e.actor_label.as_str(),
                e.client_addr.as_deref(),
                e.record_id.map(|r| r.to_string()),
            )
        })
        .collect();
    let admin = Some(app.admin_id.clone());
    let (addr, rec) = (Some("127.0.0.1"), Some(id.clone()));
    assert_eq!(
        summary,
        [
            (
                "record.create",
                "user",
                admin.clone(),
                "admin",
                addr,
                rec.clone()
            ),
            ("record.delete", "api_key", admin, "admin", addr, rec),
        ]
    );
    assert_eq!(entries[0].request_id, created.request_id());
    assert_eq!(entries[1].request_id, deleted.request_id());
    assert_eq!(
        store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 2 }
    );
}

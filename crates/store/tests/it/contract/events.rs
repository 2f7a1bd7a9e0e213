//! Account and authentication events in the audit trail: each change to an account, a
//! session or a key appends its event in the change's transaction (a refused change appends
//! none), names its actor and target, and keeps no secret or email; a pii field's values
//! are redacted in a record write's changes; the chain verifies after a mix of both.

use super::{Engine, HASH, admin, as_user, model, no_cutoff, patch, started_now};
use plinth_core::auth::Email;
use plinth_core::{Principal, Role, Timestamp};
use plinth_store::{
    AuditEntry, AuditEvent, AuditVerdict, Event, NewApiKey, NewUser, Refresh, StoreError, User,
    UserChanges, WriteCtx,
};
use serde_json::json;
use uuid::Uuid;

contract!(
    account_session_and_key_changes_append_their_events,
    refused_account_changes_append_no_event,
    unchanged_account_values_neither_write_nor_end_sessions,
    pii_values_are_redacted_in_record_changes,
);

async fn entries(e: &Engine) -> Vec<AuditEntry> {
    e.store.audit_list(0, 1000).await.expect("list the audit")
}

/// `(action, actor kind, actor id, model, target)` of each entry.
type Summary = (String, String, Option<Uuid>, Option<String>, Option<Uuid>);

fn summary(all: &[AuditEntry]) -> Vec<Summary> {
    all.iter()
        .map(|x| {
            (
                x.action.clone(),
                x.actor_kind.clone(),
                x.actor_id,
                x.model.clone(),
                x.record_id.map(|r| *r.as_uuid()),
            )
        })
        .collect()
}

fn row(
    action: &str,
    kind: &str,
    actor: Option<Uuid>,
    model: &str,
    target: Option<Uuid>,
) -> Summary {
    (
        action.to_owned(),
        kind.to_owned(),
        actor,
        Some(model.to_owned()),
        target,
    )
}

fn later() -> Timestamp {
    Timestamp::from_system(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
}

fn guest() -> WriteCtx {
    let mut ctx = WriteCtx::new(Principal::guest(), "anon");
    ctx.client_addr = Some("192.0.2.9".to_owned());
    ctx
}

async fn account_session_and_key_changes_append_their_events(e: &Engine) {
    let s = &e.store;
    // Another admin, so that Ann (made one below) may go at the end.
    e.user("boss@example.com", Role::Admin).await;
    let ann = s
        .create_user(
            &admin(),
            NewUser {
                email: Email::parse("ann@example.com").expect("email"),
                password_hash: HASH.to_owned(),
                role: Role::User,
            },
        )
        .await
        .expect("create ann");
    let me = as_user(&ann);
    // A login, a refresh, a reuse of the spent token, a second login and its logout.
    let family = Uuid::now_v7();
    s.insert_refresh(&me, ann.id, family, "rtdigest-t1", later(), started_now())
        .await
        .expect("login");
    let rotated = s
        .rotate_refresh(&guest(), "rtdigest-t1", "rtdigest-t2", later(), no_cutoff())
        .await
        .expect("rotate");
    assert_eq!(rotated, Refresh::Rotated { user_id: ann.id });
    let reused = s
        .rotate_refresh(&guest(), "rtdigest-t1", "rtdigest-t3", later(), no_cutoff())
        .await
        .expect("reuse");
    assert_eq!(
        reused,
        Refresh::Reused {
            user_id: ann.id,
            family
        }
    );
    s.insert_refresh(
        &me,
        ann.id,
        Uuid::now_v7(),
        "rtdigest-u1",
        later(),
        started_now(),
    )
    .await
    .expect("login again");
    assert!(
        s.revoke_refresh_family(&guest(), "rtdigest-u1")
            .await
            .expect("logout")
    );
    // A failed login for her, one for nobody.
    for target in [Some(ann.id), None] {
        let event = AuditEvent {
            event: Event::LoginFailed,
            target,
            changes: json!({}),
        };
        s.audit_event(&guest(), event).await.expect("failed login");
    }
    // Her password, email and role; a key made and revoked; then she goes.
    let new_password = UserChanges {
        password_hash: Some(format!("{HASH}x")),
        ..UserChanges::default()
    };
    s.update_user(&me, ann.id, new_password, None)
        .await
        .expect("password");
    let both = UserChanges {
        email: Some(Email::parse("ann.b@example.com").expect("email")),
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    s.update_user(&admin(), ann.id, both, Some(2))
        .await
        .expect("email and role");
    let key = s
        .create_api_key(
            &me,
            NewApiKey {
                user_id: ann.id,
                name: "ci".to_owned(),
                prefix: "plk_abcd1234".to_owned(),
                key_hash: "keydigest".to_owned(),
                role: Role::User,
                expires_at: None,
            },
        )
        .await
        .expect("key");
    s.revoke_api_key(&me, key.id, Some(ann.id))
        .await
        .expect("revoke");
    s.delete_user(&admin(), ann.id).await.expect("delete");

    let all = &entries(e).await[1..];
    let (a, sys) = (Some(ann.id), None);
    assert_eq!(
        summary(all),
        [
            row("account.create", "system", sys, "_users", a),
            row("auth.login", "user", a, "_users", a),
            row("auth.refresh_reuse", "guest", sys, "_users", a),
            row("auth.login", "user", a, "_users", a),
            row("auth.logout", "user", a, "_users", a),
            row("auth.login_failed", "guest", sys, "_users", a),
            row("auth.login_failed", "guest", sys, "_users", None),
            row("account.password_change", "user", a, "_users", a),
            row("account.email_change", "system", sys, "_users", a),
            row("account.role_change", "system", sys, "_users", a),
            row("api_key.create", "user", a, "_api_keys", Some(key.id)),
            row("api_key.revoke", "user", a, "_api_keys", Some(key.id)),
            row("account.delete", "system", sys, "_users", a),
        ]
    );
    let changes: Vec<_> = all.iter().map(|x| x.changes.clone()).collect();
    assert_eq!(
        changes[0],
        json!({"email": {"to": "[redacted]"}, "role": {"to": "user"}})
    );
    assert_eq!(changes[2], json!({"family": family}));
    assert_eq!(changes[7], json!({}));
    assert_eq!(
        changes[8],
        json!({"email": {"from": "[redacted]", "to": "[redacted]"}})
    );
    assert_eq!(changes[9], json!({"role": {"from": "user", "to": "admin"}}));
    assert_eq!(
        changes[10],
        json!({"user_id": {"to": ann.id}, "name": {"to": "ci"},
               "prefix": {"to": "plk_abcd1234"}, "role": {"to": "user"},
               "expires_at": {"to": null}})
    );
    assert_eq!(
        changes[11],
        json!({"status": {"from": "active", "to": "revoked"}})
    );
    assert_eq!(
        changes[12],
        json!({"email": {"from": "[redacted]"}, "role": {"from": "admin"}})
    );
    // The request and address are the caller's, the logout's included.
    assert_eq!(all[4].request_id, "anon");
    assert_eq!(all[4].client_addr.as_deref(), Some("192.0.2.9"));
    // No secret and no email anywhere in the trail.
    let text = format!("{:?}", entries(e).await);
    for secret in ["argon2id", "rtdigest", "keydigest", "ann@", "ann.b@"] {
        assert!(!text.contains(secret), "{secret} in the audit trail");
    }
    assert_eq!(
        s.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 14 }
    );
}

async fn refused_account_changes_append_no_event(e: &Engine) {
    let s = &e.store;
    let boss = e.user("boss@example.com", Role::Admin).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let before = entries(e).await.len();
    assert_eq!(before, 2);
    // A taken email; a stale version; a missing account; the last admin demoted or deleted.
    let taken = s
        .create_user(
            &admin(),
            NewUser {
                email: Email::parse("BOB@example.com").expect("email"),
                password_hash: HASH.to_owned(),
                role: Role::User,
            },
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    let to_admin = || UserChanges {
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    let stale = s.update_user(&admin(), bob.id, to_admin(), Some(7)).await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    let gone = s
        .update_user(&admin(), Uuid::now_v7(), to_admin(), None)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let demote = UserChanges {
        role: Some(Role::User),
        ..UserChanges::default()
    };
    let last = s.update_user(&admin(), boss.id, demote, None).await;
    assert!(matches!(last, Err(StoreError::Conflict { .. })), "{last:?}");
    let last = s.delete_user(&admin(), boss.id).await;
    assert!(matches!(last, Err(StoreError::Conflict { .. })), "{last:?}");
    let gone = s.delete_user(&admin(), Uuid::now_v7()).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    // A key that is not there, or not the caller's; an unknown token, a second logout.
    let missing = s.revoke_api_key(&admin(), Uuid::now_v7(), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let me = as_user(&bob);
    s.insert_refresh(&me, bob.id, Uuid::now_v7(), "b1", later(), started_now())
        .await
        .expect("login");
    assert!(
        s.revoke_refresh_family(&guest(), "b1")
            .await
            .expect("logout")
    );
    let counted = entries(e).await.len();
    assert_eq!(counted, before + 2, "the login and the logout");
    assert!(
        s.revoke_refresh_family(&guest(), "b1")
            .await
            .expect("again")
    );
    assert!(
        !s.revoke_refresh_family(&guest(), "nope")
            .await
            .expect("unknown")
    );
    let invalid = s
        .rotate_refresh(&guest(), "nope", "n", later(), no_cutoff())
        .await
        .expect("rotate unknown");
    assert_eq!(invalid, Refresh::Invalid);
    // An email changed to the same address, a role to the same role: no change to show.
    let same = UserChanges {
        email: Some(Email::parse("bob@example.com").expect("email")),
        role: Some(Role::User),
        ..UserChanges::default()
    };
    s.update_user(&admin(), bob.id, same, None)
        .await
        .expect("a change that changes nothing");
    assert_eq!(
        entries(e).await.len(),
        counted,
        "a refused change left an entry"
    );
    assert_eq!(
        s.audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: counted as u64
        }
    );
}

/// Whether the session of refresh token `token` is live: rotating it to `next` succeeds.
async fn live(e: &Engine, user: &User, token: &str, next: &str) -> bool {
    let done = e
        .store
        .rotate_refresh(&guest(), token, next, later(), no_cutoff())
        .await
        .expect("rotate");
    assert!(
        matches!(done, Refresh::Rotated { .. } | Refresh::Invalid),
        "{done:?}"
    );
    done == Refresh::Rotated { user_id: user.id }
}

async fn unchanged_account_values_neither_write_nor_end_sessions(e: &Engine) {
    let s = &e.store;
    let bob = e.user("Bob@example.com", Role::User).await;
    let me = as_user(&bob);
    s.insert_refresh(&me, bob.id, Uuid::now_v7(), "s1", later(), started_now())
        .await
        .expect("login");
    let counted = entries(e).await.len();
    // The role and the email he already has (the email in another case is the same
    // address for sign-in, but a new spelling to show).
    let same = UserChanges {
        email: Some(Email::parse("Bob@example.com").expect("email")),
        role: Some(Role::User),
        ..UserChanges::default()
    };
    let after = s
        .update_user(&admin(), bob.id, same, Some(bob.version))
        .await
        .expect("an update that changes nothing");
    assert_eq!(
        after.version, bob.version,
        "nothing changed, yet a new version"
    );
    assert_eq!(after.updated_at, bob.updated_at);
    assert_eq!(entries(e).await.len(), counted, "an entry for no change");
    assert!(
        live(e, &bob, "s1", "s2").await,
        "no change ended his session"
    );
    let stale = UserChanges {
        role: Some(Role::User),
        ..UserChanges::default()
    };
    let stale = s.update_user(&admin(), bob.id, stale, Some(7)).await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    // Another case: written and audited, but the sign-in address is the same.
    let case = UserChanges {
        email: Some(Email::parse("bob@example.com").expect("email")),
        role: Some(Role::User),
        ..UserChanges::default()
    };
    let after = s
        .update_user(&admin(), bob.id, case, None)
        .await
        .expect("a new spelling");
    assert_eq!(after.email, "bob@example.com");
    assert_eq!(after.version, bob.version + 1);
    let all = entries(e).await;
    assert_eq!(all.len(), counted + 1);
    assert_eq!(all[counted].action, "account.email_change");
    assert!(
        live(e, &bob, "s2", "s3").await,
        "a new spelling ended his session"
    );
    // A new role: written, audited, and every session ends.
    let promote = UserChanges {
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    let after = s
        .update_user(&admin(), bob.id, promote, None)
        .await
        .expect("promote");
    assert_eq!(after.version, bob.version + 2);
    let all = entries(e).await;
    assert_eq!(all.len(), counted + 2);
    assert_eq!(all[counted + 1].action, "account.role_change");
    assert!(
        !live(e, &bob, "s3", "s4").await,
        "a new role kept his session"
    );
    assert_eq!(
        s.audit_verify().await.expect("verify"),
        AuditVerdict::Intact {
            entries: (counted + 2) as u64
        }
    );
}

async fn pii_values_are_redacted_in_record_changes(e: &Engine) {
    let decls = json!([{"name": "patient", "fields": [
        {"name": "ssn", "type": "string", "pii": true, "unique": true},
        {"name": "notes", "type": "text", "pii": true},
        {"name": "ward", "type": "string"}
    ]}]);
    let s = e.migrate(decls).await;
    let patient = model(&s, "patient");
    let r = e
        .create(
            &admin(),
            &patient,
            json!({"name": "p", "ssn": "123-45-6789", "ward": "b"}),
        )
        .await;
    let p = patch(
        &patient,
        &json!({"ssn": "987-65-4321", "notes": "allergic", "ward": "c"}),
    );
    e.store
        .update(&admin(), &patient, r.id, p, None)
        .await
        .expect("update");
    let p = patch(&patient, &json!({"notes": null}));
    e.store
        .update(&admin(), &patient, r.id, p, None)
        .await
        .expect("clear");
    e.store
        .purge(&admin(), &patient, r.id, None)
        .await
        .expect("purge");
    let all = entries(e).await;
    let changes: Vec<_> = all.iter().map(|x| x.changes.clone()).collect();
    assert_eq!(
        changes,
        [
            json!({"name": {"to": "p"}, "status": {"to": "active"},
                   "ssn": {"to": "[redacted]"}, "ward": {"to": "b"}}),
            json!({"ssn": {"from": "[redacted]", "to": "[redacted]"},
                   "notes": {"from": null, "to": "[redacted]"},
                   "ward": {"from": "b", "to": "c"}}),
            json!({"notes": {"from": "[redacted]", "to": null}}),
            json!({"name": {"from": "p"}, "status": {"from": "active"},
                   "ssn": {"from": "[redacted]"}, "ward": {"from": "c"}}),
        ]
    );
    let text = format!("{all:?}");
    for value in ["123-45", "987-65", "allergic"] {
        assert!(!text.contains(value), "{value} in the audit trail");
    }
    assert_eq!(
        e.store.audit_verify().await.expect("verify"),
        AuditVerdict::Intact { entries: 4 }
    );
}

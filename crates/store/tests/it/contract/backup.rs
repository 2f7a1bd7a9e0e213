//! `Store::backup_to` / `Store::restore_from` on the engine under test: a backup restored
//! into another empty database of the same engine gives back every table exactly (typed
//! values, sealed values, accounts, API keys, feature flags, the audit chain), a restore over data is
//! refused unless forced, and no change is replayed across a restore.

use super::{Engine, HASH, admin, draft, model, schema};
use plinth_core::auth::Email;
use plinth_core::flags::{Audience, FlagKey, FlagRule, Rollout};
use plinth_core::{Role, Schema};
use plinth_store::backup::BackupError;
use plinth_store::{AuditVerdict, NewApiKey, NewFlag, NewUser, Store};
use serde_json::json;

contract!(
    a_backup_restores_every_table_exactly,
    a_restore_over_data_is_refused_unless_forced,
    a_restore_starts_the_change_window_at_its_head,
);

fn decls() -> Schema {
    schema(json!([
        {"name": "customer", "fields": [
            {"name": "email", "type": "string", "pii": true},
            {"name": "born", "type": "datetime"},
            {"name": "score", "type": "float"},
            {"name": "meta", "type": "json"},
            {"name": "vip", "type": "boolean"}
        ]},
        {"name": "order", "fields": [
            {"name": "customer", "type": "reference", "model": "customer"},
            {"name": "total", "type": "integer"}
        ]}
    ]))
}

/// A user, an API key, a feature flag, 30 customers (one deleted, one updated) and an order.
async fn populate(store: &dyn Store, schema: &Schema) {
    store.migrate(schema, false).await.expect("migrate");
    let user = store
        .create_user(
            &admin(),
            NewUser {
                email: Email::parse("Ada@Example.com").expect("email"),
                password_hash: HASH.to_owned(),
                role: Role::Admin,
            },
        )
        .await
        .expect("user");
    let key = NewApiKey {
        user_id: user.id,
        name: "ci".to_owned(),
        prefix: "plk_abc".to_owned(),
        key_hash: "ab".repeat(32),
        role: Role::User,
        expires_at: None,
    };
    store.create_api_key(&admin(), key).await.expect("key");
    let flag = NewFlag {
        key: FlagKey::parse("new-checkout").expect("a key"),
        description: "the one-page checkout".to_owned(),
        rule: FlagRule {
            enabled: true,
            rollout: Rollout::from_percent(12.5).expect("a rollout"),
            allow: vec![Audience::User(user.id)],
            deny: vec![Audience::Role(Role::Admin)],
            on_from: plinth_core::Timestamp::from_micros(1_700_000_000_000_001),
            off_after: None,
        },
    };
    store.create_flag(&admin(), flag).await.expect("flag");
    let ctx = super::as_user(&user);
    let (customer, order) = (model(schema, "customer"), model(schema, "order"));
    let mut first = None;
    for i in 0..30 {
        let body = json!({"name": format!("c{i} 𝄞"), "email": format!("c{i}@x.io"),
            "born": "1999-12-31T23:59:59.123456Z", "score": 0.1 + f64::from(i),
            "meta": {"tags": ["a", i], "nested": {"x": null}}, "vip": i % 2 == 0});
        let created = store
            .create(&ctx, &customer, draft(&customer, &body), None)
            .await
            .expect("create");
        first.get_or_insert(created.record.id);
    }
    let first = first.expect("a customer");
    store
        .delete(&ctx, &customer, first, None)
        .await
        .expect("delete");
    let body = json!({"name": "o", "customer": first.to_string(), "total": -7});
    store
        .create(&ctx, &order, draft(&order, &body), None)
        .await
        .expect("order");
}

/// Everything the store shows of a database: users, keys, flags, every record, every audit
/// entry.
async fn everything(store: &dyn Store, schema: &Schema) -> String {
    let users = store.list_users(None, 100).await.expect("users");
    let keys = store.list_api_keys(None).await.expect("keys");
    let flags = store.list_flags().await.expect("flags");
    let mut records = Vec::new();
    for m in schema.models() {
        let pairs = [
            (
                "status[in]".to_owned(),
                "active,inactive,deleted".to_owned(),
            ),
            ("limit".to_owned(), "200".to_owned()),
        ];
        let query =
            plinth_core::ListQuery::parse(m, &pairs, plinth_core::FieldAccess::All).expect("query");
        let page = store
            .list(m, &query, plinth_core::ListScope::All)
            .await
            .expect("list");
        records.push(format!("{:?}", page.records));
    }
    let audit = store.audit_list(0, 1000).await.expect("audit");
    let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
    let hashes: Vec<&str> = users.iter().map(|u| u.password_hash.as_str()).collect();
    format!("{emails:?} {hashes:?}\n{keys:?}\n{flags:?}\n{records:?}\n{audit:?}")
}

async fn a_backup_restores_every_table_exactly(e: &Engine) {
    let schema = decls();
    populate(e.store.as_ref(), &schema).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.backup");
    let taken = e.store.backup_to(&file).await.expect("backup");
    assert_eq!(taken.contents.users, 1);
    assert_eq!(taken.contents.api_keys, 1);
    assert!(taken.contents.audit_entries >= 33, "{taken:?}");
    // A second backup to the same path is refused.
    assert!(matches!(
        e.store.backup_to(&file).await,
        Err(BackupError::Exists(_))
    ));

    let target = e.another().await;
    let restored = target
        .store
        .restore_from(&file, false)
        .await
        .expect("restore");
    assert_eq!(restored.replaced, None);
    assert_eq!(restored.contents, taken.contents);
    let before = everything(e.store.as_ref(), &schema).await;
    assert!(
        before.contains("c1@x.io") && before.contains("0.1"),
        "{before}"
    );
    assert_eq!(everything(target.store.as_ref(), &schema).await, before);
    assert_eq!(
        target.store.recorded().await.expect("recorded"),
        e.store.recorded().await.expect("recorded")
    );
    match target.store.audit_verify().await.expect("verify") {
        AuditVerdict::Intact { .. } => {}
        other => panic!("the restored chain: {other:?}"),
    }
    target.store.close().await;
}

async fn a_restore_over_data_is_refused_unless_forced(e: &Engine) {
    let schema = decls();
    populate(e.store.as_ref(), &schema).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.backup");
    e.store.backup_to(&file).await.expect("backup");
    let user = e.user("late@x.io", Role::User).await;
    let refused = e.store.restore_from(&file, false).await;
    assert!(
        matches!(&refused, Err(BackupError::NotEmpty(what)) if what.contains("2 user(s)")),
        "{refused:?}"
    );
    assert!(e.store.get_user(user.id).await.expect("get").is_some());
    if e.is_postgres() {
        // An object of the operator's on a Plinth table: the restore fails, changing nothing.
        e.raw("CREATE VIEW customer_names AS SELECT name FROM customer")
            .await;
        let blocked = e.store.restore_from(&file, true).await;
        assert!(matches!(blocked, Err(BackupError::Store(_))), "{blocked:?}");
        assert!(e.store.get_user(user.id).await.expect("get").is_some());
        e.raw("DROP VIEW customer_names").await;
    }
    let restored = e.store.restore_from(&file, true).await.expect("forced");
    let replaced = restored.replaced.expect("it replaced something");
    assert_eq!(replaced.users, 2);
    assert_eq!(restored.contents.users, 1);
    assert!(e.store.get_user(user.id).await.expect("get").is_none());
}

async fn a_restore_starts_the_change_window_at_its_head(e: &Engine) {
    let schema = decls();
    populate(e.store.as_ref(), &schema).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.backup");
    e.store.backup_to(&file).await.expect("backup");
    let before = e.store.change_window().await.expect("the window");
    assert!(before.pruned_through < before.head, "{before:?}");
    e.store.restore_from(&file, true).await.expect("forced");
    // The backup may be another database's: its changes are not replayed.
    let after = e.store.change_window().await.expect("the window");
    assert_eq!(after.pruned_through, after.head, "{after:?}");
    assert_eq!(after.head, before.head);
}

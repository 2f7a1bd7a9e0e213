//! `plinth export` / `plinth import` at the store level, both ways between the engine under
//! test and SQLite (on PostgreSQL: SQLite → PostgreSQL and PostgreSQL → SQLite), losslessly,
//! feature flags included; a refused flag line is named and leaves nothing, and a file
//! written before flags were exported still imports.

use super::{Engine, HASH, admin, draft, model, schema};
use plinth_core::auth::Email;
use plinth_core::flags::{Audience, FlagChanges, FlagKey, FlagRule, Rollout};
use plinth_core::{RecordId, Role, Schema, Status, Timestamp};
use plinth_store::transfer::{self, TransferError};
use plinth_store::{NewFlag, NewUser, Store, User};
use serde_json::json;

contract!(
    what_sqlite_exports_imports_exactly,
    what_this_engine_exports_imports_exactly_into_sqlite,
    garbage_is_refused_with_its_line,
    a_failed_import_leaves_nothing_and_can_be_retried,
    export_is_at_the_recorded_schema,
    a_refused_flag_line_is_named_and_leaves_nothing,
    an_export_without_flag_lines_still_imports,
    a_target_holding_flags_is_not_empty,
);

fn decls() -> Schema {
    schema(json!([
        {"name": "customer", "fields": [
            {"name": "email", "type": "string", "unique": true},
            {"name": "born", "type": "datetime"},
            {"name": "score", "type": "float"},
            {"name": "meta", "type": "json"},
            {"name": "vip", "type": "boolean"},
            {"name": "since", "type": "date"},
            {"name": "balance", "type": "decimal", "scale": 3},
            {"name": "tags", "type": "array", "items": "string"},
            {"name": "sizes", "type": "array", "items": "integer"},
            {"name": "site", "type": "url"}
        ]},
        {"name": "order", "fields": [
            {"name": "customer", "type": "reference", "model": "customer", "required": true},
            {"name": "total", "type": "integer"}
        ]}
    ]))
}

/// A user, three flags (one changed since, one of Plinth's own), 120 customers (one
/// deleted) and an order referencing the first customer.
async fn populate(store: &dyn Store, schema: &Schema) -> (User, Vec<RecordId>) {
    store
        .migrate(schema, false)
        .await
        .expect("migrate the source");
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
    populate_flags(store, &user).await;
    let ctx = super::as_user(&user);
    let (customer, order) = (model(schema, "customer"), model(schema, "order"));
    let mut ids = Vec::new();
    for i in 0..120 {
        let body = json!({"name": format!("c{i} 𝄞"), "email": format!("c{i}@x.io"),
            "born": "1999-12-31T23:59:59.123456Z", "score": 0.1 + f64::from(i),
            "meta": {"tags": ["a", i], "nested": {"x": null}}, "vip": i % 2 == 0,
            "since": format!("{:04}-02-28", 1 + i * 80), "balance": format!("-{i}.005"),
            "tags": ["a", format!("t{i}"), "'\""], "sizes": [i, -1],
            "site": format!("https://x.io/{i}")});
        let d = draft(&customer, &body);
        ids.push(
            store
                .create(&ctx, &customer, d, None)
                .await
                .expect("create")
                .record
                .id,
        );
    }
    let d = draft(
        &order,
        &json!({"name": "o1", "customer": ids[0].to_string(), "total": 42}),
    );
    store
        .create(&admin(), &order, d, None)
        .await
        .expect("order");
    store
        .delete(&admin(), &customer, ids[1], None)
        .await
        .expect("soft delete");
    (user, ids)
}

async fn populate_flags(store: &dyn Store, user: &User) {
    let key = |k: &str| FlagKey::parse(k).expect("key");
    let rule = |enabled: bool, percent: f64| FlagRule {
        enabled,
        rollout: Rollout::from_percent(percent).expect("rollout"),
        allow: vec![],
        deny: vec![],
        on_from: None,
        off_after: None,
    };
    let full = FlagRule {
        allow: vec![Audience::User(user.id), Audience::Role(Role::Admin)],
        deny: vec![Audience::ApiKey(uuid::Uuid::now_v7())],
        on_from: Timestamp::from_micros(1_700_000_000_000_001),
        off_after: Timestamp::from_micros(1_900_000_000_000_999),
        ..rule(true, 12.34)
    };
    for (k, description, rule) in [
        ("new-checkout", "the one-page checkout 𝄞", full),
        ("plinth.replica_reads", "", rule(false, 100.0)),
        ("a.first", "", rule(true, 0.01)),
    ] {
        let new = NewFlag {
            key: key(k),
            description: description.to_owned(),
            rule,
        };
        store.create_flag(&admin(), new).await.expect("flag");
    }
    let changes = FlagChanges {
        rollout: Some(Rollout::from_percent(99.99).expect("rollout")),
        ..FlagChanges::default()
    };
    let changed = store
        .update_flag(&admin(), &key("a.first"), changes, None)
        .await
        .expect("change a flag");
    assert_eq!(changed.version, 2);
}

/// Exports `source`, imports into the empty `target`, and checks that nothing changed.
async fn round_trip(source: &dyn Store, target: &dyn Store) {
    let schema = decls();
    let (user, ids) = populate(source, &schema).await;
    let mut dump = Vec::new();
    let counts = transfer::export(source, &mut dump).await.expect("export");
    assert_eq!((counts.users, counts.flags, counts.records), (1, 3, 121));
    let text = String::from_utf8_lossy(&dump).into_owned();
    for typed in [
        r#""since":"0561-02-28""#,
        r#""balance":"-7.005""#,
        r#""tags":["a","t7","'\""]"#,
        r#""sizes":[7,-1]"#,
    ] {
        assert!(text.contains(typed), "{typed} not in the export");
    }
    let flag: serde_json::Value = text
        .lines()
        .find(|l| l.starts_with("{\"flag\""))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .expect("a flag line");
    let mut parts: Vec<&str> = flag["flag"]
        .as_object()
        .expect("a flag")
        .keys()
        .map(String::as_str)
        .collect();
    parts.sort_unstable();
    assert_eq!(
        parts,
        [
            "allow",
            "created_at",
            "deny",
            "description",
            "enabled",
            "id",
            "key",
            "off_after",
            "on_from",
            "rollout",
            "updated_at",
            "version"
        ]
    );

    target
        .migrate(&schema, false)
        .await
        .expect("migrate the target");
    let imported = transfer::import(target, &schema, &mut dump.as_slice())
        .await
        .expect("import");
    assert_eq!(imported, counts);
    // Exported again from the target, the file is identical: ids, times, owners, versions,
    // statuses, values and hashes all survived.
    let mut again = Vec::new();
    transfer::export(target, &mut again)
        .await
        .expect("export the target");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&dump)
    );
    assert_eq!(
        target.get_user(user.id).await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(
        target.list_flags().await.expect("the target's flags"),
        source.list_flags().await.expect("the source's flags"),
        "flags compared whole: ids, rules, times, versions"
    );
    let customer = model(&schema, "customer");
    let deleted = target
        .get(&customer, ids[1])
        .await
        .expect("get")
        .expect("moved");
    assert_eq!((deleted.status, deleted.version), (Status::Deleted, 2));
    let first = target
        .get(&customer, ids[0])
        .await
        .expect("get")
        .expect("moved");
    assert_eq!(
        Some(first),
        source.get(&customer, ids[0]).await.expect("get"),
        "one record, compared whole"
    );
    // A second import into the now populated target is refused, adding nothing.
    let err = transfer::import(target, &schema, &mut dump.as_slice())
        .await
        .expect_err("not empty");
    assert!(matches!(err, TransferError::NotEmpty(_)), "{err}");
    assert_eq!(target.list_users(None, 10).await.expect("list").len(), 1);
    assert_eq!(target.list_flags().await.expect("flags").len(), 3);
}

async fn what_sqlite_exports_imports_exactly(e: &Engine) {
    let source = Engine::sqlite().await;
    round_trip(source.store.as_ref(), e.store.as_ref()).await;
    source.store.close().await;
}

async fn what_this_engine_exports_imports_exactly_into_sqlite(e: &Engine) {
    let target = Engine::sqlite().await;
    round_trip(e.store.as_ref(), target.store.as_ref()).await;
    target.store.close().await;
}

async fn garbage_is_refused_with_its_line(e: &Engine) {
    let schema = decls();
    e.store.migrate(&schema, false).await.expect("migrate");
    for (input, line) in [
        ("", 0),
        ("not json\n", 1),
        ("{\"hello\": 1}\n", 1),
        (
            "{\"plinth_export\": 1, \"models\": []}\n{\"record\": {\"model\": \"nope\"}}\n",
            2,
        ),
        (
            "{\"plinth_export\": 1, \"models\": []}\n{\"user\": {\"id\": \"x\"}}\n",
            2,
        ),
        (
            "{\"plinth_export\": 1, \"models\": []}\n{\"flag\": {\"key\": \"Not A Key\"}}\n",
            2,
        ),
    ] {
        let err = transfer::import(e.store.as_ref(), &schema, &mut input.as_bytes())
            .await
            .expect_err("refused");
        match err {
            TransferError::Format { line: l, .. } => assert_eq!(l, line, "{input:?}"),
            other => panic!("{input:?}: {other}"),
        }
    }
    assert!(
        e.store.list_users(None, 1).await.expect("list").is_empty(),
        "nothing imported"
    );
}

/// An export of one user and two customers sharing an email (refused by the unique index
/// at the last line), and the same file with the clash fixed.
async fn clashing_export() -> (String, String) {
    let source = Engine::sqlite().await;
    let loose = schema(json!([{"name": "customer", "fields": [
        {"name": "email", "type": "string"}
    ]}]));
    let user = populate_user(source.store.as_ref(), &loose).await;
    let customer = model(&loose, "customer");
    for name in ["a", "b"] {
        let d = draft(&customer, &json!({"name": name, "email": "same@x.io"}));
        source
            .store
            .create(&super::as_user(&user), &customer, d, None)
            .await
            .expect("create");
    }
    let mut dump = Vec::new();
    transfer::export(source.store.as_ref(), &mut dump)
        .await
        .expect("export");
    source.store.close().await;
    let bad = String::from_utf8(dump).expect("utf-8");
    let last = bad
        .trim_end()
        .rsplit('\n')
        .next()
        .expect("a last line")
        .to_owned();
    let fixed = bad.replace(&last, &last.replace("same@x.io", "other@x.io"));
    (bad, fixed)
}

async fn populate_user(store: &dyn Store, schema: &Schema) -> User {
    store.migrate(schema, false).await.expect("migrate");
    store
        .create_user(
            &admin(),
            NewUser {
                email: Email::parse("ann@example.com").expect("email"),
                password_hash: HASH.to_owned(),
                role: Role::User,
            },
        )
        .await
        .expect("user")
}

async fn a_failed_import_leaves_nothing_and_can_be_retried(e: &Engine) {
    let (bad, fixed) = clashing_export().await;
    let target = decls();
    let err = transfer::import(e.store.as_ref(), &target, &mut bad.as_bytes())
        .await
        .expect_err("the clash refuses the import");
    match &err {
        TransferError::Format { line, reason } => {
            assert_eq!(*line, 4, "{reason}");
            assert!(reason.contains("email"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // Nothing of it is left: no users, and not even the schema it migrated to.
    assert!(e.store.list_users(None, 1).await.expect("list").is_empty());
    assert!(e.store.recorded().await.expect("recorded").is_empty());
    let counts = transfer::import(e.store.as_ref(), &target, &mut fixed.as_bytes())
        .await
        .expect("the fixed file imports");
    assert_eq!((counts.users, counts.records), (1, 2));
    let names: Vec<String> = e
        .store
        .recorded()
        .await
        .expect("recorded")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["customer", "order"]);
}

async fn export_is_at_the_recorded_schema(e: &Engine) {
    let schema = decls();
    populate(e.store.as_ref(), &schema).await;
    let mut dump = Vec::new();
    let counts = transfer::export(e.store.as_ref(), &mut dump)
        .await
        .expect("export");
    assert_eq!((counts.users, counts.flags, counts.records), (1, 3, 121));
    let header: serde_json::Value =
        serde_json::from_slice(dump.split(|b| *b == b'\n').next().expect("a header"))
            .expect("JSON");
    let recorded =
        serde_json::to_value(e.store.recorded().await.expect("recorded")).expect("serialise");
    assert_eq!(header["models"], recorded);
}

/// A SQLite export of [`populate`]'s data, as lines.
async fn populated_export() -> Vec<String> {
    let source = Engine::sqlite().await;
    populate(source.store.as_ref(), &decls()).await;
    let mut dump = Vec::new();
    transfer::export(source.store.as_ref(), &mut dump)
        .await
        .expect("export");
    source.store.close().await;
    String::from_utf8(dump)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Nothing at all in the target: no users, no flags, no recorded models.
async fn assert_empty(e: &Engine) {
    assert!(e.store.list_users(None, 1).await.expect("users").is_empty());
    assert!(e.store.list_flags().await.expect("flags").is_empty());
    assert!(e.store.recorded().await.expect("recorded").is_empty());
}

async fn a_refused_flag_line_is_named_and_leaves_nothing(e: &Engine) {
    let lines = populated_export().await;
    let flag = lines
        .iter()
        .find(|l| l.contains("\"key\":\"new-checkout\""))
        .expect("the flag's line");
    let mut twin: serde_json::Value = serde_json::from_str(flag).expect("JSON");
    let id = twin["flag"]["id"].as_str().expect("an id").to_owned();
    // The target refuses these inside the transaction, after the users and the flags
    // before them are in: another flag under a taken key, another key under a taken id.
    let taken_key = {
        twin["flag"]["id"] = json!(uuid::Uuid::now_v7());
        twin.to_string()
    };
    let taken_id = {
        twin["flag"]["id"] = json!(id);
        twin["flag"]["key"] = json!("other");
        twin.to_string()
    };
    // The file checks what one line can: a rollout over 100 %, a schedule ending before it
    // starts, an audience entry of no kind.
    let over = flag.replace("\"rollout\":12.34", "\"rollout\":100.01");
    let backwards = flag.replace("2030-03-17T17:46:40.000999Z", "2000-01-01T00:00:00Z");
    let audience = flag.replace("role:admin", "team:admin");
    for (extra, field) in [
        (taken_key, "key"),
        (taken_id, "id"),
        (over, "rollout"),
        (backwards, "off_after"),
        (audience, "allow"),
    ] {
        assert_ne!(&extra, flag, "the edit for {field} changed nothing");
        let mut file = lines.clone();
        file.insert(5, extra);
        let err = transfer::import(e.store.as_ref(), &decls(), &mut file.join("\n").as_bytes())
            .await
            .expect_err("refused");
        match &err {
            TransferError::Format { line, reason } => {
                assert_eq!(*line, 6, "{field}: {reason}");
                assert!(reason.starts_with(field), "{field}: {reason}");
            }
            other => panic!("{field}: {other}"),
        }
        assert_empty(e).await;
    }
}

async fn an_export_without_flag_lines_still_imports(e: &Engine) {
    let older: Vec<String> = populated_export()
        .await
        .into_iter()
        .filter(|l| !l.starts_with("{\"flag\""))
        .collect();
    assert!(older[0].contains("\"plinth_export\":1"), "{}", older[0]);
    let counts = transfer::import(e.store.as_ref(), &decls(), &mut older.join("\n").as_bytes())
        .await
        .expect("an older file imports");
    assert_eq!((counts.users, counts.flags, counts.records), (1, 0, 121));
    assert!(e.store.list_flags().await.expect("flags").is_empty());
    assert_eq!(e.store.list_users(None, 10).await.expect("users").len(), 1);
}

async fn a_target_holding_flags_is_not_empty(e: &Engine) {
    let key = FlagKey::parse("kept").expect("key");
    let rule = FlagRule {
        enabled: true,
        rollout: Rollout::FULL,
        allow: vec![],
        deny: vec![],
        on_from: None,
        off_after: None,
    };
    let new = NewFlag {
        key: key.clone(),
        description: String::new(),
        rule,
    };
    let kept = e.store.create_flag(&admin(), new).await.expect("flag");
    let file = populated_export().await.join("\n");
    let err = transfer::import(e.store.as_ref(), &decls(), &mut file.as_bytes())
        .await
        .expect_err("not empty");
    assert!(
        matches!(&err, TransferError::NotEmpty(why) if why.contains("flags")),
        "{err}"
    );
    assert_eq!(e.store.list_flags().await.expect("flags"), [kept]);
    assert!(e.store.list_users(None, 1).await.expect("users").is_empty());
}

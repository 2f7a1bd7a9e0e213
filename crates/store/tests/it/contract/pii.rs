//! Fields declared `pii`: stored sealed (no plaintext anywhere in the database, the audit
//! trail included), read back as plaintext, found for equality through their blind index,
//! unique through it, and bound to their row and column.

use super::{Engine, admin, as_user, draft, model, patch, query, schema, walk};
use plinth_core::auth::Email;
use plinth_core::{ListScope, Role, Schema, Value};
use plinth_store::StoreError;
use plinth_store::UserChanges;
use serde_json::json;

contract!(
    pii_values_are_sealed_at_rest_and_read_back_in_plaintext,
    pii_equality_filters_go_through_the_blind_index,
    pii_unique_values_conflict_by_field,
    a_sealed_value_moved_to_another_row_or_column_does_not_open,
    pii_fields_are_added_and_dropped_but_never_converted_in_place,
    account_emails_are_sealed_and_found_through_their_blind_index,
    a_create_seals_each_value_once_for_its_row_and_its_change,
);

/// A create seals its pii values once, before its transaction: the row and the change it
/// logs hold the same sealed text (an update seals its own), and both open.
async fn a_create_seals_each_value_once_for_its_row_and_its_change(e: &Engine) {
    let s = people();
    e.store.migrate(&s, false).await.expect("migrate");
    let person = model(&s, "person");
    let body = json!({"name": "a", "ssn": "SSN-once-0001", "note": "Sealed once"});
    let one = e.create(&admin(), &person, body).await;
    let batched = e
        .store
        .batch(
            &admin(),
            &person,
            vec![plinth_store::BatchOp::Create(draft(
                &person,
                &json!({"name": "b", "ssn": "SSN-once-0002"}),
            ))],
            None,
        )
        .await
        .expect("batch");
    let two = batched.records[0].clone();
    // Creates at once, which a group commit inserts together.
    let ctx = admin();
    let many = futures_util::future::join_all((0..16).map(|i| {
        let body = json!({"name": format!("m{i}"), "ssn": format!("SSN-many-{i:04}")});
        e.create(&ctx, &person, body)
    }))
    .await;
    let mut checks = vec![(one.id, "ssn"), (one.id, "note"), (two.id, "ssn")];
    checks.extend(many.iter().map(|r| (r.id, "ssn")));
    for (id, field) in checks {
        let id = id.as_uuid();
        let sql = format!("SELECT {field} FROM person WHERE CAST(id AS TEXT) = '{id}'");
        let row = e.raw_texts(&sql).await;
        let sql =
            format!("SELECT record FROM _plinth_changes WHERE CAST(record_id AS TEXT) = '{id}'");
        let logged: Vec<serde_json::Value> = e
            .raw_texts(&sql)
            .await
            .iter()
            .map(|t| serde_json::from_str(t).expect("a snapshot"))
            .collect();
        assert_eq!(row.len(), 1);
        assert!(row[0].starts_with("v1:k1:"), "{row:?}");
        assert_eq!(
            logged[0]["fields"][field],
            row[0].as_str(),
            "{field} of {id}"
        );
    }
    assert_eq!(e.get(&person, one.id).await.fields, one.fields);
    for made in &many {
        assert_eq!(e.get(&person, made.id).await.fields, made.fields);
    }
    assert_eq!(
        changes_read(e).await[..2],
        [text("SSN-once-0001"), text("SSN-once-0002")]
    );
}

/// The `ssn` of each logged change, opened.
async fn changes_read(e: &Engine) -> Vec<Value> {
    let page = e.store.changes_after(0, 100).await.expect("the log");
    page.changes
        .into_iter()
        .map(|c| c.record.fields[0].clone())
        .collect()
}

/// `person`: `ssn` pii and unique, `note` pii text, `nick` plain; `tag` pii unique per
/// owner.
fn people() -> Schema {
    schema(json!([{"name": "person", "fields": [
        {"name": "ssn", "type": "string", "pii": true, "unique": true},
        {"name": "note", "type": "text", "pii": true},
        {"name": "nick", "type": "string"},
        {"name": "tag", "type": "string", "pii": true, "unique": "owner"},
    ]}]))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

async fn pii_values_are_sealed_at_rest_and_read_back_in_plaintext(e: &Engine) {
    let s = people();
    e.store.migrate(&s, false).await.expect("migrate");
    let person = model(&s, "person");
    let ada = e
        .create(
            &admin(),
            &person,
            json!({"name": "a", "ssn": "SSN-ada-0001", "note": "Lives at 12 Plaintext Road", "nick": "visible-nick"}),
        )
        .await;
    assert_eq!(ada.fields[0], text("SSN-ada-0001"));
    assert_eq!(ada.fields[1], text("Lives at 12 Plaintext Road"));
    // NULL stays NULL.
    assert_eq!(ada.fields[3], Value::Null);
    let got = e.get(&person, ada.id).await;
    assert_eq!(got.fields, ada.fields);
    let listed = walk(&*e.store, &person, &[], ListScope::All).await;
    assert_eq!(listed[0].fields, ada.fields);
    let updated = e
        .store
        .update(
            &admin(),
            &person,
            ada.id,
            patch(&person, &json!({"note": "Moved to 9 Secret Lane"})),
            None,
        )
        .await
        .expect("update");
    assert_eq!(updated.fields[1], text("Moved to 9 Secret Lane"));
    assert_eq!(e.get(&person, ada.id).await.fields[1], updated.fields[1]);

    e.store.close().await;
    let raw = e.raw_contents("person").await + &e.raw_contents("_plinth_audit").await;
    for secret in [
        "SSN-ada-0001",
        "12 Plaintext Road",
        "9 Secret Lane",
        "Plaintext",
    ] {
        assert!(!raw.contains(secret), "{secret:?} is stored in plaintext");
    }
    assert!(raw.contains("visible-nick"), "the scan sees plain fields");
    assert!(raw.contains("v1:k1:"), "sealed values carry their key id");
}

async fn pii_equality_filters_go_through_the_blind_index(e: &Engine) {
    let s = people();
    e.store.migrate(&s, false).await.expect("migrate");
    let person = model(&s, "person");
    for (name, ssn) in [("a", "111"), ("b", "222"), ("c", "333")] {
        e.create(&admin(), &person, json!({"name": name, "ssn": ssn}))
            .await;
    }
    e.create(&admin(), &person, json!({"name": "d"})).await;
    let names = |pairs: &'static [(&'static str, &'static str)]| {
        let person = person.clone();
        async move {
            let mut names: Vec<String> = walk(&*e.store, &person, pairs, ListScope::All)
                .await
                .into_iter()
                .map(|r| r.name)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(names(&[("ssn", "222")]).await, ["b"]);
    assert_eq!(names(&[("ssn[eq]", "22")]).await, Vec::<String>::new());
    assert_eq!(names(&[("ssn[in]", "111,333,999")]).await, ["a", "c"]);
    // `ne` counts a record without a value as different, as for any field.
    assert_eq!(names(&[("ssn[ne]", "111")]).await, ["b", "c", "d"]);
    // An update moves the record to its new value's index entry.
    let b = walk(&*e.store, &person, &[("ssn", "222")], ListScope::All).await;
    e.store
        .update(
            &admin(),
            &person,
            b[0].id,
            patch(&person, &json!({"ssn": "444"})),
            None,
        )
        .await
        .expect("update");
    assert_eq!(names(&[("ssn", "222")]).await, Vec::<String>::new());
    assert_eq!(names(&[("ssn", "444")]).await, ["b"]);
    let q = query(&person, &[("ssn", "444")]);
    assert_eq!(
        e.store
            .list(&person, &q, ListScope::All)
            .await
            .expect("list")
            .records
            .len(),
        1
    );
}

async fn pii_unique_values_conflict_by_field(e: &Engine) {
    let s = people();
    e.store.migrate(&s, false).await.expect("migrate");
    let person = model(&s, "person");
    e.create(&admin(), &person, json!({"name": "a", "ssn": "dup"}))
        .await;
    let err = e
        .store
        .create(
            &admin(),
            &person,
            draft(&person, &json!({"name": "b", "ssn": "dup"})),
            None,
        )
        .await
        .expect_err("a taken pii value");
    assert!(
        matches!(&err, StoreError::Conflict { field: Some(f), .. } if f == "ssn"),
        "{err:?}"
    );
    // Unique per owner: two owners may share a value, one owner may not repeat it.
    let (alice, bob) = (
        e.user("alice@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let body = json!({"name": "t", "tag": "same"});
    e.create(&as_user(&alice), &person, body.clone()).await;
    e.create(&as_user(&bob), &person, body.clone()).await;
    let err = e
        .store
        .create(&as_user(&alice), &person, draft(&person, &body), None)
        .await
        .expect_err("a repeated value of one owner");
    assert!(
        matches!(&err, StoreError::Conflict { field: Some(f), reason } if f == "tag" && reason.contains("this owner")),
        "{err:?}"
    );
}

async fn a_sealed_value_moved_to_another_row_or_column_does_not_open(e: &Engine) {
    let s = people();
    e.store.migrate(&s, false).await.expect("migrate");
    let person = model(&s, "person");
    let a = e
        .create(&admin(), &person, json!({"name": "a", "ssn": "A-secret"}))
        .await;
    let b = e
        .create(&admin(), &person, json!({"name": "b", "ssn": "B-secret"}))
        .await;
    let c = e
        .create(&admin(), &person, json!({"name": "c", "ssn": "C-secret"}))
        .await;
    e.raw(&format!(
        "UPDATE person SET ssn = (SELECT ssn FROM person WHERE id = '{}') WHERE id = '{}'",
        a.id, b.id
    ))
    .await;
    e.raw(&format!(
        "UPDATE person SET note = ssn WHERE id = '{}'",
        c.id
    ))
    .await;
    for id in [b.id, c.id] {
        let err = e.store.get(&person, id).await.expect_err("a moved value");
        assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("moved from another row or column"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
    assert_eq!(e.get(&person, a.id).await.fields[0], text("A-secret"));
}

async fn pii_fields_are_added_and_dropped_but_never_converted_in_place(e: &Engine) {
    let before = schema(json!([{"name": "person", "fields": [
        {"name": "nick", "type": "string"},
    ]}]));
    e.store.migrate(&before, false).await.expect("migrate");
    let person = model(&before, "person");
    e.create(&admin(), &person, json!({"name": "a", "nick": "n"}))
        .await;
    // A new pii field: sealed from its first value on.
    let added = schema(json!([{"name": "person", "fields": [
        {"name": "nick", "type": "string"},
        {"name": "ssn", "type": "string", "pii": true, "unique": true},
    ]}]));
    e.store
        .migrate(&added, false)
        .await
        .expect("add a pii field");
    let person = model(&added, "person");
    e.create(&admin(), &person, json!({"name": "b", "ssn": "S-1"}))
        .await;
    let found = walk(&*e.store, &person, &[("ssn", "S-1")], ListScope::All).await;
    assert_eq!(found.len(), 1);
    // Turning a kept field pii (or back) is refused, naming it.
    let flipped = schema(json!([{"name": "person", "fields": [
        {"name": "nick", "type": "string", "pii": true},
        {"name": "ssn", "type": "string", "pii": true, "unique": true},
    ]}]));
    let err = e
        .store
        .migrate(&flipped, false)
        .await
        .expect_err("a field turned pii");
    assert!(err.to_string().contains("person.nick pii"), "{err}");
    // Dropping a pii field drops its blind index too; it can come back afterwards.
    e.store
        .migrate(&before, true)
        .await
        .expect("drop the pii field");
    e.store.migrate(&added, false).await.expect("add it again");
    assert_eq!(
        walk(&*e.store, &person, &[("ssn", "S-1")], ListScope::All)
            .await
            .len(),
        0
    );
}

async fn account_emails_are_sealed_and_found_through_their_blind_index(e: &Engine) {
    let user = e.user("Grace.Hopper@Example.com", Role::User).await;
    assert_eq!(user.email, "Grace.Hopper@Example.com");
    let find = |email: &str| {
        let email = Email::parse(email).expect("email");
        async move { e.store.find_user_by_email(&email).await.expect("find") }
    };
    let found = find("grace.hopper@example.COM")
        .await
        .expect("found in any case");
    assert_eq!(
        (found.id, found.email.as_str()),
        (user.id, "Grace.Hopper@Example.com")
    );
    assert!(find("grace@example.com").await.is_none());
    // Taken in any case.
    let err = e
        .store
        .create_user(
            &admin(),
            plinth_store::NewUser {
                email: Email::parse("GRACE.HOPPER@example.com").expect("email"),
                password_hash: super::HASH.to_owned(),
                role: Role::User,
            },
        )
        .await
        .expect_err("a taken email");
    assert!(
        matches!(&err, StoreError::Conflict { field: Some(f), .. } if f == "email"),
        "{err:?}"
    );
    let changes = UserChanges {
        email: Some(Email::parse("Amazing.Grace@Example.com").expect("email")),
        ..UserChanges::default()
    };
    let changed = e
        .store
        .update_user(&admin(), user.id, changes, None)
        .await
        .expect("change the email");
    assert_eq!(changed.email, "Amazing.Grace@Example.com");
    assert!(find("grace.hopper@example.com").await.is_none());
    assert_eq!(
        find("amazing.grace@example.com").await.map(|u| u.id),
        Some(user.id)
    );
    let listed = e.store.list_users(None, 10).await.expect("list");
    assert_eq!(listed[0].email, "Amazing.Grace@Example.com");
    e.store.close().await;
    let raw = e.raw_contents("_plinth_users").await.to_lowercase();
    for secret in ["grace", "hopper", "example.com"] {
        assert!(!raw.contains(secret), "{secret:?} is stored in plaintext");
    }
}

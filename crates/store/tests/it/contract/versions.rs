//! The numbered versions of Plinth's own tables: applied at open and recorded, rolled back
//! to the baseline and applied again with declared records, users and API keys kept, a
//! database from before versions adopted, a database newer than the binary refused
//! unless its unknown versions are all additive, and one from another release line (a
//! known number, another name) refused.

use super::{Engine, admin, model};
use plinth_core::Role;
use plinth_core::auth::Email;
use plinth_store::versions::LATEST;
use plinth_store::{AuditQuery, NewApiKey, SchemaStatus, Store, StoreError};
use serde_json::json;

contract!(
    a_new_database_has_every_version_applied_and_recorded,
    down_to_the_baseline_and_up_again_keeps_records_users_and_keys,
    a_database_from_before_versions_is_adopted,
    a_newer_database_is_refused_unless_its_new_versions_are_additive,
    a_version_recorded_under_another_name_is_refused,
    version_5_starts_the_change_window_at_the_audit_head,
);

fn applied(status: &SchemaStatus) -> Vec<u32> {
    status
        .versions
        .iter()
        .filter(|v| v.applied_at.is_some())
        .map(|v| v.number)
        .collect()
}

/// The versions this binary knows, in order (their numbers need not be contiguous).
fn known(status: &SchemaStatus) -> Vec<u32> {
    status
        .versions
        .iter()
        .filter(|v| v.known)
        .map(|v| v.number)
        .collect()
}

/// The known versions above `to`, from the top: what a down to `to` rolls back.
fn above(status: &SchemaStatus, to: u32) -> Vec<u32> {
    let mut v: Vec<u32> = known(status).into_iter().filter(|n| *n > to).collect();
    v.reverse();
    v
}

fn pending(status: &SchemaStatus) -> Vec<u32> {
    status.pending().map(|v| v.number).collect()
}

async fn status(store: &dyn Store) -> SchemaStatus {
    store.schema_status().await.expect("the schema status")
}

async fn a_new_database_has_every_version_applied_and_recorded(e: &Engine) {
    let s = status(&*e.store).await;
    assert_eq!(s.database(), Some(LATEST));
    assert_eq!(applied(&s), known(&s));
    assert!(pending(&s).is_empty());
    assert!(s.versions.iter().all(|v| v.known));
    // A second open (another instance) applies nothing again.
    let again = e.reopen(true).await.expect("open again");
    let t = status(&*again).await;
    let at = |s: &SchemaStatus| s.versions.iter().map(|v| v.applied_at).collect::<Vec<_>>();
    assert_eq!(at(&s), at(&t));
    again.close().await;
}

/// The user, the API key and the record the rollback must keep.
async fn seed(e: &Engine) -> (plinth_core::Record, uuid::Uuid) {
    let schema = e
        .migrate(json!([{"name": "book", "fields": [{"name": "pages", "type": "integer"}]}]))
        .await;
    let book = model(&schema, "book");
    let ann = e.user("ann@example.com", Role::Admin).await;
    e.store
        .create_api_key(
            &admin(),
            NewApiKey {
                user_id: ann.id,
                name: "deploy".to_owned(),
                prefix: "plk_kept".to_owned(),
                key_hash: "kept-hash".to_owned(),
                role: Role::Admin,
                expires_at: None,
            },
        )
        .await
        .expect("create a key");
    let record = e
        .create(&admin(), &book, json!({"name": "dune", "pages": 412}))
        .await;
    (record, ann.id)
}

async fn audit_entries(store: &dyn Store) -> usize {
    let q = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    store.audit_query(&q).await.expect("the audit").len()
}

async fn down_to_the_baseline_and_up_again_keeps_records_users_and_keys(e: &Engine) {
    let (record, ann) = seed(e).await;
    assert!(audit_entries(&*e.store).await > 0);

    // Version 8's down drops second factors and linked identities, 7's only the batches'
    // idempotency keys (losing nothing a server needs); 6's drops the file table, 5's the
    // change log, 4's the flags and 2's the audit trail: refused without the flag at 8,
    // and nothing is rolled back.
    let refused = e.store.schema_down(3, false).await.expect_err("refused");
    assert!(
        matches!(&refused, StoreError::Migration(m) if m.contains("version 8") && m.contains("--allow-destructive")),
        "{refused:?}"
    );
    assert_eq!(status(&*e.store).await.database(), Some(LATEST));
    assert_eq!(
        e.store.schema_down(4, true).await.expect("down to 4"),
        above(&status(&*e.store).await, 4)
    );
    let s = status(&*e.store).await;
    let log = s
        .versions
        .iter()
        .find(|v| v.number == 5)
        .expect("version 5");
    assert!(log.applied_at.is_none() && log.destructive_down);
    assert!(
        log.up_sql
            .contains("CREATE TABLE IF NOT EXISTS _plinth_changes (")
    );
    assert!(
        log.up_sql
            .contains("CREATE TABLE IF NOT EXISTS _plinth_change_window (")
    );
    assert_eq!(
        e.store.schema_down(3, true).await.expect("down to 3"),
        vec![4]
    );
    let refused = e.store.schema_down(0, false).await.expect_err("refused");
    assert!(
        matches!(&refused, StoreError::Migration(m) if m.contains("version 2") && m.contains("--allow-destructive")),
        "{refused:?}"
    );
    assert_eq!(status(&*e.store).await.database(), Some(3));

    // Down to 1 first: the plan of an as-is store shows the SQL of what is pending.
    assert_eq!(
        e.store.schema_down(1, true).await.expect("down to 1"),
        vec![3, 2]
    );
    let as_is = e.reopen(false).await.expect("open as it is");
    let s = status(&*as_is).await;
    assert_eq!(s.database(), Some(1));
    let mut rolled = above(&s, 1);
    rolled.reverse();
    assert_eq!(pending(&s), rolled);
    let audit = s.pending().next().expect("version 2");
    assert!(
        audit
            .up_sql
            .contains("CREATE TABLE IF NOT EXISTS _plinth_audit ("),
        "{}",
        audit.up_sql
    );
    let time = if e.is_postgres() {
        "TIMESTAMPTZ"
    } else {
        "INTEGER"
    };
    assert!(
        audit.up_sql.contains(&format!("at {time} NOT NULL")),
        "{}",
        audit.up_sql
    );
    assert!(audit.destructive_down && audit.down_sql.is_some());
    as_is.close().await;

    assert_eq!(
        e.store.schema_down(0, true).await.expect("down to 0"),
        vec![1]
    );
    assert_eq!(
        e.store.schema_down(0, true).await.expect("again"),
        Vec::<u32>::new()
    );
    let s = status(&*e.store).await;
    assert_eq!(applied(&s), vec![0]);
    let baseline = e.store.schema_down(0, true).await;
    assert!(baseline.is_ok(), "down to where it is changes nothing");

    // The next open applies every version again; the data of the baseline is all there,
    // the audit trail (version 2's) is gone.
    let up = e.reopen(true).await.expect("open and apply");
    assert_eq!(status(&*up).await.database(), Some(LATEST));
    let book = up
        .recorded()
        .await
        .expect("the recorded models")
        .into_iter()
        .map(|d| d.name)
        .collect::<Vec<_>>();
    assert_eq!(book, vec!["book".to_owned()]);
    let user = up
        .find_user_by_email(&Email::parse("ann@example.com").expect("email"))
        .await
        .expect("find")
        .expect("the user is kept");
    assert_eq!(user.id, ann);
    let (key, owner) = up
        .find_api_key("kept-hash")
        .await
        .expect("find the key")
        .expect("the key is kept");
    assert_eq!((key.name.as_str(), owner.id), ("deploy", ann));
    assert_eq!(
        audit_entries(&*up).await,
        0,
        "the audit trail went with version 2"
    );
    up.close().await;
    // The original store's schema still knows the model: its record is readable.
    let schema =
        super::schema(json!([{"name": "book", "fields": [{"name": "pages", "type": "integer"}]}]));
    let got = e.get(&model(&schema, "book"), record.id).await;
    assert_eq!(got.fields, record.fields);
}

async fn a_database_from_before_versions_is_adopted(e: &Engine) {
    let (_, ann) = seed(e).await;
    let entries = audit_entries(&*e.store).await;
    e.raw("DROP TABLE _plinth_schema_versions").await;
    let as_is = e.reopen(false).await.expect("open as it is");
    let s = status(&*as_is).await;
    assert_eq!(s.database(), None);
    assert_eq!(pending(&s), known(&s));
    as_is.close().await;

    let adopted = e.reopen(true).await.expect("adopt");
    let s = status(&*adopted).await;
    assert_eq!(applied(&s), known(&s));
    // Every up ran again over the tables there: nothing lost, the audit trail included.
    assert_eq!(audit_entries(&*adopted).await, entries);
    let user = adopted
        .find_user_by_email(&Email::parse("ann@example.com").expect("email"))
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(user.id, ann);
    adopted.close().await;
}

async fn a_newer_database_is_refused_unless_its_new_versions_are_additive(e: &Engine) {
    let next = LATEST + 1;
    let (additive, now) = if e.is_postgres() {
        ("false", "now()")
    } else {
        ("0", "1700000000000000")
    };
    e.raw(&format!(
        "INSERT INTO _plinth_schema_versions (version, name, additive, applied_at) \
         VALUES ({next}, 'from a newer plinth', {additive}, {now})"
    ))
    .await;
    let refused = e.reopen(true).await.expect_err("a newer schema is refused");
    let message = refused.to_string();
    assert!(
        message.contains(&format!(
            "the database's schema is at version {next}; this plinth knows up to {LATEST}"
        )) && message.contains(&format!("plinth migrate down --to {LATEST}")),
        "{message}"
    );
    // As it is, the status names the unknown version, and down refuses to pass it.
    let as_is = e.reopen(false).await.expect("open as it is");
    let s = status(&*as_is).await;
    assert_eq!(s.database(), Some(next));
    let unknown = s.versions.last().expect("the unknown version");
    assert_eq!((unknown.number, unknown.known), (next, false));
    let down = as_is
        .schema_down(LATEST, true)
        .await
        .expect_err("unknown down");
    assert!(down.to_string().contains("does not know"), "{down}");
    as_is.close().await;

    let additive = if e.is_postgres() { "true" } else { "1" };
    e.raw(&format!(
        "UPDATE _plinth_schema_versions SET additive = {additive} WHERE version = {next}"
    ))
    .await;
    let beside = e
        .reopen(true)
        .await
        .expect("an additive newer version starts");
    assert_eq!(status(&*beside).await.database(), Some(next));
    beside.close().await;
}

async fn a_version_recorded_under_another_name_is_refused(e: &Engine) {
    let (record, _) = seed(e).await;
    let known = status(&*e.store)
        .await
        .versions
        .iter()
        .find(|v| v.number == LATEST)
        .map(|v| v.name.clone())
        .expect("the latest version");
    e.raw(&format!(
        "UPDATE _plinth_schema_versions SET name = 'from another release line' \
         WHERE version = {LATEST}"
    ))
    .await;
    let refused = e.reopen(true).await.expect_err("another release line");
    let message = refused.to_string();
    assert!(
        message.contains(&format!(
            "the database records version {LATEST} of Plinth's own tables as \
             \"from another release line\", but this plinth's version {LATEST} is {known:?}"
        )),
        "{message}"
    );
    // Rolling it back with this plinth's down is refused too, and changes nothing.
    let as_is = e.reopen(false).await.expect("open as it is");
    let down = as_is
        .schema_down(LATEST - 1, true)
        .await
        .expect_err("another release line's down");
    assert!(down.to_string().contains("another release line"), "{down}");
    let shown = status(&*as_is).await;
    assert_eq!(shown.database(), Some(LATEST));
    // The status says which name the database records, and only where it differs.
    let recorded: Vec<_> = shown
        .versions
        .iter()
        .filter_map(|v| v.recorded_name.as_deref().map(|n| (v.number, n)))
        .collect();
    assert_eq!(recorded, [(LATEST, "from another release line")]);
    as_is.close().await;

    e.raw(&format!(
        "UPDATE _plinth_schema_versions SET name = '{}' WHERE version = {LATEST}",
        known.replace('\'', "''")
    ))
    .await;
    let back = e.reopen(true).await.expect("its own name opens again");
    back.close().await;
    let schema =
        super::schema(json!([{"name": "book", "fields": [{"name": "pages", "type": "integer"}]}]));
    assert_eq!(
        e.get(&model(&schema, "book"), record.id).await.fields,
        record.fields
    );
}

async fn version_5_starts_the_change_window_at_the_audit_head(e: &Engine) {
    let (record, _) = seed(e).await;
    assert_eq!(
        e.store.schema_down(4, true).await.expect("down to 4"),
        above(&status(&*e.store).await, 4)
    );
    let up = e.reopen(true).await.expect("open and apply 5");
    assert_eq!(status(&*up).await.database(), Some(LATEST));
    let head = up
        .audit_list(0, 1000)
        .await
        .expect("the audit")
        .last()
        .map(|x| x.seq)
        .expect("entries");
    // Nothing before the version was logged: a reader from before it starts again.
    let window = up.change_window().await.expect("the window");
    assert_eq!((window.pruned_through, window.head), (head, head));
    assert!(
        up.changes_after(0, 10)
            .await
            .expect("the log")
            .changes
            .is_empty()
    );
    up.close().await;
    // The store open all along writes its changes into the new log.
    let schema =
        super::schema(json!([{"name": "book", "fields": [{"name": "pages", "type": "integer"}]}]));
    e.store
        .delete(&admin(), &model(&schema, "book"), record.id, None)
        .await
        .expect("delete");
    let log = e.store.changes_after(0, 10).await.expect("the log").changes;
    assert_eq!(log.len(), 1);
    assert!(log[0].seq > head);
}

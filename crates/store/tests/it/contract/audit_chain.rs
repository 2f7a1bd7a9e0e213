//! The audit chain against tampering and pruning: an entry edited, deleted, inserted or
//! reordered through SQL is found; a prune seals a checkpoint that what remains verifies
//! from, and a checkpoint or remainder tampered with is found too.

use super::audit::{broken, entries, intact, verify};
use super::records::decls;
use super::{Engine, admin, model, patch};
use plinth_core::Timestamp;
use plinth_store::{AuditBreak, AuditEntry};
use serde_json::json;

contract!(
    verify_finds_entries_edited_deleted_inserted_or_reordered_through_sql,
    a_prune_seals_a_checkpoint_and_what_remains_verifies,
    verify_finds_a_checkpoint_or_pruned_remainder_tampered_through_sql,
);

/// Every column of an entry but `seq`, for copying one through SQL.
const REST: &str = "at, actor_kind, actor_id, actor_label, action, model, record_id, \
                    request_id, client_addr, changes, prev_hash, hash";

/// Swaps the `seq` of two entries (in three steps: `seq` is unique at every step).
fn swap(a: i64, b: i64) -> String {
    format!(
        "UPDATE _plinth_audit SET seq = -1 WHERE seq = {a};
         UPDATE _plinth_audit SET seq = {a} WHERE seq = {b};
         UPDATE _plinth_audit SET seq = {b} WHERE seq = -1;"
    )
}

async fn verify_finds_entries_edited_deleted_inserted_or_reordered_through_sql(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e
        .create(&admin(), &customer, json!({"name": "a", "score": 3}))
        .await;
    for (version, score) in [(1, 4), (2, 5), (3, 6)] {
        let p = patch(&customer, &json!({ "score": score }));
        e.store
            .update(&admin(), &customer, r.id, p, Some(version))
            .await
            .expect("update");
    }
    assert_eq!(verify(e).await, intact(4));

    // An entry's changes edited.
    let edit = "UPDATE _plinth_audit SET changes = replace(changes, '\"to\":4', '\"to\":40') \
                WHERE seq = 2";
    e.raw(edit).await;
    assert_eq!(verify(e).await, broken(2, AuditBreak::Hash));
    e.raw(&edit.replace("'\"to\":4', '\"to\":40'", "'\"to\":40', '\"to\":4'"))
        .await;
    assert_eq!(verify(e).await, intact(4));

    // An entry from the middle deleted.
    e.raw(
        "CREATE TABLE saved AS SELECT * FROM _plinth_audit WHERE seq = 2;
         DELETE FROM _plinth_audit WHERE seq = 2;",
    )
    .await;
    assert_eq!(
        verify(e).await,
        broken(3, AuditBreak::Sequence { expected: 2 })
    );
    e.raw("INSERT INTO _plinth_audit SELECT * FROM saved; DROP TABLE saved;")
        .await;
    assert_eq!(verify(e).await, intact(4));

    // An entry inserted: a copy of the last, then one linked to it with a made-up hash.
    e.raw(&format!(
        "INSERT INTO _plinth_audit (seq, {REST}) SELECT seq + 1, {REST} FROM _plinth_audit \
         WHERE seq = 4"
    ))
    .await;
    assert_eq!(verify(e).await, broken(5, AuditBreak::Link));
    e.raw(
        "UPDATE _plinth_audit SET prev_hash = (SELECT hash FROM _plinth_audit WHERE seq = 4) \
         WHERE seq = 5",
    )
    .await;
    assert_eq!(verify(e).await, broken(5, AuditBreak::Hash));
    e.raw("DELETE FROM _plinth_audit WHERE seq = 5").await;
    assert_eq!(verify(e).await, intact(4));

    // Two entries reordered.
    e.raw(&swap(2, 3)).await;
    assert_eq!(verify(e).await, broken(2, AuditBreak::Link));
    e.raw(&swap(2, 3)).await;
    assert_eq!(verify(e).await, intact(4));
}

/// Five writes, so five entries; returns them.
async fn five_entries(e: &Engine) -> Vec<AuditEntry> {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let r = e
        .create(&admin(), &customer, json!({"name": "a", "score": 0}))
        .await;
    for version in 1..=4 {
        let p = patch(&customer, &json!({ "score": version }));
        e.store
            .update(&admin(), &customer, r.id, p, Some(version))
            .await
            .expect("update");
    }
    entries(e).await
}

async fn prune(e: &Engine, before: Timestamp, limit: u32) -> u64 {
    e.store.audit_prune(before, limit).await.expect("prune")
}

async fn a_prune_seals_a_checkpoint_and_what_remains_verifies(e: &Engine) {
    let before = five_entries(e).await;
    // Nothing older than the first entry: nothing pruned, no checkpoint.
    assert_eq!(prune(e, before[0].at, 1000).await, 0);
    assert_eq!(verify(e).await, intact(5));
    // Entries made before the fourth: the oldest two only (limit), then the third.
    assert_eq!(prune(e, before[3].at, 2).await, 2);
    let after = entries(e).await;
    let seqs: Vec<i64> = after.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, [3, 4, 5, 6]);
    let seal = &after[3];
    assert_eq!(seal.action, "audit.checkpoint");
    assert_eq!(
        (
            seal.actor_kind.as_str(),
            seal.actor_id,
            seal.model.as_deref()
        ),
        ("system", None, None)
    );
    assert_eq!(
        seal.changes,
        json!({"seq": {"to": 2}, "hash": {"to": before[1].hash}})
    );
    assert_eq!(seal.prev_hash, before[4].hash);
    assert_eq!(verify(e).await, intact(4));
    assert_eq!(prune(e, before[3].at, 1000).await, 1);
    assert_eq!(verify(e).await, intact(4));
    // Everything old, the first checkpoint entry included: the newest seals it.
    let far = Timestamp::parse("9999-01-01T00:00:00Z").expect("a late time");
    assert_eq!(prune(e, far, 1000).await, 4);
    let left = entries(e).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, 8);
    assert_eq!(verify(e).await, intact(1));
    // Writes go on extending the chain past a prune.
    let s = e.migrate(decls()).await;
    e.create(&admin(), &model(&s, "customer"), json!({"name": "b"}))
        .await;
    assert_eq!(verify(e).await, intact(2));
}

async fn verify_finds_a_checkpoint_or_pruned_remainder_tampered_through_sql(e: &Engine) {
    let before = five_entries(e).await;
    assert_eq!(prune(e, before[2].at, 1000).await, 2);
    assert_eq!(verify(e).await, intact(4));

    // The checkpoint's hash changed.
    e.raw("UPDATE _plinth_audit_checkpoints SET hash = 'ab' || hash WHERE seq = 2")
        .await;
    assert_eq!(verify(e).await, broken(2, AuditBreak::Checkpoint));
    e.raw("UPDATE _plinth_audit_checkpoints SET hash = substr(hash, 3) WHERE seq = 2")
        .await;
    assert_eq!(verify(e).await, intact(4));

    // The first remaining entry deleted, and the checkpoint moved over it to hide that.
    e.raw(
        "CREATE TABLE saved AS SELECT * FROM _plinth_audit WHERE seq = 3;
         DELETE FROM _plinth_audit WHERE seq = 3;",
    )
    .await;
    assert_eq!(
        verify(e).await,
        broken(4, AuditBreak::Sequence { expected: 3 })
    );
    let forged = format!(
        "UPDATE _plinth_audit_checkpoints SET seq = 3, hash = '{}' WHERE seq = 2",
        before[2].hash
    );
    e.raw(&forged).await;
    assert_eq!(verify(e).await, broken(3, AuditBreak::Checkpoint));
    e.raw(&format!(
        "UPDATE _plinth_audit_checkpoints SET seq = 2, hash = '{}' WHERE seq = 3;
         INSERT INTO _plinth_audit SELECT * FROM saved; DROP TABLE saved;",
        before[1].hash
    ))
    .await;
    assert_eq!(verify(e).await, intact(4));

    // The checkpoint deleted: the chain then seems to start at seq 3.
    e.raw(
        "CREATE TABLE saved AS SELECT * FROM _plinth_audit_checkpoints;
         DELETE FROM _plinth_audit_checkpoints;",
    )
    .await;
    assert_eq!(
        verify(e).await,
        broken(3, AuditBreak::Sequence { expected: 1 })
    );
    e.raw("INSERT INTO _plinth_audit_checkpoints SELECT * FROM saved; DROP TABLE saved;")
        .await;
    assert_eq!(verify(e).await, intact(4));

    // The sealing entry edited to name the forged checkpoint.
    e.raw(
        "UPDATE _plinth_audit SET changes = replace(changes, '\"to\":2', '\"to\":3') \
         WHERE action = 'audit.checkpoint'",
    )
    .await;
    assert_eq!(verify(e).await, broken(6, AuditBreak::Hash));
}

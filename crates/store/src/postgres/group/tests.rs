//! The group commit's own tests: batch formation, lock order, and a write sent as the
//! store closes.

use super::{
    Group, Job, MAX_BATCH, Reply, Staged, StatusChange, Write, apart, in_lock_order, lock_early,
    run, take,
};
use crate::shared::Visibility;
use crate::{StoreError, WriteCtx};
use plinth_core::schema::ModelDecl;
use plinth_core::{FieldAccess, ModelDef, Principal, RecordId, Schema};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

/// The schema of a `note` with no fields of its own, and the `note`.
fn note() -> (Arc<Schema>, Arc<ModelDef>) {
    let decls: Vec<ModelDecl> =
        serde_json::from_value(json!([{"name": "note", "fields": []}])).expect("models");
    let schema = Arc::new(Schema::from_decls(&decls).expect("a schema"));
    let model = Arc::clone(schema.model("note").expect("note"));
    (schema, model)
}

/// A create of a `note` named `n`.
fn create() -> Write {
    create_named("n")
}

fn create_named(name: &str) -> Write {
    let (schema, model) = note();
    let draft =
        plinth_core::input::validate_draft(&model, &json!({ "name": name }), FieldAccess::All)
            .expect("a valid draft");
    let ctx = WriteCtx::new(Principal::local_admin(), "group");
    let staged = Staged::new(&crate::Keys::missing(), &ctx, &model, &draft).expect("staged");
    Write::Create {
        ctx,
        model,
        vis: Visibility {
            schema,
            viewer: None,
        },
        staged,
        draft,
        claim: None,
    }
}

/// A write whose place in the queue was taken before the store closed, and which is put
/// there only once the task stopped taking writes, is answered that the database is
/// closed: it is not left in the queue, its caller waiting for ever.
#[tokio::test]
async fn a_write_sent_as_the_store_closes_is_answered() {
    let (group, rx) = Group::new();
    tokio::spawn(run(Weak::new(), rx, Arc::clone(&group.stop)));
    let place = group.tx.reserve().await.expect("a place in the queue");
    group.stop();
    group.tx.closed().await;
    let (reply, answer) = oneshot::channel();
    place.send(Job {
        write: create(),
        reply: Reply::Created(reply),
        attempt: 1,
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("an answer, not a wait for ever")
        .expect("answered, not dropped");
    assert!(
        matches!(answer, Err(StoreError::Unavailable(_))),
        "{answer:?}"
    );
}

/// A delete of the `note` `id`.
fn delete(id: RecordId) -> Write {
    Write::Status {
        ctx: WriteCtx::new(Principal::local_admin(), "group"),
        model: note().1,
        id,
        change: StatusChange::Delete,
        expected: None,
    }
}

fn job(write: Write) -> Job {
    Job {
        write,
        reply: Reply::Changed(oneshot::channel().0),
        attempt: 1,
    }
}

/// What a job writes: a create's name, or the id of the record a change changes.
fn what(job: &Job) -> String {
    match &job.write {
        Write::Create { draft, .. } => draft.name.clone(),
        Write::Update { id, .. } | Write::Status { id, .. } => id.to_string(),
    }
}

/// A batch runs its creates first, in queue order, then its changes in the order of the
/// records they change, whatever order they were queued in.
#[test]
fn a_batch_runs_creates_in_queue_order_then_changes_by_record() {
    let mut ids: Vec<RecordId> = (0..3).map(|_| RecordId::new_v7()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let mut batch = vec![
        job(delete(ids[2])),
        job(create_named("first")),
        job(delete(ids[0])),
        job(create_named("second")),
        job(delete(ids[1])),
    ];
    in_lock_order(&mut batch);
    let order: Vec<String> = batch.iter().map(what).collect();
    let expected = ["first".to_owned(), "second".to_owned()]
        .into_iter()
        .chain(ids.iter().map(ToString::to_string))
        .collect::<Vec<_>>();
    assert_eq!(order, expected);
}

/// Two changes of one record in a batch make it run job by job; changes of different
/// records, and creates beside them, may run at once.
#[test]
fn two_changes_of_one_record_are_not_apart() {
    let (a, b) = (RecordId::new_v7(), RecordId::new_v7());
    assert!(apart(&[job(delete(a)), job(create()), job(delete(b))]));
    assert!(!apart(&[job(delete(a)), job(create()), job(delete(a))]));
}

/// A batch takes the jobs waiting but leaves a second change of a record it already
/// changes for the next batch, ahead of the queue, in their order.
#[tokio::test]
async fn a_second_change_of_a_record_waits_for_the_next_batch() {
    let (x, y, z) = (RecordId::new_v7(), RecordId::new_v7(), RecordId::new_v7());
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    for id in [y, x, z, x, y] {
        tx.send(job(delete(id))).await.expect("queued");
    }
    let mut again = VecDeque::new();
    let batch = take(job(delete(x)), &mut again, &mut rx);
    let ids = |jobs: &mut dyn Iterator<Item = &Job>| jobs.map(what).collect::<Vec<_>>();
    let taken = [x, y, z].map(|id| id.to_string());
    assert_eq!(ids(&mut batch.iter()), taken);
    let left = [x, x, y].map(|id| id.to_string());
    assert_eq!(ids(&mut again.iter()), left);
    assert!(rx.try_recv().is_err(), "the queue was emptied");
    // The next batch takes one of them, and leaves the other change of `x`.
    let first = again.pop_front().expect("a job");
    let next = take(first, &mut again, &mut rx);
    assert_eq!(ids(&mut next.iter()), [x, y].map(|id| id.to_string()));
    assert_eq!(ids(&mut again.iter()), [x.to_string()]);
}

/// Changes of one busy record waiting to run again do not fill a batch: it takes one of
/// them and goes on to the queue.
#[tokio::test]
async fn changes_of_one_busy_record_leave_room_for_the_queue() {
    let (x, y) = (RecordId::new_v7(), RecordId::new_v7());
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    tx.send(job(delete(y))).await.expect("queued");
    let mut again: VecDeque<Job> = (0..2 * MAX_BATCH).map(|_| job(delete(x))).collect();
    let first = again.pop_front().expect("a job");
    let batch = take(first, &mut again, &mut rx);
    let taken: Vec<String> = batch.iter().map(what).collect();
    assert_eq!(taken, [x.to_string(), y.to_string()]);
    assert_eq!(again.len(), 2 * MAX_BATCH - 1);
}

/// A batch takes the chain's lock early when every job sends its statements at once, but
/// not when it mixes creates (whose records are inserted after the changes answer) with
/// changes.
#[test]
fn a_batch_of_creates_and_changes_takes_the_lock_after_its_jobs() {
    let (a, b) = (RecordId::new_v7(), RecordId::new_v7());
    assert!(lock_early(&[job(create())]));
    assert!(lock_early(&[job(create()), job(create())]));
    assert!(lock_early(&[job(delete(a))]));
    assert!(lock_early(&[job(delete(a)), job(delete(b))]));
    assert!(!lock_early(&[job(create()), job(delete(a))]));
    assert!(!lock_early(&[job(delete(a)), job(create()), job(create())]));
}

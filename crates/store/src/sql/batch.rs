//! A batch of record writes in one transaction: each item runs the single-record statements
//! of `records` (so each gets its audit entry and its change), in order; the first that
//! fails fails the batch, as [`StoreError::Item`] naming its index, and the caller rolls the
//! transaction back. Updates and deletes are authorised here, on the record read locked
//! inside the transaction, so no write lands on a record the check did not see.
//!
//! The items' audit entries are appended together after the last item (one lock and one
//! head read of the chain), unless the connection already collects them (the SQLite
//! writer's group commit): see [`Deferring`].
//!
//! An `Idempotency-Key` is claimed first, in `_plinth_batch_keys` (a concurrent batch with
//! the same key waits on the claim, then replays); the ids written are stored with it at
//! the end, and a replay answers those records as they are now.

mod defer;

use super::records::{self, By, StatusChange};
use super::{Exec, Query, SqlRow};
use crate::batch::{BatchOp, Batched};
use crate::shared::Visibility;
use crate::{IdempotencyClaim, StoreError};
use defer::Deferring;
use plinth_core::policy::{self, Action};
use plinth_core::{Denial, ModelDef, Record, RecordId};
use uuid::Uuid;

/// Version 7 of Plinth's own tables: the idempotency keys of batches, with the ids each
/// batch wrote (a JSON array, in item order), swept with the single-create keys.
pub(crate) const BATCH_KEYS_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_batch_keys (
        model TEXT NOT NULL,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        body_digest TEXT NOT NULL,
        record_ids TEXT NOT NULL,
        created_at {time} NOT NULL,
        PRIMARY KEY (model, scope, key)
    );
    CREATE INDEX IF NOT EXISTS _plinth_batch_keys_created ON _plinth_batch_keys (created_at);";

/// Applies `ops` in order, or replays the batch that claimed the same idempotency key.
/// Fails with the first item's error (wrapped in [`StoreError::Item`]); the caller then
/// rolls back everything.
pub(crate) async fn apply<E: Exec>(
    e: &E,
    by: By<'_>,
    vis: &Visibility,
    model: &ModelDef,
    ops: &[BatchOp],
    idempotency: Option<(String, IdempotencyClaim)>,
) -> Result<Batched, StoreError> {
    if let Some((scope, claim)) = &idempotency
        && let Some(replay) = claim_key(e, by, model, scope, claim).await?
    {
        return Ok(replay);
    }
    let deferring = Deferring::new(e);
    let mut written = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let record = write(&deferring, by, vis, model, op)
            .await
            .map_err(|error| at_item(index, error))?;
        written.push(record);
    }
    deferring.flush().await?;
    if let Some((scope, claim)) = &idempotency {
        let ids: Vec<String> = written.iter().map(|r| r.id.to_string()).collect();
        let ids = serde_json::to_string(&ids).map_err(StoreError::internal)?;
        let mut q = Query::new(E::DIALECT);
        q.push("UPDATE _plinth_batch_keys SET record_ids = ")
            .bind(&ids)
            .push(" WHERE model = ")
            .bind(model.name().as_str())
            .push(" AND scope = ")
            .bind(scope)
            .push(" AND key = ")
            .bind(&claim.key);
        e.execute(&q).await?;
    }
    Ok(Batched {
        records: written,
        replayed: false,
    })
}

/// The error of item `index`: the item's own fault (a refused value, a conflict, a stale
/// version, a record not there or not the actor's) names it; anything else (contention, an
/// unavailable database) stays as it is, so the transaction is retried or answered as any
/// write's.
fn at_item(index: usize, error: StoreError) -> StoreError {
    match error {
        StoreError::NotFound
        | StoreError::Forbidden
        | StoreError::Conflict { .. }
        | StoreError::InvalidReference { .. }
        | StoreError::UnknownFile { .. }
        | StoreError::InvalidValue { .. }
        | StoreError::Stale { .. } => StoreError::Item {
            index,
            source: Box::new(error),
        },
        other => other,
    }
}

/// One item.
async fn write<E: Exec>(
    e: &E,
    by: By<'_>,
    vis: &Visibility,
    model: &ModelDef,
    op: &BatchOp,
) -> Result<Record, StoreError> {
    match op {
        BatchOp::Create(draft) => {
            let staged = records::Staged::new(by.keys, by.ctx, model, draft)?;
            records::create(e, by, vis, model, draft.clone(), &staged, None)
                .await
                .map(|c| c.record)
        }
        BatchOp::Update {
            id,
            patch,
            expected_version,
        } => {
            authorize(e, by, model, *id, Action::Update).await?;
            records::update(e, by, vis, model, *id, patch, *expected_version).await
        }
        BatchOp::Delete {
            id,
            expected_version,
        } => {
            authorize(e, by, model, *id, Action::Delete).await?;
            let change = StatusChange::Delete;
            records::set_status(e, by, model, *id, change, *expected_version).await
        }
    }
}

/// Reads the owner of record `id` locked against other writers until the transaction ends,
/// and asks the access policy whether the actor may do `action` to it: a record the actor
/// may not read is [`StoreError::NotFound`] when the model hides it, else
/// [`StoreError::Forbidden`], as for a single write.
async fn authorize<E: Exec>(
    e: &E,
    by: By<'_>,
    model: &ModelDef,
    id: RecordId,
    action: Action,
) -> Result<(), StoreError> {
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT \"owner_id\" FROM ")
        .ident(model.name().as_str())
        .push(" WHERE \"id\" = ")
        .bind(id)
        .push(E::DIALECT.for_update())
        .cached();
    let owner: Option<Uuid> = e
        .row(&q, |r| r.opt_uuid(0))
        .await?
        .ok_or(StoreError::NotFound)?;
    policy::authorize(&by.ctx.actor, model.policy(), action, Some(owner)).map_err(|e| match e {
        plinth_core::Error::Denied(Denial::Hidden) => StoreError::NotFound,
        _ => StoreError::Forbidden,
    })
}

/// Claims the idempotency key, or answers the batch that claimed it before: the same body
/// replays its records as they are now, another body is a conflict.
async fn claim_key<E: Exec>(
    e: &E,
    by: By<'_>,
    model: &ModelDef,
    scope: &str,
    claim: &IdempotencyClaim,
) -> Result<Option<Batched>, StoreError> {
    let m = model.name().as_str();
    let mut q = Query::new(E::DIALECT);
    q.push("INSERT INTO _plinth_batch_keys (model, scope, key, body_digest, record_ids, created_at) VALUES (")
        .bind_all([m.into(), scope.into(), (&claim.key).into(), (&claim.body_digest).into(), "[]".into(), by.now.into()])
        .push(") ON CONFLICT DO NOTHING");
    if e.execute(&q).await? == 1 {
        return Ok(None);
    }
    let mut q = Query::new(E::DIALECT);
    q.push("SELECT body_digest, record_ids FROM _plinth_batch_keys WHERE model = ")
        .bind(m)
        .push(" AND scope = ")
        .bind(scope)
        .push(" AND key = ")
        .bind(&claim.key);
    let (digest, ids) = e
        .row(&q, |r| Ok((r.text(0)?, r.text(1)?)))
        .await?
        .ok_or_else(|| StoreError::internal("batch idempotency claim vanished"))?;
    let conflict = |reason: &str| StoreError::Conflict {
        field: Some("Idempotency-Key".to_owned()),
        reason: reason.to_owned(),
    };
    if digest != claim.body_digest {
        return Err(conflict("was already used with a different request body"));
    }
    let ids: Vec<Uuid> = serde_json::from_str(&ids).map_err(|_| super::unreadable("batch ids"))?;
    let mut replayed = Vec::with_capacity(ids.len());
    for id in ids {
        match records::get(e, by.keys, model, RecordId::from_uuid(id)).await? {
            Some(record) => replayed.push(record),
            None => {
                return Err(conflict(
                    "was used for a batch whose records have since been purged",
                ));
            }
        }
    }
    Ok(Some(Batched {
        records: replayed,
        replayed: true,
    }))
}

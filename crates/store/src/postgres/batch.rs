//! `Store::batch` on PostgreSQL: one transaction (retried whole when it loses a race, like
//! every write); an item that fails rolls it back.

use super::PgStore;
use crate::shared::idempotency_scope;
use crate::sql::batch;
use crate::{BatchOp, Batched, IdempotencyClaim, StoreError, WriteCtx};
use plinth_core::ModelDef;
use std::sync::Arc;

impl PgStore {
    /// `Store::batch`.
    pub(super) async fn batch_now(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        ops: Vec<BatchOp>,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Batched, StoreError> {
        let vis = self.visibility(ctx);
        let scope = idempotency_scope(ctx);
        let written = self
            .in_tx(async |tx| {
                let claim = idempotency.clone().map(|c| (scope.clone(), c));
                batch::apply(tx, self.by(ctx), &vis, model, &ops, claim).await
            })
            .await;
        if let Ok(batched) = &written
            && !batched.replayed
        {
            self.wrote(model.name().as_str(), ops.len() as u64);
        }
        self.changed(written)
    }
}

//! `Store::batch` on SQLite: the whole batch is one job of the writer, so it commits with
//! its group or, when an item fails, rolls back alone (see `writer`: a failed job leaves
//! the group's other jobs intact).

use super::SqliteStore;
use crate::shared::idempotency_scope;
use crate::sql::records::By;
use crate::sql::{batch, ready};
use crate::{BatchOp, Batched, IdempotencyClaim, StoreError, WriteCtx};
use plinth_core::ModelDef;
use std::sync::Arc;

impl SqliteStore {
    /// `Store::batch`.
    pub(super) async fn batch_now(
        &self,
        ctx: &WriteCtx,
        model: &Arc<ModelDef>,
        ops: Vec<BatchOp>,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<Batched, StoreError> {
        let model = Arc::clone(model);
        let scope = idempotency_scope(ctx);
        let (vis, ctx) = (self.visibility(ctx), ctx.clone());
        let keys = self.inner.keys.clone();
        let written = self
            .write(move |w| {
                let by = By {
                    ctx: &ctx,
                    now: w.now(),
                    keys: &keys,
                };
                let claim = idempotency.clone().map(|c| (scope.clone(), c));
                ready(batch::apply(&w.conn, by, &vis, &model, &ops, claim))
            })
            .await;
        self.changed(written)
    }
}

//! Bringing the database to the declared models: the plan, the migration (what a server
//! beside other instances may apply), an import in one transaction, and starting on a
//! database that holds more than declared.

use super::exec::Pg;
use super::{PgStore, ddl, errors};
use crate::sql::transfer as sql_transfer;
use crate::transfer::{Line, TransferError};
use crate::{Claim, StoreError};
use plinth_core::Schema;
use plinth_core::migrate::Plan;
use std::sync::Arc;

impl PgStore {
    /// The declarations this store serves from now on.
    fn use_schema(&self, schema: &Schema) {
        if let Ok(mut s) = self.inner.schema.write() {
            *s = Arc::new(schema.clone());
        }
    }

    /// `Store::plan`.
    pub(super) async fn plan_now(&self, schema: &Schema) -> Result<Plan, StoreError> {
        self.in_tx(async |tx| {
            ddl::lock_and_init(tx.0, &self.inner.keys, self.inner.upgrade).await?;
            ddl::plan(tx.0, schema).await
        })
        .await
    }

    /// `Store::import`.
    pub(super) async fn import_now(
        &self,
        schema: &Schema,
        lines: &[Line],
    ) -> Result<(), TransferError> {
        // One transaction, not bounded as a whole (an import may be large; each statement
        // has the statement timeout), and not retried: the target is a fresh database.
        let mut client = self.inner.pool.get().await.map_err(errors::pool)?;
        let tx = client.transaction().await.map_err(errors::map)?;
        let filled = async {
            ddl::lock_and_init(&tx, &self.inner.keys, self.inner.upgrade).await?;
            ddl::migrate(&tx, schema, &sql_transfer::refuse_destructive).await?;
            sql_transfer::fill(&Pg(&tx), &self.inner.keys, schema, lines).await?;
            // No reader replays across an import.
            Ok(crate::sql::changes::reset(&Pg(&tx)).await?)
        }
        .await;
        match filled {
            Ok(()) => tx.commit().await.map_err(errors::map)?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
        self.use_schema(schema);
        let mut records: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for line in lines {
            if let crate::transfer::Item::Record(model, _) = &line.item {
                *records.entry(model.name().as_str()).or_default() += 1;
            }
        }
        for (model, n) in records {
            self.wrote(model, n);
        }
        Ok(())
    }

    /// `Store::migrate`.
    pub(super) async fn migrate_now(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        // Beside other instances a server applies only what they can run beside; the rest
        // waits until it runs alone, holding the claim exclusively so none starts meanwhile.
        let held = self.inner.claim.lock().await;
        let serving = match held.as_ref() {
            Some((Claim::Serve, h)) => Some(h),
            _ => None,
        };
        let alone = match serving {
            Some(h) => Some(h.try_exclusive().await?),
            None => None,
        };
        let others = alone == Some(false);
        let check = |plan: &Plan| {
            if others {
                plan.check_beside_others().map_err(StoreError::Migration)?;
            }
            plan.check(allow_destructive).map_err(StoreError::Migration)
        };
        let result = self
            .in_tx(async |tx| {
                ddl::lock_and_init(tx.0, &self.inner.keys, self.inner.upgrade).await?;
                ddl::migrate(tx.0, schema, &check).await
            })
            .await;
        if let (Some(h), Some(true)) = (serving, alone) {
            h.release_exclusive().await?;
        }
        drop(held);
        let steps = result?;
        if !steps.is_empty() {
            // A statement prepared before a column changed type would bind the old type.
            self.inner.pool.manager().statement_caches.clear();
        }
        self.use_schema(schema);
        Ok(steps)
    }

    /// `Store::adopt`.
    pub(super) async fn adopt_now(&self, schema: &Schema) -> Result<Vec<String>, StoreError> {
        let applied = crate::Store::recorded(self).await?;
        let kept =
            plinth_core::migrate::adoptable(&applied, schema).map_err(StoreError::Migration)?;
        self.use_schema(schema);
        Ok(kept)
    }
}

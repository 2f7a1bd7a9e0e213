//! Bringing the database to the declared models: the migration, an import in one
//! transaction, and starting on a database that holds more than declared.

use super::{SqliteStore, ddl, errors};
use crate::StoreError;
use crate::sql::ready;
use crate::sql::transfer as sql_transfer;
use crate::transfer::{Line, TransferError};
use plinth_core::Schema;
use std::sync::Arc;

impl SqliteStore {
    /// The declarations this store serves from now on.
    fn use_schema(&self, schema: &Schema) {
        if let Ok(mut s) = self.inner.schema.write() {
            *s = Arc::new(schema.clone());
            self.inner.recent.new_schema();
            self.inner.records.clear();
        }
    }

    /// `Store::import`.
    pub(super) async fn import_now(
        &self,
        schema: &Schema,
        lines: Vec<Line>,
    ) -> Result<(), TransferError> {
        let (target, keys) = (schema.clone(), self.inner.keys.clone());
        self.exclusive(move |w| {
            let tx = w
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(errors::map)?;
            let filled = ddl::migrate_in(&tx, &target, &sql_transfer::refuse_destructive)
                .map_err(TransferError::from)
                .and_then(|_| ready(sql_transfer::fill(&*tx, &keys, &target, &lines)))
                // No reader replays across an import.
                .and_then(|()| {
                    ready(crate::sql::changes::reset(&*tx)).map_err(TransferError::from)
                });
            // Dropped uncommitted on failure: rolled back, nothing left behind.
            if filled.is_ok() {
                tx.commit().map_err(errors::map)?;
            }
            Ok(filled)
        })
        .await??;
        self.use_schema(schema);
        Ok(())
    }

    /// `Store::migrate`.
    pub(super) async fn migrate_now(
        &self,
        schema: &Schema,
        allow_destructive: bool,
    ) -> Result<Vec<String>, StoreError> {
        let target = schema.clone();
        let applied = self
            .exclusive(move |w| ddl::migrate(&mut w.conn, &target, allow_destructive))
            .await?;
        self.use_schema(schema);
        Ok(applied)
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

//! The reads that may scan, on the blocking pool within the time budget (a short list's
//! page tried on the caller's thread first): a list's page and its total (both admitted by
//! the list gate, as they cost alike), the records an expansion names, and the audit
//! chain's walk.

use super::SqliteStore;
use super::readers::fits_inline;
use crate::sql::{audit, list, ready, shape};
use crate::{AuditVerdict, Page, StoreError};
use plinth_core::{ListQuery, ListScope, ModelDef, Record, RecordId};
use std::sync::Arc;

impl SqliteStore {
    /// `Store::list`.
    pub(super) async fn list_now(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Page, StoreError> {
        // A pattern or a search can spend long in one step, which nothing interrupts.
        let short = fits_inline(query.limit, model.fields().len()) && !query.has_pattern();
        let (model, query) = (Arc::clone(model), query.clone());
        let keys = self.inner.keys.clone();
        self.inner
            .readers
            .list(query.has_pattern(), short, move |c| {
                ready(list::list(c, &keys, &model, &query, scope))
            })
            .await
    }

    /// `Store::explain_list`: on a reader, admitted as the list is.
    pub(super) async fn explain_now(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<Vec<String>, StoreError> {
        let (model, query) = (Arc::clone(model), query.clone());
        let keys = self.inner.keys.clone();
        self.inner
            .readers
            .list(query.has_pattern(), true, move |c| {
                ready(list::explain(c, &keys, &model, &query, scope))
            })
            .await
    }

    /// `Store::count`.
    pub(super) async fn count_now(
        &self,
        model: &Arc<ModelDef>,
        query: &ListQuery,
        scope: ListScope,
    ) -> Result<u64, StoreError> {
        let (model, query) = (Arc::clone(model), query.clone());
        let keys = self.inner.keys.clone();
        self.inner
            .readers
            .list(query.has_pattern(), false, move |c| {
                ready(shape::count(c, &keys, &model, &query, scope))
            })
            .await
    }

    /// `Store::get_many`.
    pub(super) async fn get_many_now(
        &self,
        model: &Arc<ModelDef>,
        ids: &[RecordId],
    ) -> Result<Vec<Record>, StoreError> {
        let (model, ids) = (Arc::clone(model), ids.to_vec());
        let keys = self.inner.keys.clone();
        self.read(move |c| ready(shape::get_many(c, &keys, &model, &ids)))
            .await
    }

    /// `Store::audit_verify`: the walk, a read per step.
    pub(super) async fn audit_verify_now(&self) -> Result<AuditVerdict, StoreError> {
        let mut walk = audit::Walk::default();
        loop {
            let (verdict, next) = self
                .read(move |c| {
                    let mut walk = walk;
                    let verdict = ready(walk.step(c))?;
                    Ok((verdict, walk))
                })
                .await?;
            match verdict {
                Some(verdict) => return Ok(verdict),
                None => walk = next,
            }
        }
    }
}

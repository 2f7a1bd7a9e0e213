//! `plinth migrate`: shows the schema migration to the declared models, and applies it.

use super::serve::open_claimed;
use crate::cli::{GlobalArgs, MigrateArgs};
use crate::config::Config;
use crate::logging;
use anyhow::Context;
use plinth_store::{Claim, StoreError};

/// `plinth migrate`.
pub(crate) fn run(global: &GlobalArgs, args: &MigrateArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    // The plan is the output; routine log lines would only interleave with it.
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(migrate(&config, args.dry_run, args.allow_destructive))
}

/// Prints the plan, and applies it unless `dry_run`.
async fn migrate(config: &Config, dry_run: bool, allow_destructive: bool) -> anyhow::Result<()> {
    super::serve::warn_revealing_unique(&config.schema);
    // A migration under a running server would break it: refused, by the dry run too,
    // before anything in the database is touched.
    let store = match open_claimed(config, Claim::Maintain).await {
        Ok(store) => store,
        Err(e)
            if e.downcast_ref::<StoreError>()
                .is_some_and(|e| matches!(e, StoreError::InUse(_))) =>
        {
            let verb = if dry_run {
                "would be refused"
            } else {
                "is refused"
            };
            return Err(e.context(format!("the migration {verb}")));
        }
        Err(e) => return Err(e),
    };
    let plan = store.plan(&config.schema).await?;
    if plan.is_empty() {
        println!("the schema is up to date");
    }
    let sql = store.plan_sql(&config.schema).await?;
    for (step, (_, statements)) in plan.steps.iter().zip(&sql) {
        let mark = if step.is_destructive() {
            " (destructive)"
        } else {
            ""
        };
        println!("{}{mark}", step.describe());
        if dry_run {
            // Each statement as it will run, indented under its step.
            for statement in statements {
                println!("    {};", statement.replace('\n', "\n    "));
            }
        }
    }
    if dry_run && let Err(refusal) = plan.check(allow_destructive) {
        println!("the migration would be refused: {refusal}");
    }
    if dry_run || plan.is_empty() {
        store.close().await;
        return Ok(());
    }
    let result = store.migrate(&config.schema, allow_destructive).await;
    store.close().await;
    result.context("schema migration failed")?;
    println!("applied {} step(s)", plan.steps.len());
    Ok(())
}

//! `plinth migrate`: the versions of Plinth's own tables and the migration to the declared
//! models: `plan` and `status` show them, `up` (or bare `plinth migrate`) applies them,
//! `down --to N` rolls Plinth's own tables back for an older binary.

use super::serve::{open_as_is, open_claimed};
use crate::cli::{GlobalArgs, MigrateAction, MigrateArgs};
use crate::config::Config;
use crate::logging;
use anyhow::Context;
use plinth_core::migrate::Plan;
use plinth_store::versions::LATEST;
use plinth_store::{Claim, SchemaStatus, Store, StoreError};
use std::sync::Arc;

/// `plinth migrate`.
pub(crate) fn run(global: &GlobalArgs, args: &MigrateArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    // The plan is the output; routine log lines would only interleave with it.
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    let runtime = super::runtime()?;
    let allow = args.allow_destructive;
    match &args.action {
        None => runtime.block_on(migrate(&config, args.dry_run, allow)),
        Some(MigrateAction::Up) => runtime.block_on(migrate(&config, false, allow)),
        Some(MigrateAction::Plan) => runtime.block_on(plan(&config)),
        Some(MigrateAction::Status) => runtime.block_on(status(&config)),
        Some(MigrateAction::Down(down_args)) => {
            runtime.block_on(down(&config, down_args.to, allow))
        }
    }
}

/// Opens the database alone (a migration under a running server would break it: refused,
/// by the read-only actions too, before anything in the database is touched); `as_is`
/// applies no version of Plinth's own tables.
async fn open(config: &Config, as_is: bool, what: &str) -> anyhow::Result<Arc<dyn Store>> {
    let opened = if as_is {
        open_as_is(config, Claim::Maintain).await
    } else {
        open_claimed(config, Claim::Maintain).await
    };
    match opened {
        Ok(store) => Ok(store),
        Err(e)
            if e.downcast_ref::<StoreError>()
                .is_some_and(|e| matches!(e, StoreError::InUse(_))) =>
        {
            Err(e.context(format!("{what} is refused")))
        }
        Err(e) => Err(e),
    }
}

/// Prints the plan, and applies it unless `dry_run` (as before versions existed, opening
/// the database brings Plinth's own tables to the latest version, even for a dry run).
async fn migrate(config: &Config, dry_run: bool, allow_destructive: bool) -> anyhow::Result<()> {
    super::serve::warn_revealing_unique(&config.schema);
    let what = if dry_run {
        "the dry run of the migration"
    } else {
        "the migration"
    };
    let store = open(config, false, what).await?;
    let versions = store.schema_status().await;
    let plan = store.plan(&config.schema).await;
    let (versions, plan) = match (versions, plan) {
        (Ok(v), Ok(p)) => (v, p),
        (v, p) => {
            store.close().await;
            return Err(v.err().or(p.err()).map_or_else(
                || anyhow::anyhow!("cannot read the database's schema"),
                anyhow::Error::from,
            ));
        }
    };
    print_database_version(&versions);
    if plan.is_empty() {
        println!("the schema is up to date");
    }
    // A dry run shows each statement as it will run, under its step.
    let sql = match dry_run {
        true => Some(store.plan_sql(&config.schema).await?),
        false => None,
    };
    print_model_steps(&plan, sql.as_deref());
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

/// `plinth migrate plan`: the SQL of each pending version, then the model steps.
async fn plan(config: &Config) -> anyhow::Result<()> {
    let store = open(config, true, "the plan").await?;
    let shown = async {
        let status = store.schema_status().await?;
        let (plan, sql) = match store.plan(&config.schema).await {
            Ok(plan) => (plan, Some(store.plan_sql(&config.schema).await?)),
            // A new database has no declarations recorded yet (no baseline): the steps
            // are shown, their SQL is not (it needs the recorded declarations).
            Err(_) if !status.is_applied(0) => (Plan::new(&[], &config.schema), None),
            Err(e) => return Err(e),
        };
        Ok::<_, StoreError>((status, plan, sql))
    }
    .await;
    store.close().await;
    let (status, plan, sql) = shown?;
    refuse_newer(&status)?;
    let pending: Vec<_> = status.pending().collect();
    if pending.is_empty() {
        println!("Plinth's own tables are up to date (version {LATEST})");
    }
    for v in pending {
        let how = if v.additive {
            "additive"
        } else {
            "not additive"
        };
        println!(
            "-- Plinth's own tables, version {}: {} ({how})",
            v.number, v.name
        );
        println!("{}", v.up_sql);
    }
    println!("-- declared models");
    if plan.is_empty() {
        println!("the schema is up to date");
    }
    print_model_steps(&plan, sql.as_deref());
    Ok(())
}

/// `plinth migrate status`.
async fn status(config: &Config) -> anyhow::Result<()> {
    let store = open(config, true, "the status").await?;
    let status = store.schema_status().await;
    store.close().await;
    let status = status?;
    print_database_version(&status);
    for v in &status.versions {
        let state = match v.applied_at {
            Some(at) => format!("applied {at}"),
            None => "pending".to_owned(),
        };
        let mut notes: Vec<String> = Vec::new();
        if !v.known {
            notes.push("unknown to this plinth".to_owned());
        }
        if let Some(other) = &v.recorded_name {
            notes.push(format!(
                "recorded as {other:?} by another release line: this plinth refuses the database"
            ));
        }
        if !v.additive {
            notes.push("not additive".to_owned());
        }
        if v.destructive_down {
            notes.push("its down loses data".to_owned());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        println!("{:>4}  {state:<36}  {}{notes}", v.number, v.name);
    }
    Ok(())
}

/// `plinth migrate down --to N`.
async fn down(config: &Config, to: u32, allow_destructive: bool) -> anyhow::Result<()> {
    let store = open(config, true, "rolling the schema back").await?;
    let result = store.schema_down(to, allow_destructive).await;
    let status = store.schema_status().await;
    store.close().await;
    let undone = result.context("cannot roll the schema back")?;
    if undone.is_empty() {
        println!("Plinth's own tables are at version {to} or below already; nothing to roll back");
    }
    for version in &undone {
        println!("rolled back version {version}");
    }
    if let Ok(status) = status {
        print_database_version(&status);
    }
    if !undone.is_empty() {
        println!(
            "hand the database to the older plinth now: this one applies the versions again \
             when it next opens it"
        );
    }
    Ok(())
}

/// A database newer than this binary, with a version that is not additive, is refused as a
/// server start would refuse it.
fn refuse_newer(status: &SchemaStatus) -> anyhow::Result<()> {
    let unknown: Vec<_> = status.versions.iter().filter(|v| !v.known).collect();
    match status.database() {
        Some(top) if unknown.iter().any(|v| !v.additive) => anyhow::bail!(
            "the database's schema is at version {top}; this plinth knows up to {LATEST}: run a \
             newer plinth, or roll the schema back with `plinth migrate down --to {LATEST}` using \
             the newer binary"
        ),
        _ => Ok(()),
    }
}

fn print_database_version(status: &SchemaStatus) {
    match status.database() {
        Some(v) => println!("database: version {v}; this plinth: version {LATEST}"),
        None => println!("database: no version recorded; this plinth: version {LATEST}"),
    }
}

/// The steps to the declared models.
/// With `sql` (the store's rendering of the same plan), each statement is printed indented
/// under its step.
fn print_model_steps(plan: &Plan, sql: Option<&[(String, Vec<String>)]>) {
    for (i, step) in plan.steps.iter().enumerate() {
        let mark = if step.is_destructive() {
            " (destructive)"
        } else {
            ""
        };
        println!("{}{mark}", step.describe());
        for statement in sql.and_then(|s| s.get(i)).map_or(&[][..], |(_, s)| s) {
            println!("    {};", statement.replace('\n', "\n    "));
        }
    }
}

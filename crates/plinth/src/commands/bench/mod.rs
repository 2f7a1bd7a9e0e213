//! `plinth bench`: load a server on loopback and print the figures.

use super::serve;
use crate::cli::{BenchArgs, GlobalArgs};
use crate::config::{Config, Database, Secret};
use crate::logging;
use anyhow::Context;

mod scale;

/// `plinth bench`.
pub(crate) fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<()> {
    if let Some(records) = args.scale {
        return scale::run(global, &args, records);
    }
    let config = if args.all_features && args.url.is_none() && global.config.is_none() {
        features_config(global)?
    } else {
        Config::load(global, None)?
    };
    // Before any server starts or any record is seeded.
    workloads(&args)?;
    // The embedded server's access log would bury the report (and slow the run).
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(bench(config, args))
}

/// The configuration of `--all-features` ([`plinth_bench::FEATURES_TOML`]) over `global`.
fn features_config(global: &GlobalArgs) -> anyhow::Result<Config> {
    let path =
        std::env::temp_dir().join(format!("plinth-bench-features-{}.toml", std::process::id()));
    std::fs::write(&path, plinth_bench::FEATURES_TOML)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let global = GlobalArgs {
        config: Some(path.clone()),
        data_dir: global.data_dir.clone(),
        log_level: global.log_level.clone(),
    };
    let config = Config::load(&global, None);
    let _ = std::fs::remove_file(&path);
    config
}

/// Against `--url`, or an embedded server on a temporary database.
async fn bench(mut config: Config, args: BenchArgs) -> anyhow::Result<()> {
    let metrics_token = config
        .settings
        .metrics_token
        .as_ref()
        .map(|t| t.expose().to_owned());
    let opts = plinth_bench::Options {
        requests: args.requests,
        concurrency: args.concurrency,
        seed: args.seed,
        credential: config
            .settings
            .bench_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        fanout: args.fanout.then(|| plinth_bench::FanoutOptions {
            subscribers: args.subscribers as usize,
            write_rate: args.write_rate,
            duration: std::time::Duration::from_secs(args.duration),
        }),
        ceiling: args.ceiling,
        all_features: args.all_features,
        bulk: args.bulk.then_some(plinth_bench::BulkOptions {
            records: args.bulk_records,
            batch_size: args.batch_size,
            concurrency: args.bulk_concurrency as usize,
            first: 0,
            fields: if args.all_features {
                plinth_bench::BulkFields::Features
            } else {
                plinth_bench::BulkFields::Plain
            },
        }),
    };
    if let Some(addr) = args.serve_ceiling {
        return serve_ceiling(addr, &args).await;
    }
    if let Some(url) = &args.url {
        let live = open_live(url, &opts, &args).await?;
        let done = load(url, &opts, &args, &metrics_token).await;
        return finish(done?, live, &args).await;
    }
    // The embedded server runs on a temporary SQLite file, or, with DATABASE_URL=postgres://…,
    // on that database (point it at a scratch database: the bench writes to it).
    let dir = std::env::temp_dir().join(format!("plinth-bench-{}", std::process::id()));
    config.settings.data_dir = dir.clone();
    if !matches!(config.database()?, Database::Postgres(_)) {
        config.settings.database_url = None;
    }
    config.settings.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // Every fan-out stream is the one admin's: let it hold them all.
    if let Some(fanout) = &opts.fanout {
        let streams = &mut config.settings.realtime_max_per_principal;
        *streams = (*streams).max(fanout.subscribers);
        let total = &mut config.settings.realtime_max_total;
        *total = (*total).max(fanout.subscribers);
    }
    config.generate_key_in(&dir);
    config.generate_encryption_in(&dir);
    // The embedded server gets its own admin; the load runs with its token.
    let email = format!("bench-{}@example.com", std::process::id());
    config.settings.admin_email = Some(email.clone());
    config.settings.admin_password = Some(Secret::new("bench password 0f plinth"));
    let app = serve::build(&config, false).await?;
    let url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let address = plinth_core::auth::Email::parse(&email).map_err(|e| anyhow::anyhow!(e))?;
    let admin = state.store().find_user_by_email(&address).await?.context(
        "the benchmark's admin was not created (an admin already exists in this database?)",
    )?;
    let (token, _) = state
        .auth()
        .issue_access(&admin)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let opts = plinth_bench::Options {
        credential: Some(token),
        ..opts
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let result = match open_live(&url, &opts, &args).await {
        Ok(live) => load(&url, &opts, &args, &metrics_token)
            .await
            .map(|done| (done, live)),
        Err(e) => Err(e),
    };
    let finished = match result {
        Ok((done, live)) => finish(done, live, &args).await,
        Err(e) => Err(e),
    };
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    finished
}

/// `--serve-ceiling`: the probe alone, until interrupted.
async fn serve_ceiling(addr: std::net::SocketAddr, args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "the ceiling probe serves on a loopback address only, not {addr}"
    );
    let probe = plinth_bench::start_ceiling(addr, args.seed).await?;
    if let Some(path) = &args.ids_file {
        let mut text = probe.ids.join("\n");
        text.push('\n');
        if let Err(e) = std::fs::write(path, text) {
            probe.stop().await;
            anyhow::bail!("cannot write {}: {e}", path.display());
        }
    }
    println!(
        "ceiling probe: {} rows at {}/api/v1/resource/{{id}}; stop it with Ctrl-C",
        probe.ids.len(),
        probe.url
    );
    let _ = tokio::signal::ctrl_c().await;
    probe.stop().await;
    Ok(())
}

/// With `--all-features`, the live subscriber held open while the load runs.
async fn open_live(
    url: &str,
    opts: &plinth_bench::Options,
    args: &BenchArgs,
) -> anyhow::Result<Option<plinth_bench::Live>> {
    if !args.all_features {
        return Ok(None);
    }
    Ok(Some(
        plinth_bench::Live::open(url, opts.credential.as_deref()).await?,
    ))
}

/// What a run produced, by mode.
enum Done {
    Closed(plinth_bench::Report),
    Rate(plinth_bench::RateReport),
    Soak(plinth_bench::SoakReport),
}

/// Runs the mode the arguments ask for: the closed loop (default), `--rate`, or `--soak`.
async fn load(
    url: &str,
    opts: &plinth_bench::Options,
    args: &BenchArgs,
    metrics_token: &Option<String>,
) -> anyhow::Result<Done> {
    let Some(rate) = args.rate else {
        return Ok(Done::Closed(plinth_bench::run(url, opts).await?));
    };
    let duration = std::time::Duration::from_secs(args.duration);
    let max_in_flight = args.max_in_flight as usize;
    if args.soak {
        let warmup = args
            .warmup
            .map_or(duration / 5, std::time::Duration::from_secs);
        let shape = plinth_bench::SoakOptions {
            rate,
            duration,
            warmup,
            sample_every: std::time::Duration::from_secs(args.rss_every),
            window: std::time::Duration::from_secs(60),
            max_in_flight,
            max_error_rate: args.max_error_rate,
            max_rss_growth: args.max_rss_growth,
            metrics_token: metrics_token.clone(),
        };
        return Ok(Done::Soak(plinth_bench::run_soak(url, opts, &shape).await?));
    }
    let workloads = workloads(args)?;
    let shape = plinth_bench::RateOptions {
        rate,
        duration,
        workloads,
        max_in_flight,
    };
    Ok(Done::Rate(plinth_bench::run_rate(url, opts, &shape).await?))
}

/// The `--workloads` named, or why one is unknown.
fn workloads(args: &BenchArgs) -> anyhow::Result<Vec<plinth_bench::Workload>> {
    args.workloads
        .iter()
        .map(|name| {
            plinth_bench::Workload::parse(name.trim()).with_context(|| {
                format!(
                    "unknown workload {name:?} (known: get_one, list, create, mixed, read_write)"
                )
            })
        })
        .collect()
}

/// Prints the report and writes the files asked for; a soak beyond its limits, or a live
/// subscriber whose stream ended early, fails here.
async fn finish(
    done: Done,
    live: Option<plinth_bench::Live>,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let live = match live {
        Some(live) => Some(live.close().await),
        None => None,
    };
    let printed = print_done(done, args);
    if let Some(live) = live {
        print!("{live}");
        if let Some(why) = live.failure {
            anyhow::bail!("the live subscriber's stream ended early: {why}");
        }
    }
    printed
}

fn print_done(done: Done, args: &BenchArgs) -> anyhow::Result<()> {
    match done {
        Done::Closed(report) => finish_bench(&report, args.ids_file.as_deref()),
        Done::Rate(report) => {
            print!("{report}");
            Ok(())
        }
        Done::Soak(report) => {
            print!("{report}");
            if let Some(path) = &args.rss_csv {
                std::fs::write(path, report.rss_csv())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("rss samples written to {}", path.display());
            }
            if let Some(path) = &args.latency_csv {
                std::fs::write(path, report.latency_csv())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("latency distribution written to {}", path.display());
            }
            report
                .verdict()
                .map_err(|why| anyhow::anyhow!("the soak failed: {why}"))
        }
    }
}

fn finish_bench(
    report: &plinth_bench::Report,
    ids_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    print!("{report}");
    if let Some(path) = ids_file {
        let mut text = report.seeded_ids.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("seeded ids written to {}", path.display());
    }
    Ok(())
}

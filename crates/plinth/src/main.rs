//! The `plinth` binary: parses the command line, loads the configuration and wires the
//! crates together. No logic of its own lives here.

mod cli;
mod config;
mod logging;
mod serve;
mod transfer;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(&cli.global, args.listen)?;
            logging::init(&config.log_level)?;
            runtime.block_on(serve::serve(config, args.allow_destructive))
        }
        Command::Migrate(args) => {
            let config = Config::load(&cli.global, None)?;
            // The plan is the output; routine log lines would only interleave with it.
            logging::init(cli.global.log_level.as_deref().unwrap_or("warn"))?;
            runtime.block_on(migrate(&config, args.dry_run, args.allow_destructive))
        }
        Command::Config => {
            let config = Config::load(&cli.global, None)?;
            print!("{}", config.render());
            Ok(())
        }
        Command::User(cli::UserCommand::Create(args)) => {
            let config = Config::load(&cli.global, None)?;
            logging::init("warn")?;
            runtime.block_on(create_user(&config, args))
        }
        Command::Export(args) => {
            let config = Config::load(&cli.global, None)?;
            logging::init(cli.global.log_level.as_deref().unwrap_or("warn"))?;
            runtime.block_on(transfer::export(&config, &args.output))
        }
        Command::Import(args) => {
            let config = Config::load(&cli.global, None)?;
            logging::init(cli.global.log_level.as_deref().unwrap_or("warn"))?;
            runtime.block_on(transfer::import(&config, &args.input))
        }
        Command::Keys(cli::KeysCommand::Generate) => {
            println!("{}", config::generate_key_text()?);
            Ok(())
        }
        Command::Bench(args) => {
            let config = Config::load(&cli.global, None)?;
            // The embedded server's access log would bury the report (and slow the run).
            logging::init(cli.global.log_level.as_deref().unwrap_or("warn"))?;
            runtime.block_on(bench(config, args))
        }
    }
}

/// `plinth user create`.
async fn create_user(config: &Config, args: cli::UserCreateArgs) -> anyhow::Result<()> {
    let role =
        plinth_core::auth::parse_role(&args.role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    };
    let auth =
        plinth_server::Auth::new(config.auth.hashing_config()?).map_err(|e| anyhow::anyhow!(e))?;
    let store = serve::open_store(config).await?;
    let result = serve::create_user(store.as_ref(), &auth, &args.email, &password, role).await;
    store.close().await;
    let user = result?;
    println!(
        "created {} {} ({})",
        plinth_core::auth::role_name(user.role),
        user.id,
        user.email
    );
    Ok(())
}

/// `plinth migrate`: prints the plan, and applies it unless `--dry-run`.
async fn migrate(config: &Config, dry_run: bool, allow_destructive: bool) -> anyhow::Result<()> {
    let store = serve::open_store(config).await?;
    let plan = store.plan(&config.schema).await?;
    if plan.is_empty() {
        println!("the schema is up to date");
    }
    for step in &plan.steps {
        let mark = if step.is_destructive() {
            " (destructive)"
        } else {
            ""
        };
        println!("{}{mark}", step.describe());
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

/// `plinth bench`: against `--url`, or an embedded server on a temporary database.
async fn bench(mut config: Config, args: cli::BenchArgs) -> anyhow::Result<()> {
    let opts = plinth_bench::Options {
        requests: args.requests,
        concurrency: args.concurrency,
        seed: args.seed,
        credential: std::env::var(config::env::BENCH_TOKEN)
            .ok()
            .filter(|t| !t.is_empty()),
    };
    if let Some(url) = args.url {
        let report = plinth_bench::run(&url, &opts).await?;
        return finish_bench(&report, args.ids_file.as_deref());
    }
    // The embedded server runs on a temporary SQLite file, or, with DATABASE_URL=postgres://…,
    // on that database (point it at a scratch database: the bench writes to it).
    let dir = std::env::temp_dir().join(format!("plinth-bench-{}", std::process::id()));
    config.data_dir = dir.clone();
    if !matches!(config.database()?, config::Database::Postgres(_)) {
        config.database_url = None;
    }
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.auth.generate_key_in(&dir);
    // The embedded server gets its own admin; the load runs with its token.
    let email = format!("bench-{}@example.com", std::process::id());
    let password = "bench password 0f plinth";
    let admin_var = |k: &str| match k {
        "PLINTH_ADMIN_EMAIL" => Some(email.clone()),
        "PLINTH_ADMIN_PASSWORD" => Some(password.to_owned()),
        _ => None,
    };
    let app = serve::build_with_admin(&config, false, admin_var).await?;
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
    let result = plinth_bench::run(&url, &opts).await;
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    finish_bench(&result?, args.ids_file.as_deref())
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

//! The `plinth` binary: parses the command line and hands it to the command's module. No
//! logic of its own lives here.

mod cli;
mod commands;
mod config;
mod logging;

use cli::{AuditCommand, Cli, Command, KeysCommand, UserCommand};
use std::process::ExitCode;

/// mimalloc rather than the system allocator: a request allocates and frees a few dozen
/// small buffers, and glibc's malloc spent about a fifth of a get's instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    let global = &cli.global;
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(global, &args),
        Command::Migrate(args) => commands::migrate::run(global, &args),
        Command::Config(args) => commands::config::run(global, &args),
        Command::Export(args) => commands::transfer::run_export(global, &args),
        Command::Import(args) => commands::transfer::run_import(global, &args),
        Command::Backup(args) => commands::backup::run_backup(global, &args),
        Command::Restore(args) => commands::backup::run_restore(global, &args),
        Command::User(UserCommand::Create(args)) => commands::user::run_create(global, args),
        Command::Audit(AuditCommand::Verify) => commands::audit::run_verify(global),
        Command::Audit(AuditCommand::Export(args)) => commands::audit::run_export(global, &args),
        Command::Keys(KeysCommand::Generate) => commands::keys::generate(),
        Command::Keys(KeysCommand::Encryption) => commands::keys::encryption(),
        Command::Keys(KeysCommand::Rotate(args)) => commands::keys::run_rotate(global, &args),
        Command::Keys(KeysCommand::Retire(args)) => commands::keys::run_retire(global, &args),
        Command::Bench(args) => commands::bench::run(global, *args),
        Command::Health(args) => commands::health::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth: {e:#}");
            if e.is::<commands::audit::ChainBroken>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

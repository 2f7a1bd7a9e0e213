//! One module per command. `main` parses the command line and calls the command's `run`,
//! which loads the configuration, sets up logging and does the work.

pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod config;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod migrate;
pub(crate) mod permissions;
pub(crate) mod serve;
pub(crate) mod transfer;
pub(crate) mod user;

use anyhow::Context;

/// The runtime a command's async work runs on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

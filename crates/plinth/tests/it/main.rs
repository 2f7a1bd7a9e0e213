//! Process-level tests of the `plinth` binary: each spawns the real executable.

mod accounts;
mod config;
mod crash;
mod disk_full;
mod docs;
mod helpers;
mod logs;
mod migrate;
mod process;
mod refusals;
mod secrets;
mod settings;

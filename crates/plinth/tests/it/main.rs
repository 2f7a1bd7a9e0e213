//! Process-level tests of the `plinth` binary: each spawns the real executable.

mod accounts;
mod audit;
mod backup;
mod backup_refusals;
mod beside;
mod claims;
mod config;
mod crash;
mod data_files;
mod descriptors;
mod disk_full;
mod docs;
mod flags;
mod helpers;
mod logs;
mod migrate;
mod pii;
mod process;
mod refusals;
mod rotate;
mod sealed;
mod secrets;
mod settings;
mod tls;
mod transfer;

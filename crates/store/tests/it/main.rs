//! Integration tests of the stores against real databases: a SQLite file, and a PostgreSQL
//! server when `PLINTH_TEST_POSTGRES` names one.
//!
//! - `contract`: what every engine must do, each case run as `…::sqlite::case` and
//!   `…::postgres::case`.
//! - `postgres`: what only the PostgreSQL engine has (instances migrating together, races,
//!   timeouts), with its set-up in `pg`; `retries`: a write that keeps losing races gives
//!   up after exactly four attempts.
//! - `audit_order`: two PostgreSQL instances writing at once append one gap-free audit
//!   chain.
//! - `change_log`: two PostgreSQL instances writing at once log every change once, in
//!   order; one's write bumps the other's change signal (and drops no cache); a restore
//!   starts the change log's window at its head.
//! - `fresh_stats`: a table filled in bulk gets fresh planner statistics from the store.
//! - `pg_commit`: an audit entry refused at a group commit's end, or not sendable, leaves
//!   nothing of its batch; batches wanting the same unique values never stall; an instance
//!   runs one batch at a time.
//! - `pg_tls`: TLS to a TLS-only PostgreSQL server the test starts itself.
//! - `locking`: SQLite's file lock held by another process.
//! - `upgrade`: databases made by an older release get the columns added since.

mod audit_order;
mod change_log;
mod contract;
mod fresh_stats;
mod locking;
mod pg;
mod pg_commit;
mod pg_tls;
mod plans;
mod postgres;
mod retries;
mod upgrade;

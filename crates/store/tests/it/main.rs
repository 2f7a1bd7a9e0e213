//! Integration tests of the stores against real databases: a SQLite file, and a PostgreSQL
//! server when `PLINTH_TEST_POSTGRES` names one.

mod locking;
mod pg;
mod postgres;
mod refresh;
mod retries;
mod transfer;

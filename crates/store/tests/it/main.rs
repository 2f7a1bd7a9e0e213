//! Integration tests of the SQLite store against a real database file.

mod locking;
mod transfer;

//! The `db` handler: PostgreSQL through a connection pool, parameterized statements only.
//!
//! Operations `db.query`, `db.execute` and `db.transaction` take SQL text and a
//! separate list of JSON parameter values; values are bound as typed
//! parameters of a prepared statement (see `params.rs` for the JSON → SQL
//! type table, `rows.rs` for SQL → JSON), so no payload can change the SQL.
//! Statements are prepared once per pooled connection and cached.
//!
//! The pool (`pool_size`, default 10) bounds connections; a call waits for a
//! free one no longer than `pool_timeout_ms` and never past the envelope's
//! deadline, then fails transient. A lost connection fails the call transient
//! and the pool replaces the connection, so the retry layer's next attempt
//! runs on a fresh one. The handler itself never retries.
//!
//! Not supported in this version: TLS to the server (`sslmode=require` is
//! refused at config time), LISTEN/NOTIFY, COPY.

mod config;
mod error;
mod handler;
mod params;
mod rows;
#[cfg(test)]
mod tests;

pub use config::{DbHandlerConfig, default_connect_timeout_ms, default_pool_size, default_pool_timeout_ms};
pub use handler::DbHandler;

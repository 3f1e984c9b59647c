//! Handlers: the code that talks to the outside world for EFFECT nodes.
//!
//! [`Handler`] is the seam; each handler type lives in its own module with
//! its config beside it: [`http`] (HTTP APIs through reqwest), [`consul`]
//! (service registration and discovery through Consul's HTTP API), [`db`]
//! (PostgreSQL), [`vault`] (KV v2), and `local` (echo / transform / error, for
//! development and tests). The [`resilience`] layers (deadline, retry, circuit
//! breaker, rate limit, timeout) wrap every handler binding. Each handler is
//! built from its binding's `config` map with one call (`from_config`).
//! Handlers never read environment variables or credential files: the runtime
//! resolves secret references and hands each handler its final `config` map.

pub mod config;
mod config_map;
pub mod consul;
pub mod db;
mod error;
mod handler;
pub mod http;
mod internal_events;
pub mod local;
pub mod resilience;
pub mod vault;

pub use config::ConfigProblem;
pub use consul::{ConsulHandler, ConsulHandlerConfig};
pub use db::{DbHandler, DbHandlerConfig};
pub use error::HandlerError;
pub use handler::{CallContext, Handler, HandlerDescription, HandlerHealth, OperationInfo};
pub use http::{HttpHandler, HttpHandlerConfig};
pub use local::LocalHandler;
pub use resilience::{CallOutcome, ResilientHandler, TokioClock};
pub use vault::{VaultClient, VaultHandler, VaultHandlerConfig};

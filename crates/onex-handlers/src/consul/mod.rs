//! The `consul` handler: service registration and discovery through Consul's
//! HTTP API (`consul.register`, `consul.deregister`, `consul.list_services`,
//! `consul.get_service`, `consul.health`).
//!
//! It talks to the local Consul agent over plain HTTP(S) with reqwest (the
//! same client stack as the `http` handler, and its error classes: connect
//! errors, 5xx and 429 are transient, other 4xx permanent). The ACL token goes
//! in the `X-Consul-Token` header and is never printed.
//!
//! No Consul server can be installed where onex is built and tested, so this
//! client is tested against `ConsulTestServer` (`tests/support/consul_server.rs`),
//! a test double that implements exactly these endpoints as Consul's HTTP API
//! documentation specifies them, including its 400 and 404 answers.

mod api;
mod config;
mod handler;
#[cfg(test)]
mod tests;

pub use config::ConsulHandlerConfig;
pub use handler::ConsulHandler;

//! The `vault` handler: KV version 2 secrets in HashiCorp Vault or OpenBao.
//!
//! Operations `vault.get`, `vault.set`, `vault.delete`, `vault.list` (and the
//! seed's `get_secret`, `set_secret`, `delete_secret`, `list_secrets`) on
//! one KV v2 mount (`mount`, default `secret`). Authentication is a token or
//! AppRole; the token is renewed before it expires (see `client.rs`).
//!
//! Errors say what to check: 403 names the capability and the API path the
//! token's policy must grant, 404 the mount and path. 403/404 are permanent;
//! connection failures, 429 and 5xx (a sealed Vault answers 503) transient;
//! a check-and-set mismatch is a conflict. Returned secret data is the
//! caller's: this handler does not log payloads or results.

mod client;
mod config;
mod handler;
#[cfg(test)]
mod tests;

pub use client::{KvSecret, VaultClient, Versions};
pub use config::{VaultAuth, VaultHandlerConfig, default_approle_mount, default_mount, default_request_timeout_ms};
pub use handler::VaultHandler;

//! The `http` handler: calls HTTP APIs for EFFECT nodes (`http.get`, `http.post`,
//! `http.put`, `http.patch`, `http.delete`).
//!
//! Built on reqwest with rustls (no OpenSSL) and one pooled client per
//! binding. What it guarantees:
//! - limits: a request body over `max_request_bytes` is refused before it is
//!   sent; a response body is never buffered past `max_response_bytes`;
//! - classification: connect errors, timeouts, 5xx, 429 and 408 are transient,
//!   409/412 conflicts, other 4xx permanent, so the retry layer retries only
//!   what may succeed, and honours the server's `Retry-After`;
//! - containment: with a `base_url`, calls and redirects stay on its origin
//!   (SSRF), and header values and query strings never reach errors or logs.
//!
//! Payload and response shapes and the config are documented in
//! `docs/handlers.md`.

mod client;
mod config;
mod handler;
mod request;
pub(crate) mod response;
#[cfg(test)]
mod tests;

pub use client::builder as client_builder;
pub use config::HttpHandlerConfig;
pub use handler::HttpHandler;

//! Configuration of the `consul` handler: the `config` map of a `type: consul` binding.
//!
//! The ACL token is a secret (usually a `secret_ref`): `Debug` prints
//! `<redacted>`, and the client marks the header value sensitive.

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::config_map;

/// Settings of one `consul` handler binding.
///
/// ```yaml
/// handlers:
///   - type: consul
///     config:
///       address: http://consul.service.internal:8500
///       token: ${CONSUL_HTTP_TOKEN}
///       datacenter: eu-west-1
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulHandlerConfig {
    /// The Consul agent's HTTP API, e.g. `http://127.0.0.1:8500` (the agent's default
    /// address, as `CONSUL_HTTP_ADDR` defaults to). Default: `http://127.0.0.1:8500`.
    #[serde(default = "default_address")]
    pub address: String,
    /// ACL token, sent as `X-Consul-Token` (never as a query parameter, which would end up in
    /// access logs). Never printed. Default: none (the agent's default token applies).
    #[serde(default)]
    pub token: Option<String>,
    /// Datacenter for catalog and health queries (`?dc=`). Default: the agent's own.
    #[serde(default)]
    pub datacenter: Option<String>,
    /// Time to connect to the agent, in milliseconds. Default: 5000 (the agent is local or near).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Largest response read, in bytes. Default: 16 MiB (the catalog of a large cluster).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: NonZeroU64,
}

/// Consul's own default HTTP address.
fn default_address() -> String {
    "http://127.0.0.1:8500".to_owned()
}

/// 5 s: the agent normally runs on the same host.
const fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// 16 MiB: `/v1/catalog/services` of a cluster with thousands of services stays far below.
const fn default_max_response_bytes() -> NonZeroU64 {
    match NonZeroU64::new(16 * 1024 * 1024) {
        Some(n) => n,
        None => NonZeroU64::MIN,
    }
}

impl Default for ConsulHandlerConfig {
    fn default() -> Self {
        Self {
            address: default_address(),
            token: None,
            datacenter: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

impl ConsulHandlerConfig {
    /// Parses and validates a binding's `config` map.
    ///
    /// # Errors
    /// Every problem found, one line each, naming the field and the fix.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, Vec<String>> {
        let config: Self = config_map::parse(map)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// Every problem found, one line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Err(e) = self.parsed_address() {
            problems.push(e);
        }
        if self.token.as_deref().is_some_and(|t| HeaderValue::from_str(t).is_err()) {
            problems.push("`token`: not a valid header value; remove control characters and line breaks".to_owned());
        }
        if self.datacenter.as_deref().is_some_and(str::is_empty) {
            problems.push("`datacenter`: empty; remove the key to use the agent's datacenter".to_owned());
        }
        if self.connect_timeout_ms == 0 {
            problems.push("`connect_timeout_ms`: must be at least 1; the default is 5000".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    pub(super) fn parsed_address(&self) -> Result<Url, String> {
        let url = Url::parse(&self.address).map_err(|e| {
            format!("`address`: `{}` is not an absolute URL ({e}); write e.g. `http://127.0.0.1:8500`", self.address)
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(format!("`address`: `{}` must be an http or https URL", self.address));
        }
        Ok(url)
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl fmt::Debug for ConsulHandlerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulHandlerConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

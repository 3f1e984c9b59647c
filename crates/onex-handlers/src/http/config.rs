//! Configuration of the `http` handler: the `config` map of a `type: http` binding.
//!
//! Every default is here and nowhere else. Header values may hold secrets
//! (an `Authorization` resolved from a `secret_ref`), so `Debug` prints
//! header names only, and the client marks the values sensitive.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::config_map;

/// Settings of one `http` handler binding.
///
/// ```yaml
/// handlers:
///   - type: http
///     name: billing_api
///     config:
///       base_url: https://billing.internal.example.com/v1/
///       default_headers: {Authorization: "Bearer ${BILLING_TOKEN}"}
///       max_response_bytes: 1048576
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHandlerConfig {
    /// URL that relative request URLs (`"url": "invoices/42"`) are resolved against, e.g.
    /// `https://api.example.com/v1/` (keep the trailing slash: URL resolution drops the last
    /// segment otherwise). When set, an absolute URL to any other scheme, host or port is
    /// refused unless `allow_any_host` is true: the URL of a call comes from the envelope, so
    /// without this check whoever can publish a command could make the runtime call internal
    /// addresses on its behalf (server-side request forgery). Redirects are held to the same
    /// origin. Default: none (any absolute `http`/`https` URL is allowed).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Allow absolute URLs (and redirects) to origins other than `base_url`. Default: false.
    #[serde(default)]
    pub allow_any_host: bool,
    /// Headers sent with every request; a request's own `headers` override them by name.
    /// Values may be secrets and are never printed. Default: none.
    #[serde(default)]
    pub default_headers: BTreeMap<String, String>,
    /// Largest request body, in bytes, after JSON encoding; larger requests fail with a
    /// permanent error before anything is sent. Default: 10 MiB.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: NonZeroU64,
    /// Largest response body, in bytes. A larger `Content-Length` is refused before the body is
    /// read; a body without one is read until the limit and no further. Default: 50 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: NonZeroU64,
    /// Time to establish a TCP (and TLS) connection, in milliseconds. Default: 10000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long an idle pooled connection is kept, in milliseconds. Default: 90000.
    #[serde(default = "default_pool_idle_timeout_ms")]
    pub pool_idle_timeout_ms: u64,
    /// Idle connections kept per host; 0 disables pooling. Default: 32.
    #[serde(default = "default_pool_max_idle_per_host")]
    pub pool_max_idle_per_host: usize,
    /// Redirects followed per request before failing with a permanent error; 0 follows none
    /// (the 3xx response is returned). Default: 5.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// The `User-Agent` header. Default: `onex/<version>`.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
}

/// 10 MiB: the issue's request limit (seed 000 issue 3.x).
const fn default_max_request_bytes() -> NonZeroU64 {
    non_zero(10 * 1024 * 1024)
}

/// 50 MiB: the issue's response limit.
const fn default_max_response_bytes() -> NonZeroU64 {
    non_zero(50 * 1024 * 1024)
}

/// 10 s: long enough for a TLS handshake across regions, short next to the 30 s attempt timeout.
const fn default_connect_timeout_ms() -> u64 {
    10_000
}

/// 90 s: reqwest's default, under the usual 120 s idle timeout of load balancers.
const fn default_pool_idle_timeout_ms() -> u64 {
    90_000
}

/// 32: enough for the default node concurrency (64) split over a couple of hosts, bounded.
const fn default_pool_max_idle_per_host() -> usize {
    32
}

/// 5: browsers allow ~20; an API that redirects more than a few times is misconfigured.
const fn default_max_redirects() -> usize {
    5
}

fn default_user_agent() -> String {
    concat!("onex/", env!("CARGO_PKG_VERSION")).to_owned()
}

const fn non_zero(n: u64) -> NonZeroU64 {
    match NonZeroU64::new(n) {
        Some(n) => n,
        None => NonZeroU64::MIN,
    }
}

impl Default for HttpHandlerConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            allow_any_host: false,
            default_headers: BTreeMap::new(),
            max_request_bytes: default_max_request_bytes(),
            max_response_bytes: default_max_response_bytes(),
            connect_timeout_ms: default_connect_timeout_ms(),
            pool_idle_timeout_ms: default_pool_idle_timeout_ms(),
            pool_max_idle_per_host: default_pool_max_idle_per_host(),
            max_redirects: default_max_redirects(),
            user_agent: default_user_agent(),
        }
    }
}

impl HttpHandlerConfig {
    /// Parses and validates a binding's `config` map.
    ///
    /// # Errors
    /// Every problem found, one line each, naming the field and the fix.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, Vec<String>> {
        let config: Self = config_map::parse(map)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot: the base URL and the headers.
    ///
    /// # Errors
    /// Every problem found, one line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Err(e) = self.parsed_base_url() {
            problems.push(e);
        }
        for (name, value) in &self.default_headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!(
                    "`default_headers`: `{name}` is not a valid header name; use letters, digits and `-`"
                ));
            }
            if HeaderValue::from_str(value).is_err() {
                // The value may be a secret: name the header only.
                problems.push(format!(
                    "`default_headers`: the value of `{name}` is not a valid header value; remove control characters and line breaks"
                ));
            }
        }
        if HeaderValue::from_str(&self.user_agent).is_err() {
            problems.push("`user_agent`: not a valid header value; remove control characters".to_owned());
        }
        if self.connect_timeout_ms == 0 {
            problems.push("`connect_timeout_ms`: must be at least 1; the default is 10000".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// `base_url`, parsed.
    pub(super) fn parsed_base_url(&self) -> Result<Option<Url>, String> {
        let Some(raw) = &self.base_url else { return Ok(None) };
        let url = Url::parse(raw).map_err(|e| {
            format!("`base_url`: `{raw}` is not an absolute URL ({e}); write e.g. `https://api.example.com/v1/`")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`base_url`: scheme `{}` is not supported; use `http` or `https`", url.scheme()));
        }
        Ok(Some(url))
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(super) fn pool_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_idle_timeout_ms)
    }
}

impl fmt::Debug for HttpHandlerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be secrets: print the names only.
        let header_names: Vec<&str> = self.default_headers.keys().map(String::as_str).collect();
        f.debug_struct("HttpHandlerConfig")
            .field("base_url", &self.base_url)
            .field("allow_any_host", &self.allow_any_host)
            .field("default_headers", &header_names)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("pool_idle_timeout_ms", &self.pool_idle_timeout_ms)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("max_redirects", &self.max_redirects)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

//! `DbHandlerConfig`: the `config` of a `db` handler binding.
//!
//! ```yaml
//! handlers:
//!   - type: db
//!     name: orders_db
//!     config:
//!       url: postgres://app@db.internal:5432/orders
//!       password: { secret_ref: "vault:secret/app/db#password" }
//!       pool_size: 10
//! ```

use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{self, ConfigProblem};

/// Connections kept open at most. deadpool's default is 4 × CPUs; a fixed 10 is
/// predictable across machines and well under PostgreSQL's default `max_connections` (100).
pub const fn default_pool_size() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(9)
}
/// How long a new connection may take (TCP + startup + auth). libpq has no default; 5 s
/// fails fast on a black-holed address while tolerating a slow TLS-less handshake.
pub const fn default_connect_timeout_ms() -> u64 {
    5_000
}
/// How long a call waits for a free connection when all `pool_size` are busy; the
/// envelope's deadline shortens it further. Same as the binding's default timeout (seed 000).
pub const fn default_pool_timeout_ms() -> u64 {
    30_000
}
fn default_application_name() -> String {
    "onex".to_owned()
}

/// Settings of one `db` (PostgreSQL) handler binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbHandlerConfig {
    /// The server, as a PostgreSQL URI (`postgres://user@host:5432/dbname`) or key/value
    /// string (`host=db user=app dbname=orders`). Treated as a secret because users put
    /// passwords in it; prefer `password` for that. Required.
    pub url: SecretString,
    /// The password, overriding one in `url`. Usually a `secret_ref`. Default: none.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Connections kept open at most. Default 10.
    #[serde(default = "default_pool_size")]
    pub pool_size: NonZeroUsize,
    /// Milliseconds a new connection may take. Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds a call waits for a free connection; bounded by the envelope's deadline.
    /// Past it the call fails with a transient error (and the retry layer may try again). Default 30000.
    #[serde(default = "default_pool_timeout_ms")]
    pub pool_timeout_ms: u64,
    /// Server-side `statement_timeout` in milliseconds set on every connection. Default: none
    /// (the binding's `timeout_ms` abandons the call client-side either way).
    #[serde(default)]
    pub statement_timeout_ms: Option<u64>,
    /// `application_name` shown in `pg_stat_activity`. Default `onex`.
    #[serde(default = "default_application_name")]
    pub application_name: String,
}

impl DbHandlerConfig {
    /// The field names, for unknown-field diagnostics.
    pub const FIELDS: [&'static str; 7] = [
        "url",
        "password",
        "pool_size",
        "connect_timeout_ms",
        "pool_timeout_ms",
        "statement_timeout_ms",
        "application_name",
    ];

    /// A config for `url` with every other field at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            password: None,
            pool_size: default_pool_size(),
            connect_timeout_ms: default_connect_timeout_ms(),
            pool_timeout_ms: default_pool_timeout_ms(),
            statement_timeout_ms: None,
            application_name: default_application_name(),
        }
    }

    /// Parses and validates a binding's `config` map (secret references already resolved).
    ///
    /// # Errors
    /// Every problem found: unknown fields, wrong types, an unparsable `url`.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, Vec<ConfigProblem>> {
        let cfg: Self = config::parse(map, &Self::FIELDS)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-field checks; returns every problem.
    ///
    /// # Errors
    /// The problems found.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if let Err(p) = self.pg_config() {
            problems.push(p);
        }
        if self.connect_timeout_ms == 0 {
            problems.push(ConfigProblem::new("connect_timeout_ms", "must be at least 1", None));
        }
        if self.pool_timeout_ms == 0 {
            problems.push(ConfigProblem::new("pool_timeout_ms", "must be at least 1", None));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    pub(crate) fn pool_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_timeout_ms)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The tokio-postgres config: `url`, then `password`, timeouts and application name.
    pub(crate) fn pg_config(&self) -> Result<tokio_postgres::Config, ConfigProblem> {
        // tokio-postgres' parse errors name the option, never its value.
        let mut pg = tokio_postgres::Config::from_str(self.url.expose_secret()).map_err(|e| {
            let detail = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            ConfigProblem::new(
                "url",
                format!("not a PostgreSQL connection string: {detail}"),
                Some("write `postgres://user@host:5432/dbname` or `host=... user=... dbname=...`".into()),
            )
        })?;
        if pg.get_hosts().is_empty() {
            return Err(ConfigProblem::new(
                "url",
                "names no host",
                Some("write `postgres://user@host:5432/dbname`".into()),
            ));
        }
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(ConfigProblem::new(
                "url",
                "sslmode=require is not supported by this version of the db handler",
                Some("connect over a trusted network or a local TLS proxy, and drop sslmode".into()),
            ));
        }
        if let Some(p) = &self.password {
            pg.password(p.expose_secret().as_bytes());
        }
        pg.connect_timeout(self.connect_timeout());
        pg.application_name(&self.application_name);
        if let Some(ms) = self.statement_timeout_ms {
            pg.options(format!("-c statement_timeout={ms}"));
        }
        Ok(pg)
    }
}

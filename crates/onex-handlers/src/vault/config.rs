//! `VaultHandlerConfig`: the `config` of a `vault` handler binding.
//!
//! ```yaml
//! handlers:
//!   - type: vault
//!     config:
//!       address: https://vault.internal:8200
//!       mount: secret
//!       auth:
//!         method: approle
//!         role_id: 6a1f...
//!         secret_id: { secret_ref: "file:vault_secret_id" }
//! ```

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{self, ConfigProblem};

/// The KV v2 mount `vault server -dev` (and OpenBao's) creates.
pub fn default_mount() -> String {
    "secret".to_owned()
}
/// Where Vault mounts AppRole unless told otherwise.
pub fn default_approle_mount() -> String {
    "approle".to_owned()
}
/// One HTTP request to Vault. The binding's `timeout_ms` bounds the whole call; this bounds
/// each request inside it (login, renewal, the KV request) so one stuck request cannot use it all.
pub const fn default_request_timeout_ms() -> u64 {
    10_000
}

/// How the handler authenticates.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuth {
    /// A token (`method: token`). Renewed with `renew-self` when it is renewable and has a TTL.
    Token {
        /// The token. Usually a `secret_ref`.
        token: SecretString,
    },
    /// AppRole login (`method: approle`). The token it returns is renewed, and replaced by a new
    /// login when renewal is refused; it is revoked on shutdown.
    Approle {
        /// The role id.
        role_id: String,
        /// The secret id. Usually a `secret_ref`.
        secret_id: SecretString,
        /// Where the AppRole auth method is mounted. Default `approle`.
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
}

/// Settings of one `vault` handler binding (HashiCorp Vault or OpenBao, KV v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultHandlerConfig {
    /// Vault's address, e.g. `https://vault.internal:8200`. Required.
    pub address: String,
    /// The KV v2 mount. Default `secret`.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// How to authenticate. Required.
    pub auth: VaultAuth,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`. Default: none.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Milliseconds one HTTP request may take. Default 10000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

impl VaultHandlerConfig {
    /// The field names, for unknown-field diagnostics.
    pub const FIELDS: [&'static str; 5] = ["address", "mount", "auth", "namespace", "request_timeout_ms"];

    /// A config for `address` with token auth and every other field at its default.
    pub fn with_token(address: impl Into<String>, token: SecretString) -> Self {
        Self {
            address: address.into(),
            mount: default_mount(),
            auth: VaultAuth::Token { token },
            namespace: None,
            request_timeout_ms: default_request_timeout_ms(),
        }
    }

    /// Parses and validates a binding's `config` map (secret references already resolved).
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, Vec<ConfigProblem>> {
        let cfg: Self = config::parse(map, &Self::FIELDS)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the address is an http(s) URL and the mount a path.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        match reqwest::Url::parse(&self.address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => problems.push(ConfigProblem::new(
                "address",
                "not an http(s) URL",
                Some("write e.g. `https://vault.internal:8200`".into()),
            )),
        }
        if self.mount.trim_matches('/').is_empty() {
            problems.push(ConfigProblem::new("mount", "must not be empty", Some("the default is `secret`".into())));
        }
        if self.request_timeout_ms == 0 {
            problems.push(ConfigProblem::new("request_timeout_ms", "must be at least 1", None));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

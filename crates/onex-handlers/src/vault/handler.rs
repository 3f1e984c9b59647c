//! Behaviour of the vault handler: KV v2 get / set / delete / list.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use onex_core::{Clock, Operation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{VaultClient, Versions, permanent};
use super::config::VaultHandlerConfig;
use crate::config;
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::resilience::TokioClock;

const HANDLER_TYPE: &str = "vault";

const OPERATIONS: [(&str, &str); 4] = [
    (
        "vault.get",
        "Reads a secret. Payload `{\"path\": \"app/db\", \"version\": n?}`; result `{\"data\": {...}, \"version\": n}`.",
    ),
    (
        "vault.set",
        "Writes a new version. Payload `{\"path\", \"data\": {...}, \"cas\": n?}`; result `{\"version\": n}`.",
    ),
    (
        "vault.delete",
        "Deletes the latest version, or every version with `\"all_versions\": true`. Payload `{\"path\"}`; result `{\"deleted\": true}`.",
    ),
    ("vault.list", "Lists keys under a folder (folders end in `/`). Payload `{\"path\"}`; result `{\"keys\": [...]}`."),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetPayload {
    path: String,
    #[serde(default)]
    version: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPayload {
    path: String,
    data: Map<String, Value>,
    #[serde(default)]
    cas: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletePayload {
    path: String,
    #[serde(default)]
    all_versions: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListPayload {
    #[serde(default)]
    path: String,
}

/// The Vault (KV v2) handler; works with HashiCorp Vault and OpenBao.
#[derive(Debug)]
pub struct VaultHandler {
    client: VaultClient,
    shut_down: AtomicBool,
}

impl VaultHandler {
    /// Builds the handler from a binding's `config` map (secret references already resolved).
    /// This is the one call wiring makes. No request is made until the first call.
    ///
    /// # Errors
    /// [`HandlerError::Config`] listing every problem of the config.
    pub fn from_config(map: &Map<String, Value>) -> Result<Self, HandlerError> {
        let cfg = VaultHandlerConfig::from_map(map)
            .map_err(|p| HandlerError::Config { handler_type: HANDLER_TYPE.into(), message: config::join(&p) })?;
        Self::new(&cfg)
    }

    /// Builds the handler from a typed config.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid.
    pub fn new(cfg: &VaultHandlerConfig) -> Result<Self, HandlerError> {
        Self::with_clock(cfg, Arc::new(TokioClock::new()))
    }

    /// As [`VaultHandler::new`], reading token lifetimes against `clock`.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when the config is invalid.
    pub fn with_clock(cfg: &VaultHandlerConfig, clock: Arc<dyn Clock>) -> Result<Self, HandlerError> {
        Ok(Self { client: VaultClient::new(cfg, clock)?, shut_down: AtomicBool::new(false) })
    }

    /// The client underneath.
    pub fn client(&self) -> &VaultClient {
        &self.client
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, HandlerError> {
    T::deserialize(payload).map_err(|e| permanent(format!("invalid payload: {e}")))
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[async_trait]
impl Handler for VaultHandler {
    fn handler_type(&self) -> &str {
        HANDLER_TYPE
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription::new(HANDLER_TYPE, &OPERATIONS)
    }

    async fn execute(&self, _ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        let verb = operation.as_str().strip_prefix("vault.").unwrap_or(operation.as_str());
        // The seed's operation names (`get_secret`, …) are accepted as aliases.
        match verb {
            "get" | "get_secret" => {
                let p: GetPayload = parse(payload)?;
                let secret = self.client.get(&p.path, p.version).await?;
                Ok(object([("data", Value::Object(secret.data)), ("version", Value::from(secret.version))]))
            }
            "set" | "set_secret" => {
                let p: SetPayload = parse(payload)?;
                let version = self.client.set(&p.path, &p.data, p.cas).await?;
                Ok(object([("version", Value::from(version))]))
            }
            "delete" | "delete_secret" => {
                let p: DeletePayload = parse(payload)?;
                let versions = if p.all_versions { Versions::All } else { Versions::Latest };
                self.client.delete(&p.path, versions).await?;
                Ok(object([("deleted", Value::Bool(true))]))
            }
            "list" | "list_secrets" => {
                let p: ListPayload = parse(payload)?;
                let keys = self.client.list(&p.path).await?;
                Ok(object([("keys", Value::Array(keys.into_iter().map(Value::String).collect()))]))
            }
            _ => Err(HandlerError::UnsupportedOperation {
                handler_type: HANDLER_TYPE.into(),
                operation: operation.to_string(),
                supported: OPERATIONS.iter().map(|(n, _)| (*n).to_owned()).collect(),
            }),
        }
    }

    async fn health(&self) -> HandlerHealth {
        match self.client.check().await {
            Ok(detail) => HandlerHealth { healthy: true, detail },
            Err(e) => HandlerHealth { healthy: false, detail: e.to_string() },
        }
    }

    async fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            tracing::warn!(handler_type = HANDLER_TYPE, "Handler shutdown called more than once; ignored.");
            return;
        }
        self.client.revoke_login_token().await;
    }
}

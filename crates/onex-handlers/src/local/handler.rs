//! Behaviour of the local handler.

use async_trait::async_trait;
use onex_core::contract::Environment;
use onex_core::{ErrorClass, Operation};
use serde_json::Value;

use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};

const HANDLER_TYPE: &str = "local";

/// The longest `local.sleep` may wait.
const MAX_SLEEP_MS: u64 = 60_000;

const OPERATIONS: [(&str, &str); 4] = [
    ("local.echo", "Returns the payload unchanged."),
    ("local.transform", "Returns the payload with every string upper-cased, recursively."),
    (
        "local.error",
        "Fails. Payload `{\"class\": \"transient|permanent|conflict|rejected\", \"message\": \"...\"}`; defaults: permanent, \"requested error\".",
    ),
    (
        "local.sleep",
        "Waits `{\"ms\": n}` milliseconds (at most 60000), then returns the payload: a slow handler for trying timeouts and shutdown.",
    ),
];

/// The dev-only local handler. Stateless.
#[derive(Debug)]
pub struct LocalHandler {
    _private: (),
}

impl LocalHandler {
    /// Creates the handler for a runtime running in `environment`.
    ///
    /// # Errors
    /// [`HandlerError::Config`] when `environment` is `prod`.
    pub fn new(environment: Environment) -> Result<Self, HandlerError> {
        if environment == Environment::Prod {
            return Err(HandlerError::Config {
                handler_type: HANDLER_TYPE.into(),
                message: "the local handler is dev-only and refuses to start when runtime.environment is `prod`; \
                          remove it from the contract or set environment to dev or staging"
                    .into(),
            });
        }
        Ok(Self { _private: () })
    }
}

#[async_trait]
impl Handler for LocalHandler {
    fn handler_type(&self) -> &str {
        HANDLER_TYPE
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription::new(HANDLER_TYPE, &OPERATIONS)
    }

    async fn execute(&self, _ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        // Accept both `local.echo` and a bare `echo`.
        let verb = operation.as_str().strip_prefix("local.").unwrap_or(operation.as_str());
        match verb {
            "echo" => Ok(payload.clone()),
            "transform" => Ok(upper_case(payload)),
            "error" => Err(requested_error(payload)),
            "sleep" => {
                let ms = payload.get("ms").and_then(Value::as_u64).ok_or_else(|| HandlerError::Failed {
                    class: ErrorClass::Permanent,
                    message: format!("local.sleep needs a payload `{{\"ms\": n}}` with n from 0 to {MAX_SLEEP_MS}"),
                })?;
                tokio::time::sleep(std::time::Duration::from_millis(ms.min(MAX_SLEEP_MS))).await;
                Ok(payload.clone())
            }
            _ => Err(HandlerError::UnsupportedOperation {
                handler_type: HANDLER_TYPE.into(),
                operation: operation.to_string(),
                supported: OPERATIONS.iter().map(|(n, _)| (*n).to_owned()).collect(),
            }),
        }
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: "local handler has no dependencies".into() }
    }

    async fn shutdown(&self) {}
}

fn upper_case(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.iter().map(upper_case).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), upper_case(v))).collect()),
        other => other.clone(),
    }
}

fn requested_error(payload: &Value) -> HandlerError {
    let class = match payload.get("class").and_then(Value::as_str) {
        Some("transient") => ErrorClass::Transient,
        Some("conflict") => ErrorClass::Conflict,
        Some("rejected") => ErrorClass::Rejected,
        _ => ErrorClass::Permanent,
    };
    let message = payload.get("message").and_then(Value::as_str).unwrap_or("requested error").to_owned();
    HandlerError::Failed { class, message }
}

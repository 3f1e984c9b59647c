//! Unit tests of the vault handler that need no server (the real-server tests are in `tests/vault.rs`).

use onex_core::{CorrelationId, EnvelopeId, ErrorClass, Operation};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{VaultAuth, VaultHandler, VaultHandlerConfig};
use crate::{CallContext, Handler, HandlerError};

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(1)),
        attempt: 1,
        deadline: None,
    }
}

#[test]
fn config_reads_token_and_approle_auth_with_defaults() {
    let cfg = VaultHandlerConfig::from_map(&map(
        json!({"address": "http://127.0.0.1:8200", "auth": {"method": "token", "token": "t"}}),
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((cfg.mount.as_str(), cfg.request_timeout_ms), ("secret", 10_000));
    let cfg = VaultHandlerConfig::from_map(&map(json!({
        "address": "https://vault:8200",
        "auth": {"method": "approle", "role_id": "r", "secret_id": "s"}
    })))
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(matches!(cfg.auth, VaultAuth::Approle { ref mount, .. } if mount == "approle"));
}

#[test]
fn config_with_a_typo_fails_naming_the_field() {
    let err =
        VaultHandlerConfig::from_map(&map(json!({"adress": "http://v", "auth": {"method": "token", "token": "t"}})))
            .err()
            .unwrap_or_default();
    assert!(err.iter().any(|p| p.field == "adress" && p.to_string().contains("did you mean `address`")), "{err:?}");
}

#[test]
fn config_errors_and_debug_never_show_the_token() {
    let cfg = VaultHandlerConfig::from_map(&map(
        json!({"address": "http://v:8200", "auth": {"method": "token", "token": "hvs.SECRET"}}),
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!format!("{cfg:?}").contains("hvs.SECRET"));
    let err =
        VaultHandlerConfig::from_map(&map(json!({"address": "http://v", "auth": {"method": "token", "token": 12345}})))
            .err()
            .unwrap_or_default();
    assert!(err.iter().all(|p| !p.to_string().contains("12345")), "{err:?}");
}

#[test]
fn a_non_http_address_is_refused() {
    let err =
        VaultHandlerConfig::from_map(&map(json!({"address": "vault:8200", "auth": {"method": "token", "token": "t"}})))
            .err()
            .unwrap_or_default();
    assert_eq!(err.first().map(|p| p.field.as_str()), Some("address"));
}

fn handler() -> VaultHandler {
    VaultHandler::from_config(&map(json!({"address": "http://127.0.0.1:1", "auth": {"method": "token", "token": "t"}})))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn unreachable_vault_is_transient() {
    let err = handler().execute(&ctx(), &Operation::from("vault.get"), &json!({"path": "app/db"})).await.err();
    assert_eq!(err.as_ref().map(HandlerError::class), Some(ErrorClass::Transient), "{err:?}");
    assert!(!handler().health().await.healthy);
}

#[tokio::test]
async fn path_traversal_is_refused_before_any_request() {
    let err =
        handler().execute(&ctx(), &Operation::from("vault.get"), &json!({"path": "app/../../sys/seal"})).await.err();
    assert_eq!(err.as_ref().map(HandlerError::class), Some(ErrorClass::Permanent), "{err:?}");
}

#[tokio::test]
async fn describe_lists_get_set_delete_and_list() {
    let d = handler().describe();
    assert_eq!(d.handler_type, "vault");
    assert!(["vault.get", "vault.set", "vault.delete", "vault.list"].iter().all(|o| d.supports(o)));
    let err = handler().execute(&ctx(), &Operation::from("vault.seal"), &json!({})).await.err();
    assert!(matches!(err, Some(HandlerError::UnsupportedOperation { .. })));
}

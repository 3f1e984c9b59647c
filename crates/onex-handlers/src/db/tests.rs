//! Unit tests of the db handler that need no server (the real-server tests are in `tests/db.rs`).

use onex_core::{CorrelationId, EnvelopeId, ErrorClass, Operation, Timestamp};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{DbHandler, DbHandlerConfig};
use crate::{CallContext, Handler, HandlerError};

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn ctx(deadline: Option<Timestamp>) -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(1)),
        attempt: 1,
        deadline,
    }
}

fn handler(url: &str) -> DbHandler {
    DbHandler::from_config(&map(json!({"url": url, "pool_size": 2, "connect_timeout_ms": 500})))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn config_defaults_are_documented_values() {
    let cfg =
        DbHandlerConfig::from_map(&map(json!({"url": "postgres://app@db/orders"}))).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((cfg.pool_size.get(), cfg.connect_timeout_ms, cfg.pool_timeout_ms), (10, 5000, 30_000));
    assert_eq!(cfg.application_name, "onex");
}

#[test]
fn config_with_a_typo_fails_naming_the_field() {
    let err =
        DbHandlerConfig::from_map(&map(json!({"url": "postgres://db/x", "pool_sise": 5}))).err().unwrap_or_default();
    assert_eq!(err.len(), 1);
    assert!(err[0].to_string().contains("did you mean `pool_size`"), "{}", err[0]);
}

#[test]
fn config_errors_never_echo_the_url() {
    let err = DbHandlerConfig::from_map(&map(json!({"url": "postgres://app:hunter2@db:notaport/x"})))
        .err()
        .unwrap_or_default();
    assert_eq!(err.first().map(|p| p.field.as_str()), Some("url"));
    assert!(err.iter().all(|p| !p.to_string().contains("hunter2")), "{err:?}");
}

#[test]
fn config_debug_redacts_url_and_password() {
    let cfg = DbHandlerConfig::from_map(&map(json!({"url": "postgres://app:hunter2@db/x", "password": "s3cret"})))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("s3cret"), "{dbg}");
}

#[test]
fn a_zero_pool_size_is_refused() {
    let err =
        DbHandlerConfig::from_map(&map(json!({"url": "postgres://db/x", "pool_size": 0}))).err().unwrap_or_default();
    assert_eq!(err.first().map(|p| p.field.as_str()), Some("pool_size"));
}

#[tokio::test]
async fn describe_lists_query_execute_and_transaction() {
    let d = handler("postgres://postgres@127.0.0.1:1/test").describe();
    assert_eq!(d.handler_type, "db");
    assert!(d.supports("db.query") && d.supports("db.execute") && d.supports("db.transaction"));
}

#[tokio::test]
async fn unknown_operations_list_the_supported_ones() {
    let h = handler("postgres://postgres@127.0.0.1:1/test");
    let err = h.execute(&ctx(None), &Operation::from("db.drop"), &json!({})).await.err();
    assert!(matches!(err, Some(HandlerError::UnsupportedOperation { .. })), "{err:?}");
}

#[tokio::test]
async fn a_payload_without_sql_is_permanent() {
    let h = handler("postgres://postgres@127.0.0.1:1/test");
    let err = h.execute(&ctx(None), &Operation::from("db.query"), &json!({"params": [1]})).await.err();
    assert_eq!(err.as_ref().map(HandlerError::class), Some(ErrorClass::Permanent), "{err:?}");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // Port 1 on loopback: nothing listens there.
    let h = handler("postgres://postgres@127.0.0.1:1/test");
    let err = h.execute(&ctx(None), &Operation::from("db.query"), &json!({"sql": "select 1"})).await.err();
    assert_eq!(err.as_ref().map(HandlerError::class), Some(ErrorClass::Transient), "{err:?}");
    assert!(!h.health().await.healthy);
}

#[tokio::test]
async fn an_expired_deadline_fails_before_waiting_for_a_connection() {
    let h = handler("postgres://postgres@127.0.0.1:1/test");
    let err = h
        .execute(&ctx(Some(Timestamp::UNIX_EPOCH)), &Operation::from("db.query"), &json!({"sql": "select 1"}))
        .await
        .err();
    assert!(matches!(err, Some(HandlerError::DeadlineExceeded { .. })), "{err:?}");
}

#[tokio::test]
async fn calls_after_shutdown_fail_permanently() {
    let h = handler("postgres://postgres@127.0.0.1:1/test");
    h.shutdown().await;
    let err = h.execute(&ctx(None), &Operation::from("db.query"), &json!({"sql": "select 1"})).await.err();
    assert_eq!(err.as_ref().map(HandlerError::class), Some(ErrorClass::Permanent), "{err:?}");
}

use onex_core::contract::Environment;
use onex_core::{CorrelationId, EnvelopeId, ErrorClass, Operation};
use serde_json::json;
use uuid::Uuid;

use super::LocalHandler;
use crate::{CallContext, Handler, HandlerError};

fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(1)),
        attempt: 1,
        deadline: None,
    }
}

fn handler() -> LocalHandler {
    LocalHandler::new(Environment::Dev).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn echo_returns_the_payload_unchanged() {
    let out = handler().execute(&ctx(), &Operation::from("local.echo"), &json!({"a": [1, "x"]})).await;
    assert_eq!(out, Ok(json!({"a": [1, "x"]})));
}

#[tokio::test]
async fn bare_verbs_are_accepted() {
    let out = handler().execute(&ctx(), &Operation::from("echo"), &json!(7)).await;
    assert_eq!(out, Ok(json!(7)));
}

#[tokio::test]
async fn transform_upper_cases_strings_recursively() {
    let out = handler().execute(&ctx(), &Operation::from("local.transform"), &json!({"n": "ada", "l": ["x", 1]})).await;
    assert_eq!(out, Ok(json!({"n": "ADA", "l": ["X", 1]})));
}

#[tokio::test]
async fn error_fails_with_the_requested_class() {
    let out = handler()
        .execute(&ctx(), &Operation::from("local.error"), &json!({"class": "transient", "message": "boom"}))
        .await;
    assert_eq!(out, Err(HandlerError::Failed { class: ErrorClass::Transient, message: "boom".into() }));
    let out = handler().execute(&ctx(), &Operation::from("local.error"), &json!(null)).await;
    assert_eq!(out.err().map(|e| e.class()), Some(ErrorClass::Permanent));
}

#[tokio::test]
async fn unknown_operations_list_the_supported_ones() {
    let err = handler().execute(&ctx(), &Operation::from("local.nope"), &json!(null)).await.err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("local.echo, local.transform, local.error"), "{msg}");
}

#[test]
fn refuses_to_start_in_prod() {
    let err = LocalHandler::new(Environment::Prod).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("dev-only"), "{err}");
    assert!(LocalHandler::new(Environment::Staging).is_ok());
}

#[test]
fn describe_lists_the_four_operations() {
    let d = handler().describe();
    assert_eq!(d.handler_type, "local");
    assert!(d.supports("local.echo") && d.supports("local.transform") && d.supports("local.error"));
    assert!(d.supports("local.sleep"));
    assert_eq!(d.operations.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn sleep_waits_the_asked_time_and_refuses_a_missing_duration() {
    let start = tokio::time::Instant::now();
    let out = handler().execute(&ctx(), &Operation::from("local.sleep"), &json!({"ms": 250})).await;
    assert_eq!(out, Ok(json!({"ms": 250})));
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(250));
    let err = handler().execute(&ctx(), &Operation::from("local.sleep"), &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("local.sleep needs a payload"), "{err}");
}
